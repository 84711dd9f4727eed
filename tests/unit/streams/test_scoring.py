import numpy as np
import pytest

from models.features import build_features
from models.form import player_form
from streams.scoring import Scorer

_FORM: dict[str, np.ndarray] = {}


def _shots(frame, start, n):
    """Attempts as the stream gets them (no outcome), with their batch player form noted."""
    if not _FORM:
        form = player_form(frame)
        _FORM.update(zip(_ids(frame.to_dict("records")), form, strict=True))
    rows = frame.iloc[start : start + n]
    shots = rows.drop(columns=["made"]).to_dict("records")
    for shot, shot_id in zip(shots, _ids(shots), strict=True):
        shot["shot_id"] = shot_id
    return shots, rows["made"].tolist()


def _ids(records):
    return [f"{r['game_id']}-{r['game_event_id']}" for r in records]


def _form(shots):
    """The form values the stream's table would give these shots."""
    return np.array([_FORM[s["shot_id"]] for s in shots])


def test_batch_scores_match_the_champion_and_carry_fair_odds(champion, shots_frame):
    shots, _ = _shots(shots_frame, 30000, 64)
    records = Scorer(champion).score_batch(shots, form=_form(shots))
    expected = champion.model.predict(build_features(shots_frame)[30000:30064])
    assert [r["shot_id"] for r in records] == [s["shot_id"] for s in shots]
    np.testing.assert_allclose([r["p_champion"] for r in records], expected, rtol=1e-9)
    assert all(r["model_version"] == "7" and not r["labelled"] for r in records)
    assert all(r["fair_odds"] == pytest.approx(1 / r["p_champion"]) for r in records)


def test_a_shot_s_warnings_travel_on_its_scored_record(champion, shots_frame):
    shots, _ = _shots(shots_frame, 30000, 4)
    shots[1] = {**shots[1], "warnings": ["action_type 'Moonball' ...: priced as 'Jump Shot'"]}
    records = Scorer(champion).score_batch(shots, form=_form(shots))
    assert records[1]["warnings"] == shots[1]["warnings"]
    assert all("warnings" not in r for i, r in enumerate(records) if i != 1)


def test_online_learner_predicts_before_it_learns(champion, shots_frame):
    scorer = Scorer(champion)
    shots, made = _shots(shots_frame, 40000, 3000)
    first = scorer.score_batch(shots[:1], form=_form(shots[:1]))[0]
    assert first["p_online"] == 0.5  # has learned nothing yet
    labelled = scorer.label(first, made[0])
    assert labelled["p_online"] == 0.5 and labelled["outcome"] == made[0]
    for start in range(1, len(shots), 100):  # score a micro-batch, then its outcomes arrive
        batch = scorer.score_batch(
            shots[start : start + 100], form=_form(shots[start : start + 100])
        )
        for record, y in zip(batch, made[start : start + 100], strict=True):
            scorer.label(record, y)
    live = scorer.live_metrics()
    assert live["labelled"] == 3000
    # After 3,000 real shots both beat a coin on shots they had not learned from.
    assert live["online"]["roc_auc"] > 0.55 and live["champion"]["roc_auc"] > 0.55
    assert live["online"]["log_loss"] < 0.69


def test_kept_records_round_trip_through_the_compact_table_form(champion, shots_frame):
    import json

    from streams.scoring import compact, expand

    shots, _ = _shots(shots_frame, 50000, 20)
    for record in Scorer(champion).score_batch(shots, form=_form(shots)):
        stored = json.loads(json.dumps(compact(record)))  # what the changelog carries
        assert expand(stored) == record


def _run(scorer, shots, made, batch=100):
    """Score a micro-batch, then its outcomes arrive; the stream's order."""
    records = []
    for start in range(0, len(shots), batch):
        scored = scorer.score_batch(
            shots[start : start + batch], form=_form(shots[start : start + batch])
        )
        records += scored
        for record, y in zip(scored, made[start : start + batch], strict=True):
            scorer.label(record, y)
    return records


def test_each_learner_is_measured_beside_the_champion_and_beats_a_coin(champion, shots_frame):
    scorer = Scorer(champion, learners=["logreg", "arf"])
    shots, made = _shots(shots_frame, 40000, 3000)
    records = _run(scorer, shots, made)
    assert records[0]["p_online_by_learner"] == {"logreg": 0.5, "arf": 0.5}
    assert all(r["p_online"] == r["p_online_by_learner"]["logreg"] for r in records)
    live = scorer.live_metrics()
    assert live["champion"]["n"] == 3000
    for name in ("logreg", "arf"):
        learner = live["learners"][name]
        assert learner["n"] == learner["learned"] == 3000
        assert learner["roc_auc"] > 0.55 and learner["log_loss"] < 0.69, (name, learner)
    # The two learners are different models, not one reported twice.
    assert any(
        r["p_online_by_learner"]["arf"] != r["p_online_by_learner"]["logreg"] for r in records
    )


def test_labelled_record_carries_every_learners_probability(champion, shots_frame):
    from streams.scoring import compact, expand

    scorer = Scorer(champion, "arf", learners=["logreg"])
    shots, made = _shots(shots_frame, 45000, 10)
    _run(scorer, shots[:9], made[:9])
    record = scorer.score_batch(shots[9:], form=_form(shots[9:]))[0]
    labelled = scorer.label(expand(compact(record)), made[9])
    assert labelled["online_learner"] == "arf"
    assert labelled["p_online"] == record["p_online_by_learner"]["arf"]
    assert labelled["p_online_by_learner"] == record["p_online_by_learner"]


def test_checkpoint_restores_learners_and_their_metrics(champion, shots_frame, tmp_path):
    from streams.scoring import load_checkpoint, save_checkpoint

    shots, made = _shots(shots_frame, 40000, 2500)
    scorer = Scorer(champion, learners=["logreg", "arf"])
    _run(scorer, shots[:2000], made[:2000])
    path = tmp_path / "online" / "group.pkl"
    save_checkpoint(scorer.learner_state(), path)
    assert [p.name for p in path.parent.iterdir()] == ["group.pkl"]  # no temporary left

    restored = Scorer(champion, learners=["logreg", "arf"])
    assert load_checkpoint(restored, path) == {"logreg": 2000, "arf": 2000}
    assert restored.live_metrics()["learners"] == scorer.live_metrics()["learners"]
    later = _run(scorer, shots[2000:], made[2000:])
    again = _run(restored, shots[2000:], made[2000:])
    assert [r["p_online_by_learner"] for r in again] == [r["p_online_by_learner"] for r in later]
    assert restored.live_metrics()["learners"]["arf"]["n"] == 2500


def test_a_learner_missing_from_the_checkpoint_starts_fresh(champion, shots_frame, tmp_path):
    from streams.scoring import load_checkpoint, save_checkpoint

    shots, made = _shots(shots_frame, 40000, 300)
    scorer = Scorer(champion, learners=["logreg"])
    _run(scorer, shots, made)
    save_checkpoint(scorer.learner_state(), tmp_path / "c.pkl")
    wider = Scorer(champion, learners=["logreg", "arf"])
    assert load_checkpoint(wider, tmp_path / "c.pkl") == {"logreg": 300}
    assert wider.learned == {"logreg": 300, "arf": 0}


@pytest.mark.parametrize(
    "content", [b"", b"not a pickle", b"\x80\x05K\x01.", b"\x80\x05]\x94(K\x01e."]
)
def test_an_unreadable_checkpoint_is_logged_and_learners_start_fresh(
    champion, shots_frame, tmp_path, caplog, content
):
    from streams.scoring import load_checkpoint

    path = tmp_path / "broken.pkl"
    path.write_bytes(content)
    scorer = Scorer(champion, learners=["logreg", "arf"])
    with caplog.at_level("INFO", logger="parivision.stream"):
        assert load_checkpoint(scorer, path) == {}
    assert "could not load the online checkpoint" in caplog.text and str(path) in caplog.text
    assert scorer.learned == {"logreg": 0, "arf": 0}
    shots, _ = _shots(shots_frame, 40000, 1)
    assert scorer.score_batch(shots, form=_form(shots))[0]["p_online_by_learner"] == {
        "logreg": 0.5,
        "arf": 0.5,
    }


def test_a_truncated_checkpoint_starts_fresh(champion, shots_frame, tmp_path):
    from streams.scoring import load_checkpoint

    shots, made = _shots(shots_frame, 40000, 200)
    scorer = Scorer(champion, learners=["logreg", "arf"])
    _run(scorer, shots, made)
    path = tmp_path / "half.pkl"
    path.write_bytes(scorer.learner_state()[:1000])
    assert load_checkpoint(Scorer(champion, learners=["logreg", "arf"]), path) == {}


def test_the_learner_on_top_of_the_champion_starts_as_it_and_corrects_it(champion, shots_frame):
    # The champion learned from Kobe Bryant's career (the file's earliest 20,000 shots) and now
    # scores the 2018-19 league: the learner on top of it must start from its answers and
    # follow the outcomes to a better log loss within thousands of shots.
    scorer = Scorer(champion, learners=["on_champion", "logreg"])
    shots, made = _shots(shots_frame, 40000, 10_000)
    records = _run(scorer, shots, made)
    assert records[0]["p_online_by_learner"]["on_champion"] == pytest.approx(
        records[0]["p_champion"], abs=1e-6
    )
    live = scorer.live_metrics()
    on_top, champion_live = live["learners"]["on_champion"], live["champion"]
    assert on_top["learned"] == 10_000
    # Measured: 0.712 for the champion (worse than a coin), 0.679 on top of it.
    assert on_top["log_loss"] < champion_live["log_loss"] - 0.01, (on_top, champion_live)
    assert on_top["roc_auc"] > champion_live["roc_auc"]


def test_a_shadow_is_scored_on_the_same_shots_and_measured_but_never_served(champion, shots_frame):
    from models.registry import P_MAX, P_MIN, Champion

    class Halved:
        """A model in shadow whose answers are known here: half the champion's probability."""

        def predict(self, matrix):
            return champion.model.predict(matrix) / 2

    scorer = Scorer(champion)
    shots, made = _shots(shots_frame, 30000, 200)
    before = scorer.score_batch(shots[:100], form=_form(shots[:100]))
    assert {r["shadow_version"] for r in before} == {None} and before[0]["p_shadow"] is None
    scorer.set_shadow(Champion("m", "8", Halved()))
    records = scorer.score_batch(shots[100:], form=_form(shots[100:]))
    expected = champion.model.predict(build_features(shots_frame)[30100:30200])
    np.testing.assert_allclose([r["p_champion"] for r in records], expected, rtol=1e-9)
    np.testing.assert_allclose(
        [r["p_shadow"] for r in records], np.clip(expected / 2, P_MIN, P_MAX), rtol=1e-9
    )
    assert {(r["model_version"], r["shadow_version"]) for r in records} == {("7", "8")}
    assert all(r["fair_odds"] == pytest.approx(1 / r["p_champion"]) for r in records)
    labelled = [scorer.label(r, y) for r, y in zip(records, made[100:], strict=True)]
    assert [r["p_shadow"] for r in labelled] == [r["p_shadow"] for r in records]
    # Its live log loss over the labelled shots, as a hand computation gives it.
    p, y = np.array([r["p_shadow"] for r in records]), np.array(made[100:])
    by_hand = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    assert scorer.recent["shadow"].summary()["log_loss"] == pytest.approx(by_hand, rel=1e-9)
    assert scorer.live_metrics()["shadow"]["version"] == "8"
    scorer.set_shadow(None)
    assert "shadow" not in scorer.recent and scorer.live_metrics()["shadow"] is None


@pytest.mark.parametrize("decimals", [None, 2, 1])
def test_the_live_roc_auc_is_sklearn_s_with_and_without_tied_probabilities(decimals):
    from sklearn.metrics import roc_auc_score

    from models.online import RollingQuality

    rng = np.random.default_rng(7)
    p = rng.uniform(0.05, 0.95, 5000)
    if decimals is not None:  # many ties, as a coarse model gives
        p = np.round(p, decimals)
    y = (rng.uniform(size=p.size) < p).astype(int)
    quality = RollingQuality(window=4000)
    for made, prob in zip(y, p, strict=True):
        quality.update(int(made), float(prob))
    # The window holds the last 4,000 shots, in a ring; AUC does not depend on their order.
    assert quality.summary()["roc_auc"] == pytest.approx(roc_auc_score(y[-4000:], p[-4000:]))
