"""Shadow scoring, the watch after a promotion and the gate a narrow window cannot fool, on a real
MLflow store with an in-memory stand-in for MongoDB.

The live evidence is written the way the sink stores it (``p_shadow``, ``shadow_version``,
``model_version`` on each labelled prediction) and every log loss the judge acts on is checked
against one computed here from the probabilities and outcomes, not by the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from models import promotion, registry
from models.features import build_features
from models.promotion import shadow as shadows
from models.promotion.judge import ShadowJudge
from models.train import train_and_register
from parivision.settings import Settings
from parivision.store import SHOTS
from tests.unit.models.store import Collection, FakeDatabase, documents, shot_documents


def _log_loss(outcomes, p) -> float:
    """By hand: the mean of -log(p) for a make and -log(1 - p) for a miss."""
    return sum(-math.log(q if y else 1 - q) for y, q in zip(outcomes, p, strict=True)) / len(p)


# --- the rule, on evidence worked by hand -----------------------------------------------------


def _evidence(outcomes, p_shadow, p_champion) -> shadows.Evidence:
    evidence = shadows.Evidence()
    for i, (y, a, b) in enumerate(zip(outcomes, p_shadow, p_champion, strict=True)):
        evidence.add(str(i), y, a, b)
    return evidence


def test_the_evidence_is_both_log_losses_and_the_base_rate_on_the_same_shots():
    outcomes = [1, 0, 0, 1, 0]
    shadow_p, champion_p = [0.7, 0.2, 0.4, 0.6, 0.3], [0.5, 0.5, 0.5, 0.5, 0.5]
    measured = _evidence(outcomes, shadow_p, champion_p).metrics()
    assert measured["shadow"]["log_loss"] == pytest.approx(_log_loss(outcomes, shadow_p))
    assert measured["champion"]["log_loss"] == pytest.approx(math.log(2))
    # Two makes in five: the constant 0.4 scores -(0.4 ln 0.4 + 0.6 ln 0.6).
    assert measured["base_rate"]["log_loss"] == pytest.approx(0.673012, abs=1e-6)
    twice = _evidence(outcomes, shadow_p, champion_p)
    twice.add("0", 1, 0.01, 0.99)  # a label stored twice counts once
    assert twice.n == 5


# Probabilities for a made and a missed shot: one that knows something, one that knows a little
# less, and the constant at the make rate (0.6), which is the base rate itself.
SHARP, DULLER, CONSTANT = (0.70, 0.45), (0.698, 0.452), (0.60, 0.60)


@pytest.mark.parametrize(
    ("role", "shadow_p", "champion_p", "action"),
    [
        # A challenger that is better live is promoted; one that is not is refused.
        (shadows.CHALLENGER, SHARP, CONSTANT, shadows.PROMOTE),
        (shadows.CHALLENGER, DULLER, SHARP, shadows.REFUSE),
        # A watched champion (here the champion) a little worse than the previous one (the
        # shadow), within the margin and better than the base rate, is kept; one worse by more
        # than the margin is rolled back.
        (shadows.WATCH, SHARP, DULLER, shadows.CONFIRM),
        (shadows.WATCH, SHARP, CONSTANT, shadows.ROLL_BACK),
    ],
)
def test_the_rule_after_all_its_shots(role, shadow_p, champion_p, action):
    outcomes = [1 if i % 5 < 3 else 0 for i in range(600)]  # 60% made
    shadow_probs = [shadow_p[0] if y else shadow_p[1] for y in outcomes]
    champion_probs = [champion_p[0] if y else champion_p[1] for y in outcomes]
    evidence = _evidence(outcomes, shadow_probs, champion_probs)
    shadow = shadows.Shadow("7", role, "6", 0.0, 600)
    truth = _log_loss(outcomes, champion_probs) - _log_loss(outcomes, shadow_probs)
    assert (truth > 0.005) == (action in (shadows.PROMOTE, shadows.ROLL_BACK))  # the worked case
    assert shadows.judge(shadow, evidence, Settings(rollback_margin=0.005)).action == action
    # One shot short of its terms, nothing is decided (no early verdict on a fair contest).
    short = _evidence(outcomes[:599], shadow_probs[:599], champion_probs[:599])
    assert shadows.judge(shadow, short, Settings()).action is None


def test_a_watched_champion_worse_than_the_base_rate_is_rolled_back_even_beside_a_worse_one():
    outcomes = [1 if i % 5 < 3 else 0 for i in range(400)]
    # Both sit at 0.45 while 60% go in; the previous one at 0.40 is worse still.
    evidence = _evidence(outcomes, [0.40] * 400, [0.45] * 400)
    verdict = shadows.judge(shadows.Shadow("1", shadows.WATCH, "2", 0.0, 400), evidence, Settings())
    assert verdict.action == shadows.ROLL_BACK
    assert "above the base rate's 0.6730" in verdict.reason


def test_an_inverted_champion_is_rolled_back_early():
    outcomes = [i % 2 for i in range(shadows.EARLY_SHOTS)]
    inverted = [0.3 if y else 0.7 for y in outcomes]
    evidence = _evidence(outcomes, [0.5] * len(outcomes), inverted)
    shadow = shadows.Shadow("1", shadows.WATCH, "2", 0.0, 5000)
    verdict = shadows.judge(shadow, evidence, Settings())
    assert verdict.action == shadows.ROLL_BACK and "after 200 labelled shots" in verdict.reason


# --- the whole life of a challenger, on a real registry ---------------------------------------


def _labelled(db, frame, start, *, champion, p_champion, shadow=None, p_shadow=None):
    """Labelled predictions as the sink stores them, scored by ``champion`` with ``shadow``
    beside it one second apart from ``start``, each labelled a second after it was scored."""
    predictions, raw, _ = documents(frame, start_ts=start + 1.0)
    for i, doc in enumerate(predictions):
        doc |= {
            "model_version": champion,
            "p_champion": float(p_champion[i]),
            "shadow_version": shadow,
            "p_shadow": None if p_shadow is None else float(p_shadow[i]),
            "scored_at": start + i,
        }
    db[SHOTS].docs.extend(shot_documents(predictions, raw))


@pytest.fixture
def shadowed(store, recent_shots, fit_and_check):
    """The store with shadows on: 300 labelled shots judge a shadow."""
    settings, db, events, publish, versions = store
    settings = settings.model_copy(update={"shadow_shots": 300})
    return settings, db, events, publish, versions


def test_a_challenger_shadows_then_is_promoted_live_and_the_old_champion_watches_it(
    shadowed, recent_shots, fit_and_check
):
    import time

    settings, db, events, publish, (fair, _, better) = shadowed
    decision = promotion.challenge(settings, better, db=db, publish=publish)
    assert decision.event == "shadowing", decision.reason
    assert registry.champion_version(settings) == fair  # not served yet
    assert registry.alias_version(settings, shadows.SHADOW_ALIAS) == better
    assert registry.version_tags(settings, better)["shadow.role"] == "challenger"
    assert events[-1]["event"] == "shadowing" and events[-1]["shadow"]["version"] == better

    # The stream scores 300 new shots with both: the challenger's p from the better model,
    # the champion's from the fair one, as the workers would.
    x_check, y_check = fit_and_check[2], fit_and_check[3]
    models = {v: registry.load_version(settings, v) for v in (fair, better)}
    rows = slice(3000, 3300)
    p = {v: np.clip(m.predict(x_check[rows]), 1e-4, 1 - 1e-4) for v, m in models.items()}
    start = time.time()
    frame = recent_shots.iloc[33_000:33_300]
    _labelled(
        db, frame, start, champion=fair, p_champion=p[fair], shadow=better, p_shadow=p[better]
    )
    outcomes = y_check[rows].tolist()
    truth = {v: _log_loss(outcomes, p[v]) for v in (fair, better)}
    assert truth[better] < truth[fair]  # what the judge must find

    judge = ShadowJudge(settings, db, publish=publish)
    promoted = judge.poll()
    assert promoted is not None and promoted.event == "promoted" and promoted.automatic
    assert promoted.metrics["shadow"]["log_loss"] == pytest.approx(truth[better], abs=1e-9)
    assert promoted.metrics["champion"]["log_loss"] == pytest.approx(truth[fair], abs=1e-9)
    assert registry.champion_version(settings) == better
    assert registry.alias_version(settings, registry.PREVIOUS_CHAMPION_ALIAS) == fair
    # The champion it replaced now watches it.
    assert registry.alias_version(settings, shadows.SHADOW_ALIAS) == fair
    watch = shadows.current_shadow(settings)
    assert (watch.role, watch.champion) == (shadows.WATCH, better)
    tags = registry.version_tags(settings, better)
    assert tags["promoted.how"] == "shadow" and tags["shadow.decision"] == "promoted"
    assert [e["event"] for e in events] == ["shadowing", "promoted"]


def test_a_forced_bad_champion_is_rolled_back_by_the_watch(shadowed, recent_shots, fit_and_check):
    import time

    settings, db, events, publish, (fair, worse, _) = shadowed
    forced = promotion.promote(settings, worse, reason="by hand", how="forced", publish=publish)
    assert forced.promoted and forced.shadow["role"] == shadows.WATCH
    assert registry.champion_version(settings) == worse
    assert registry.alias_version(settings, shadows.SHADOW_ALIAS) == fair

    # The forced champion's probabilities are inverted; the previous one is fair.
    frame = recent_shots.iloc[33_000:33_300]
    outcomes = frame["made"].to_numpy()
    inverted = np.where(outcomes == 1, 0.25, 0.75)
    fair_p = np.full(300, 0.47)
    time.sleep(0.01)
    _labelled(
        db,
        frame,
        time.time(),
        champion=worse,
        p_champion=inverted,
        shadow=fair,
        p_shadow=fair_p,
    )
    decisions = []
    judge = ShadowJudge(
        settings, db, publish=publish, on_decision=lambda a, d, s: decisions.append(a)
    )
    back = judge.poll()
    assert back is not None and back.event == "rolled_back" and back.automatic
    assert decisions == [shadows.ROLL_BACK]
    # Judged shot by shot: all 300 were there at its first look, and it stopped at the 200th.
    assert back.window["shots"] == shadows.EARLY_SHOTS == 200
    assert back.shadow["version"] == fair and back.shadow["role"] == shadows.WATCH
    assert back.metrics["champion"]["log_loss"] == pytest.approx(
        _log_loss(outcomes[:200].tolist(), inverted[:200]), abs=1e-9
    )
    assert registry.champion_version(settings) == fair
    assert registry.alias_version(settings, shadows.SHADOW_ALIAS) is None
    tags = registry.version_tags(settings, worse)
    assert tags["rollback.automatic"] == "true" and "base rate" in tags["rollback.reason"]
    assert [e["event"] for e in events] == ["promoted", "rolled_back"]
    assert judge.poll() is None  # nothing left to judge


def test_a_shadow_waits_for_evidence_scored_beside_its_own_champion(shadowed, recent_shots):
    import time

    settings, db, events, publish, (fair, _, better) = shadowed
    promotion.challenge(settings, better, db=db, publish=publish)
    # Shots scored before the shadow began, or by another champion, are not evidence.
    frame = recent_shots.iloc[33_000:33_300]
    _labelled(
        db,
        frame,
        time.time() - 3600,
        champion=fair,
        p_champion=np.full(300, 0.5),
        shadow=better,
        p_shadow=np.full(300, 0.5),
    )
    _labelled(
        db,
        frame,
        time.time(),
        champion="99",
        p_champion=np.full(300, 0.5),
        shadow=better,
        p_shadow=np.full(300, 0.5),
    )
    judge = ShadowJudge(settings, db, publish=publish)
    assert judge.poll() is None and judge.evidence.n == 0
    assert registry.alias_version(settings, shadows.SHADOW_ALIAS) == better


def test_a_shadow_the_stream_never_scored_is_given_up_after_five_times_its_shots(
    shadowed, recent_shots
):
    """By hand: 300 shots a shadow, so 5 x 300 = 1,500 labelled shots without it end it; at
    1,499 it still waits."""
    settings, db, events, publish, (fair, _, better) = shadowed
    promotion.challenge(settings, better, db=db, publish=publish)
    began = shadows.current_shadow(settings)
    assert (began.version, began.shots) == (better, 300)
    # The stream refused to load it: every shot is scored by the champion alone.
    frame = recent_shots.iloc[33_000:34_500]
    start = began.started_at
    _labelled(db, frame.iloc[:1499], start, champion=fair, p_champion=np.full(1499, 0.5))
    decisions = []
    judge = ShadowJudge(
        settings, db, publish=publish, on_decision=lambda a, d, s: decisions.append((a, s))
    )
    assert judge.poll() is None
    assert judge.evidence.n == 0 and judge.evidence.others == 1499
    assert registry.alias_version(settings, shadows.SHADOW_ALIAS) == better

    before = len(db[SHOTS].docs)
    _labelled(db, frame.iloc[1499:], start + 1499, champion=fair, p_champion=np.full(1, 0.5))
    given_up = judge.poll(db[SHOTS].docs[before:])  # the loop hands each poll its new labels
    assert given_up is not None and given_up.event == "refused"
    assert "on only 0 of 1,500 labelled shots" in given_up.reason
    assert decisions == [(shadows.REFUSE, began.describe())]
    assert registry.alias_version(settings, shadows.SHADOW_ALIAS) is None
    assert registry.champion_version(settings) == fair
    tags = registry.version_tags(settings, better)
    assert tags["shadow.decision"] == "refused" and tags["challenge.decision"] == "refused"
    assert [e["event"] for e in events] == ["shadowing", "refused"]


# --- the gate a narrow window cannot fool -----------------------------------------------------


def test_a_window_of_one_player_makes_the_challenge_wait(shadowed, shots_frame):
    settings, db, events, publish, (fair, _, better) = shadowed
    kobe = shots_frame.iloc[:3000]  # the file's earliest seasons: Kobe Bryant alone
    assert kobe["player_id"].nunique() == 1
    predictions, raw, _ = documents(kobe)
    narrow = FakeDatabase(shots=Collection(shot_documents(predictions, raw)))
    decision = promotion.challenge(settings, better, db=narrow, publish=publish)
    assert decision.event == "refused"
    assert decision.reason.startswith("the recent window does not cover the league: 1 player")
    assert decision.window["players"] == 1 and decision.window["teams"] == 1
    assert registry.champion_version(settings) == fair
    assert registry.alias_version(settings, shadows.SHADOW_ALIAS) is None


def test_a_challenger_that_wins_a_narrow_window_is_refused_on_the_champion_s_validation_window(
    registry_settings, shots_frame
):
    """The incident: trained on one player's shots, it beats a league champion on more of that
    player's shots, and is worse on the league's."""
    settings = registry_settings(
        model_name="gate-unit",
        promotion_min_players=0,
        promotion_min_teams=0,
        promotion_min_games=0,
    )
    league = shots_frame.iloc[-60_000:-10_000]  # 2018-19, every team
    champion = train_and_register(
        settings, league, data_name="league", candidates=["lightgbm"], make_champion=True
    ).version
    kobe = shots_frame.iloc[:23_000]
    assert kobe["player_id"].nunique() == 1
    narrow = train_and_register(
        settings, kobe.iloc[:20_000], data_name="one player", candidates=["lightgbm"]
    ).version
    matrix = build_features(kobe)  # the form the stream would have stored
    predictions, raw, stored = documents(kobe.iloc[20_000:], matrix=matrix[20_000:])
    db = FakeDatabase(shots=Collection(shot_documents(predictions, raw, stored)))
    decision = promotion.challenge(settings, narrow, db=db, publish=lambda *_: None)
    metrics = decision.metrics
    # It did win the narrow window ...
    assert metrics["challenger"]["log_loss"] < metrics["champion"]["log_loss"] - 0.002
    # ... and is refused on the league shots the champion was validated on.
    assert decision.event == "refused"
    assert "on the champion's validation window its log loss" in decision.reason
    reference = metrics["reference_challenger"], metrics["reference_champion"]
    assert reference[0]["log_loss"] > reference[1]["log_loss"] + 0.001
    assert registry.champion_version(settings) == champion
