"""Champion and challenger: the decision rule, the labelled window, and what a promotion and a
rollback record (aliases, tags, events) on a real MLflow store, with an in-memory stand-in for
MongoDB."""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest

from models import promotion, registry
from models.features import build_features
from models.form import form_values, new_state
from models.promotion import Decision, PromotionError, decide, parse_event, window_from_documents
from parivision.store import SHOTS
from tests.unit.models.store import FakeDatabase, booster, documents, register

CHAMPION = {"log_loss": 0.640, "roc_auc": 0.660}


def test_docstring_examples():
    result = doctest.testmod(promotion.decision, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    ("challenger", "promote", "why"),
    [
        ({"log_loss": 0.630, "roc_auc": 0.670}, True, "lower by 0.0100"),
        ({"log_loss": 0.638, "roc_auc": 0.660}, True, "lower by 0.0020"),  # exactly the margin
        ({"log_loss": 0.6385, "roc_auc": 0.700}, False, "not at least 0.0020 below"),
        ({"log_loss": 0.650, "roc_auc": 0.700}, False, "not at least 0.0020 below"),
        ({"log_loss": 0.600, "roc_auc": 0.6599}, False, "ROC-AUC 0.6599 is below"),
        ({"log_loss": 0.600, "roc_auc": math.nan}, False, "undefined"),
    ],
)
def test_the_challenger_must_lower_log_loss_by_the_margin_without_ranking_worse(
    challenger, promote, why
):
    verdict = decide(CHAMPION, challenger, margin=0.002)
    assert verdict.promote is promote
    assert why in verdict.reason


def test_a_zero_margin_asks_only_for_no_worse_and_no_champion_is_always_beaten():
    # The rule is "log loss <= champion's - margin": with no margin, a tie is enough.
    assert decide(CHAMPION, {"log_loss": 0.6400, "roc_auc": 0.66}, margin=0.0).promote
    assert not decide(CHAMPION, {"log_loss": 0.6401, "roc_auc": 0.66}, margin=0.0).promote
    assert decide(None, {"log_loss": 0.69, "roc_auc": 0.5}).reason == "there is no champion yet"
    with pytest.raises(ValueError, match="margin"):
        decide(CHAMPION, CHAMPION, margin=-0.1)


def test_a_better_scoring_challenger_is_refused_when_it_is_worse_calibrated():
    # The bulk-trained model of issue 10: lower log loss on the window is not enough when its
    # probabilities sit several points above the make rate.
    champion = {**CHAMPION, "ece": 0.015, "rows": 5000}
    off = decide(champion, {"log_loss": 0.630, "roc_auc": 0.67, "ece": 0.060, "rows": 5000})
    assert not off.promote
    assert "calibration error 0.0600 is worse than the champion's 0.0150 by more than 0.0178" in (
        off.reason
    )
    # Within what chance gives on 5,000 shots it does not count against the challenger ...
    within = {"log_loss": 0.630, "roc_auc": 0.67, "ece": 0.032, "rows": 5000}
    assert decide(champion, within).promote
    # ... and on a small window chance allows more, so noise alone does not refuse.
    small = {**champion, "rows": 300}
    assert decide(small, {"log_loss": 0.630, "roc_auc": 0.67, "ece": 0.080, "rows": 300}).promote
    # Metrics without a calibration error (older tags) are judged on log loss and ROC-AUC.
    assert decide(champion, {"log_loss": 0.630, "roc_auc": 0.67}).promote
    with pytest.raises(ValueError, match="calibration margin"):
        decide(champion, champion, calibration_margin=-0.01)


def test_the_window_uses_the_form_the_stream_stored_and_counts_what_it_cannot_use(
    recent_shots,
):
    history = build_features(recent_shots)  # the form the stream computed, with all history
    frame, matrix = recent_shots.iloc[1000:1300], history[1000:1300]
    predictions, raw, stored = documents(frame, matrix=matrix)
    predictions.append({"shot_id": "no-raw", "outcome": 1, "labelled_at": 1.0})
    raw[5] = {**raw[5], "x": "far left"}  # no longer a valid shot: left out, counted
    window = window_from_documents(predictions, raw, requested=500, stored_features=stored)
    assert window.rows == 299 and window.labelled_found == 301 and window.missing_raw == 2
    assert window.form_source == "stream"
    keep = np.delete(np.arange(300), 5)
    np.testing.assert_allclose(window.features, matrix[keep])
    np.testing.assert_array_equal(window.outcomes, frame["made"].to_numpy()[keep])


def test_without_stored_form_the_window_computes_it_from_its_own_shots(recent_shots):
    frame = recent_shots.iloc[1000:1300]
    predictions, raw, _ = documents(frame)
    window = window_from_documents(predictions[::-1], raw, requested=300)  # newest first
    assert window.form_source == "window"
    np.testing.assert_allclose(window.features, build_features(frame))
    np.testing.assert_array_equal(window.outcomes, frame["made"].to_numpy())
    described = window.describe()
    assert described["first_labelled_at"] == 1_700_000_000.0  # of the shots measured
    assert described["last_labelled_at"] == 1_700_000_000.0 + 299
    assert described["first_game_date"] == int(frame["game_date"].min())


def test_only_events_about_this_model_are_read():
    event = {"event": "promoted", "model": "m", "version": "3"}
    assert parse_event(json.dumps(event).encode(), "m") == event
    assert parse_event(json.dumps(event).encode(), "other") is None
    assert parse_event(b"{not json", "m") is None
    assert parse_event(b"\xff\xfe", "m") is None
    assert parse_event(json.dumps({**event, "event": "deleted"}), "m") is None
    assert parse_event(None, "m") is None


def test_the_event_is_strict_json_even_when_a_metric_is_undefined():
    decision = Decision(
        "refused",
        model="m",
        version="1",
        previous_version="1",
        challenger_version="2",
        reason="r",
        metrics={"challenger": {"log_loss": 0.6, "roc_auc": math.nan}},
    )
    event = json.loads(json.dumps(decision.as_event(), allow_nan=False))
    assert event["metrics"]["challenger"] == {"log_loss": 0.6, "roc_auc": None}
    assert {"event", "model", "version", "previous_version", "metrics", "window", "at"} <= set(
        event
    )


# --- promotion and rollback on a real MLflow store ------------------------------------------


def test_a_worse_challenger_is_refused_and_a_better_one_promoted_then_rolled_back(store):
    settings, db, events, publish, (fair, worse, better) = store

    refused = promotion.challenge(settings, worse, window=2500, db=db, publish=publish)
    assert refused.event == "refused" and not refused.promoted
    assert registry.champion_version(settings) == fair
    assert refused.window["shots"] == 2500 and refused.window["requested"] == 2500
    # The most recent 2,500 labels, not the first.
    assert refused.window["last_labelled_at"] == 1_700_000_000.0 + 2999
    assert refused.window["first_labelled_at"] == 1_700_000_000.0 + 500
    assert refused.metrics["challenger"]["log_loss"] > refused.metrics["champion"]["log_loss"]
    tags = registry.version_tags(settings, worse)
    assert tags["challenge.decision"] == "refused"
    assert tags["challenge.champion_version"] == fair
    assert float(tags["challenge.challenger_log_loss"]) == pytest.approx(
        refused.metrics["challenger"]["log_loss"], abs=1e-6
    )
    assert tags["challenge.window_shots"] == "2500" and tags["challenge.margin"] == "0.002"
    assert {"challenge.window_first_labelled_at", "challenge.decided_at"} <= set(tags)
    assert "replaced_by" not in registry.version_tags(settings, fair)
    assert events[-1]["event"] == "refused" and events[-1]["version"] == fair

    promoted = promotion.challenge(settings, f"v{better}", db=db, publish=publish)
    assert promoted.promoted, promoted.reason
    assert registry.champion_version(settings) == better
    assert registry.alias_version(settings, registry.PREVIOUS_CHAMPION_ALIAS) == fair
    assert registry.version_tags(settings, fair)["replaced_by"] == better
    assert registry.version_tags(settings, better)["challenge.decision"] == "promoted"
    event = events[-1]
    assert (event["event"], event["version"], event["previous_version"]) == (
        "promoted",
        better,
        fair,
    )
    assert event["window"]["shots"] == 3000 and event["metrics"]["champion"]["rows"] == 3000

    again = promotion.challenge(settings, better, db=db, publish=publish)
    assert again.event == "refused" and "already the champion" in again.reason

    back = promotion.rollback(settings, publish=publish)
    assert (back.event, back.version, back.previous_version) == ("rolled_back", fair, better)
    assert registry.champion_version(settings) == fair
    assert registry.alias_version(settings, registry.PREVIOUS_CHAMPION_ALIAS) is None
    assert registry.version_tags(settings, better)["replaced_by"] == fair
    assert "replaced_by" not in registry.version_tags(settings, fair)
    assert events[-1]["event"] == "rolled_back" and events[-1]["version"] == fair
    with pytest.raises(PromotionError, match="no previous champion"):
        promotion.rollback(settings, publish=publish)
    assert [e["event"] for e in events] == ["refused", "promoted", "refused", "rolled_back"]


def test_too_few_labelled_shots_is_a_refusal_that_says_why(store):
    settings, db, events, publish, (fair, _, better) = store
    db[SHOTS].docs = db[SHOTS].docs[:150]
    decision = promotion.challenge(settings, better, db=db, publish=publish)
    assert decision.event == "refused"
    assert "only 150 usable labelled shots" in decision.reason
    assert "at least 200" in decision.reason
    assert registry.champion_version(settings) == fair
    assert registry.version_tags(settings, better)["challenge.decision"] == "refused"
    assert events[-1]["event"] == "refused"


def test_with_no_champion_the_challenger_is_promoted_without_a_comparison(store):
    settings, db, events, publish, (fair, _, better) = store
    registry.delete_alias(settings, settings.champion_alias)
    registry.set_alias(settings, registry.PREVIOUS_CHAMPION_ALIAS, fair)  # left from long ago
    decision = promotion.challenge(settings, better, db=db, publish=publish)
    assert decision.promoted and decision.previous_version is None
    assert registry.champion_version(settings) == better
    assert registry.alias_version(settings, registry.PREVIOUS_CHAMPION_ALIAS) is None
    assert set(decision.metrics) == {"challenger"}


def test_an_unknown_version_says_what_to_do(registry_settings):
    settings = registry_settings(model_name="promotion-unit")
    with pytest.raises(LookupError, match="has no version 99"):
        promotion.challenge(settings, "99", db=FakeDatabase(), publish=lambda *_: None)


# --- the stream's side: swapping on an event ------------------------------------------------


class _Constant:
    def __init__(self, p):
        self.p = p

    def predict(self, matrix):
        return np.full(len(matrix), self.p)


@pytest.fixture
def watcher(monkeypatch):
    """A stream watcher over a scorer holding v1, with a registry whose champion is v2."""
    import threading

    from parivision.settings import Settings
    from streams.scoring import Scorer
    from streams.watcher import ChampionWatcher

    loads = []

    def load_version(settings, version):
        loads.append((version, threading.get_ident()))
        if version == "9":
            raise ValueError("trained on feature set 'v0'")
        return registry.Champion("m", version, _Constant(0.7))

    state = {"alias": "2"}
    monkeypatch.setattr(registry, "champion_version", lambda settings: state["alias"])
    monkeypatch.setattr(registry, "alias_version", lambda settings, alias: state.get(alias))
    monkeypatch.setattr(registry, "load_version", load_version)
    scorer = Scorer(registry.Champion("m", "1", _Constant(0.3)))
    return ChampionWatcher(Settings(model_name="m"), scorer), scorer, loads, state


def _event(**fields) -> bytes:
    return json.dumps({"event": "promoted", "model": "m", "version": "2", **fields}).encode()


def test_the_stream_swaps_on_a_promotion_loading_the_model_off_the_event_loop(watcher):
    import asyncio
    import threading

    from streams.validate import parse_attempt
    from tests.samples import GOOD_SHOT

    watch, scorer, loads, _ = watcher
    shot = parse_attempt(json.dumps(GOOD_SHOT).encode())
    form = np.array([form_values(new_state(), shot)])  # the player's first shot
    before = scorer.score_batch([shot], form=form)[0]

    async def deliver():
        for value in (_event(model="other"), _event(event="refused"), b"junk", _event()):
            await watch.on_event(value)
        return threading.get_ident()

    loop_thread = asyncio.run(deliver())
    assert [version for version, _ in loads] == ["2"]  # only the promotion for this model
    assert loads[0][1] != loop_thread
    after = scorer.score_batch([shot], form=form)[0]
    assert (before["model_version"], before["p_champion"]) == ("1", pytest.approx(0.3))
    assert (after["model_version"], after["p_champion"]) == ("2", pytest.approx(0.7))
    assert watch.swaps == [("1", "2")]
    asyncio.run(watch.on_event(_event()))  # the same event again: nothing to do
    assert len(loads) == 1


def test_a_rollback_swaps_back_and_a_model_that_fails_to_load_keeps_the_old_one(watcher):
    import asyncio

    watch, scorer, loads, state = watcher
    asyncio.run(watch.on_event(_event()))
    state["alias"] = "1"
    asyncio.run(watch.on_event(_event(event="rolled_back", version="1")))
    assert scorer.champion.version == "1"
    state["alias"] = "9"
    asyncio.run(watch.on_event(_event(version="9")))  # logged, not raised
    assert scorer.champion.version == "1"
    assert watch.swaps == [("1", "2"), ("2", "1")]


def test_a_champion_of_an_older_feature_set_gives_way_to_any_challenger(store, fit_and_check):
    settings, db, events, publish, (fair, _, _) = store
    x_fit, y_fit, _, _ = fit_and_check
    old = register(settings, booster(x_fit[:3000], y_fit[:3000], 5), "old", feature_set="v1")
    registry.set_champion(settings, old)
    decision = promotion.challenge(settings, fair, window=2500, db=db, publish=publish)
    assert decision.promoted and "feature set 'v1'" in decision.reason
    assert registry.champion_version(settings) == fair


def test_a_champion_whose_artifact_is_lost_gives_way_to_a_challenger(store):
    """The workers refuse a champion they cannot load and score with an older one; promoting a
    good challenger must not fail on measuring it."""
    import shutil
    from pathlib import Path

    settings, db, events, publish, (fair, _, better) = store
    uri = registry.client(settings).get_model_version_download_uri(
        settings.registered_model(), fair
    )
    if not uri.startswith("file://"):
        pytest.skip(f"the artifacts are not local files ({uri})")
    shutil.rmtree(Path(uri.removeprefix("file://")))
    decision = promotion.challenge(settings, better, db=db, publish=publish)
    assert decision.promoted and "cannot be served any more" in decision.reason
    assert registry.champion_version(settings) == better
    assert events[-1]["event"] == "promoted"
