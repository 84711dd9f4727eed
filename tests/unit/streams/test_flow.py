"""ShotFlow on plain dicts: the stream's ordering logic without Kafka (the integration test
test_form runs the same through a real broker and worker)."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np

from models.features import build_features, feature_dict
from streams.flow import ShotFlow
from streams.scoring import Scorer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _flow(champion, clock=None, wait_s=30.0):
    tables = {name: {} for name in ("players", "held", "pending", "early", "seen")}
    flow = ShotFlow(Scorer(champion), wait_s=wait_s, clock=clock or Clock(), **tables)
    return flow, tables


def _events(frame):
    """Attempts (no outcome) and outcomes of a labelled frame, each with its shot id."""
    attempts, outcomes = [], []
    for row in frame.to_dict("records"):
        shot_id = f"{row['game_id']}-{row['game_event_id']}"
        made = row.pop("made")
        attempts.append({**row, "shot_id": shot_id})
        outcomes.append(
            {
                "shot_id": shot_id,
                "game_id": row["game_id"],
                "player_id": row["player_id"],
                "made": made,
            }
        )
    return attempts, outcomes


def _nothing_waits(tables):
    """No prediction waits for an outcome, no attempt is held, no outcome is unclaimed."""
    return (
        all("done" in kept for kept in tables["pending"].values())
        and not tables["held"]
        and not tables["early"]
        and all(not entry["open"] for entry in tables["players"].values())
    )


def _feed(flow, events, batch_sizes):
    """Feed (kind, record) events in micro-batches; return everything published."""
    published = []
    i = 0
    while i < len(events):
        size = next(batch_sizes)
        for kind, record in events[i : i + size]:
            getattr(flow, kind)(record, str(record["player_id"]).encode(), 0)
        published += flow.finish()
        i += size
    return published


def test_late_and_early_outcomes_give_the_features_batch_work_computes(champion, shots_frame):
    """Outcomes arrive anywhere from before their attempt to 60 events after it; every shot is
    still scored once, labelled once, with exactly the batch features."""
    frame = shots_frame.iloc[20_000:23_000]
    attempts, outcomes = _events(frame)
    rng = random.Random(7)
    timeline = []
    for i, (attempt, outcome) in enumerate(zip(attempts, outcomes, strict=True)):
        timeline.append((i, 0, ("attempt", attempt)))
        timeline.append((i + rng.randint(-3, 60), 1, ("outcome", outcome)))
    events = [event for _, _, event in sorted(timeline, key=lambda t: (t[0], t[1]))]
    flow, tables = _flow(champion)
    published = _feed(flow, events, iter(lambda: rng.randint(1, 300), None))

    counts = Counter((r["shot_id"], r["labelled"]) for _, r in published)
    assert len(counts) == 6000 and set(counts.values()) == {1}  # scored once, labelled once
    by_id = {r["shot_id"]: r for _, r in published if not r["labelled"]}
    expected = build_features(frame)
    for attempt, row in zip(attempts, expected, strict=True):
        assert by_id[attempt["shot_id"]]["features"] == feature_dict(row), attempt["shot_id"]
    # Nothing is left waiting once every outcome is in.
    assert _nothing_waits(tables)


def test_a_players_next_attempt_waits_for_the_last_outcome(champion, shots_frame):
    player = shots_frame["player_id"].value_counts().index[0]
    frame = shots_frame[shots_frame["player_id"] == player].iloc[:3]
    attempts, outcomes = _events(frame)
    flow, tables = _flow(champion)
    key = str(player).encode()
    for attempt in attempts:
        flow.attempt(attempt, key, 0)
    first = flow.finish()
    assert [r["shot_id"] for _, r in first] == [attempts[0]["shot_id"]]
    assert len(tables["held"]) == 2
    flow.outcome(outcomes[0], key, 0)
    second = flow.finish()
    assert [(r["shot_id"], r["labelled"]) for _, r in second] == [
        (attempts[1]["shot_id"], False),
        (attempts[0]["shot_id"], True),
    ]
    assert second[0][1]["features"]["player_rate"] != first[0][1]["features"]["player_rate"]


def test_an_overdue_outcome_is_given_up_on_and_still_learned_when_it_comes(champion, shots_frame):
    player = shots_frame["player_id"].value_counts().index[0]
    frame = shots_frame[shots_frame["player_id"] == player].iloc[:3]
    attempts, outcomes = _events(frame)
    clock = Clock()
    flow, tables = _flow(champion, clock, wait_s=10.0)
    key = str(player).encode()
    for attempt in attempts:
        flow.attempt(attempt, key, 0)
    flow.finish()
    clock.now += 5
    assert flow.expire() == 0  # not overdue yet
    clock.now += 6
    assert flow.expire() == 2
    released = flow.finish()
    assert [r["shot_id"] for _, r in released] == [a["shot_id"] for a in attempts[1:]]
    assert flow.given_up == 1
    # Scored without the first outcome: the player's form has seen no shot.
    assert all(r["features"]["player_log_shots_before"] == 0 for _, r in released)
    for outcome in outcomes:
        flow.outcome(outcome, key, 0)
    labelled = flow.finish()
    assert sorted(r["shot_id"] for _, r in labelled) == sorted(a["shot_id"] for a in attempts)
    assert tables["players"][str(player)]["state"]["n"] == 3
    assert _nothing_waits(tables)


def test_a_restarted_worker_reads_the_waiting_outcome_before_the_time_it_was_dead_counts(
    champion, shots_frame
):
    """A worker holds a player's second attempt, dies for a minute, and a new one takes over
    the same tables.  The outcome the attempt waits for sat in Kafka all along: the new worker
    reads it (its timestamp two seconds after the attempt) and releases the attempt with the
    form batch work gives, instead of giving up on it because a minute of wall time passed."""
    key, attempts, outcomes = _one_players_shots(shots_frame, 2)
    clock = Clock()
    flow, tables = _flow(champion, clock, wait_s=30.0)
    produced = clock.now
    flow.attempt(attempts[0], key, 0, produced)
    flow.attempt(attempts[1], key, 0, produced + 1)
    assert len(flow.finish()) == 1  # the second attempt is held for the first one's outcome
    assert len(tables["held"]) == 1

    clock.now += 60  # dead for a minute; a new worker starts on the same tables
    restarted = ShotFlow(flow.scorer, wait_s=30.0, clock=clock, **tables)
    assert restarted.expire() == 0  # nothing read yet: nothing is overdue
    clock.now += 1
    restarted.outcome(outcomes[0], key, 0, produced + 2)  # the backlog: read now, made then
    assert restarted.expire() == 0
    published = restarted.finish()
    scored = [r for _, r in published if not r["labelled"]]
    assert [r["shot_id"] for r in scored] == [attempts[1]["shot_id"]]
    assert restarted.given_up == 0
    # Its form counts the first shot, whose outcome it waited for.
    assert scored[0]["features"]["player_log_shots_before"] > 0


def test_an_attempt_is_overdue_once_the_data_read_is_past_it_even_while_reading_a_backlog(
    champion, shots_frame
):
    """Reading a backlog fast: the wall clock hardly moves, but the records' time does.  Once
    the worker has read attempts and outcomes wait_s past a held attempt and its outcome is not
    among them, the attempt is released without it."""
    key, attempts, _ = _one_players_shots(shots_frame, 2)
    clock = Clock()
    flow, tables = _flow(champion, clock, wait_s=30.0)
    old = clock.now - 600  # a backlog from ten minutes ago
    flow.attempt(attempts[0], key, 0, old)
    flow.attempt(attempts[1], key, 0, old + 1)
    flow.finish()
    assert flow.expire() == 0
    # Other players' records on the same partition, 31 s later in data time, read at once.
    flow.attempt({**attempts[0], "shot_id": "other", "player_id": 1}, b"1", 0, old + 31)
    flow.outcome({"shot_id": "other", "game_id": 1, "player_id": 1, "made": 0}, b"1", 0, old + 32)
    flow.finish()
    assert flow.expire() == 1 and flow.given_up == 1


def test_a_head_left_on_a_released_attempt_by_a_crash_is_skipped(champion, shots_frame):
    """kill -9 between deleting a released attempt from ``held`` and moving the player's head:
    the restarted worker finds a head that points at nothing.  It skips it instead of failing
    (a KeyError there once crashed the agent and lost its batch)."""
    key, attempts, outcomes = _one_players_shots(shots_frame, 3)
    flow, tables = _flow(champion)
    flow.attempt(attempts[0], key, 0)
    flow.attempt(attempts[1], key, 0)
    flow.finish()
    player = str(attempts[0]["player_id"])
    entry = tables["players"][player]
    assert (entry["head"], entry["tail"]) == (0, 1)
    # The crash: the held attempt was released and deleted, the head move was lost.
    del tables["held"][f"{player}#0"]
    flow.outcome(outcomes[0], key, 0)
    flow.attempt(attempts[2], key, 0)
    published = flow.finish()
    assert tables["players"][player]["head"] == 1
    # Nothing open, nothing held: the third attempt is scored at once, the first labelled.
    assert [(r["shot_id"], r["labelled"]) for _, r in published] == [
        (attempts[2]["shot_id"], False),
        (attempts[0]["shot_id"], True),
    ]


def test_an_outcome_joined_before_a_crash_that_the_form_lost_is_folded_when_redelivered(
    champion, shots_frame
):
    """The pending table kept the "done" mark, the players table lost the write that folded
    the outcome: the redelivered outcome folds it now and lets the held attempt go, with the
    form batch work gives, instead of leaving it to be given up on."""
    import copy

    key, attempts, outcomes = _one_players_shots(shots_frame, 2)
    flow, tables = _flow(champion)
    player = str(attempts[0]["player_id"])
    flow.attempt(attempts[0], key, 0)
    flow.finish()
    before = copy.deepcopy(tables["players"][player])  # the first shot open
    flow.outcome(outcomes[0], key, 0)
    flow.finish()
    tables["players"][player] = before  # the crash: this write never reached the changelog
    flow.attempt(attempts[1], key, 0)  # held behind the "open" first shot
    assert flow.finish() == []
    flow.outcome(outcomes[0], key, 0)  # Kafka redelivers what was not committed
    published = flow.finish()
    assert [r["shot_id"] for _, r in published] == [attempts[1]["shot_id"]]
    assert published[0][1]["features"]["player_log_shots_before"] > 0
    assert tables["players"][player]["state"]["n"] == 1 and flow.given_up == 0


def test_an_outcome_the_form_has_already_counted_is_not_counted_twice(champion, shots_frame):
    """The reverse: the players table folded the outcome, the pending table lost its "done"
    mark.  The redelivered outcome is labelled again (the store keeps one), but the player's
    form counts the shot once."""
    key, attempts, outcomes = _one_players_shots(shots_frame, 1)
    flow, tables = _flow(champion)
    player = str(attempts[0]["player_id"])
    flow.attempt(attempts[0], key, 0)
    flow.finish()
    (shot_key,) = tables["pending"]
    kept = dict(tables["pending"][shot_key])
    flow.outcome(outcomes[0], key, 0)
    flow.finish()
    tables["pending"][shot_key] = kept  # the crash lost the "done" mark
    flow.outcome(outcomes[0], key, 0)
    assert [r["labelled"] for _, r in flow.finish()] == [True]
    assert tables["players"][player]["state"]["n"] == 1


def test_a_redelivered_attempt_is_not_scored_twice(champion, shots_frame):
    attempts, outcomes = _events(shots_frame.iloc[:1])
    flow, _ = _flow(champion)
    flow.attempt(attempts[0], b"k", 0)
    flow.attempt(attempts[0], b"k", 0)
    assert len(flow.finish()) == 1
    flow.attempt(attempts[0], b"k", 0)
    assert flow.finish() == [] and flow.duplicates == 2
    flow.outcome(outcomes[0], b"k", 0)
    assert [r["labelled"] for _, r in flow.finish()] == [True]
    assert np.isfinite(flow.scorer.live_metrics()["champion"]["log_loss"])


def test_an_attempt_and_outcome_redelivered_after_the_ttl_are_never_counted_twice(
    champion, shots_frame
):
    """Kafka can redeliver a copy long after its shot was joined (a consumer group reset, a
    partition moved back).  Past ``early_ttl_s`` the joined shot's "done" mark is swept, but a
    mark stays in ``seen``: the copies are duplicates, the player's form counts the shot once."""
    key, attempts, outcomes = _one_players_shots(shots_frame, 1)
    clock = Clock()
    flow, tables = _flow(champion, clock=clock)
    player = str(attempts[0]["player_id"])
    flow.attempt(attempts[0], key, 0)
    flow.outcome(outcomes[0], key, 0)
    assert [r["labelled"] for _, r in flow.finish()] == [False, True]
    clock.now += flow.early_ttl_s + 3600.0  # an hour past the TTL
    flow.expire()
    assert not tables["pending"] and len(tables["seen"]) == 1
    flow.attempt(attempts[0], key, 0)
    flow.outcome(outcomes[0], key, 0)
    assert flow.finish() == []
    assert flow.duplicates == 2
    assert tables["players"][player]["state"]["n"] == 1
    assert not tables["held"] and not tables["early"]


def test_a_redelivered_tail_and_a_second_replay_leave_nothing_stuck(champion, shots_frame):
    """After a rebalance Kafka redelivers what was not committed: here the last 300 attempts,
    whose outcomes were already joined (and committed).  They are known for duplicates: not
    scored again, and no attempt waits for an outcome that will not come again.  A second
    replay of the same shots (another replay id) is scored and labelled again in full."""
    frame = shots_frame.iloc[100_000:102_000]
    attempts, outcomes = _events(frame)
    rng = random.Random(3)

    def timeline(replay_id):
        events = []
        for i, (attempt, outcome) in enumerate(zip(attempts, outcomes, strict=True)):
            events.append((i, 0, ("attempt", {**attempt, "replay_id": replay_id})))
            events.append(
                (i + rng.randint(0, 60), 1, ("outcome", {**outcome, "replay_id": replay_id}))
            )
        return [event for _, _, event in sorted(events, key=lambda t: (t[0], t[1]))]

    clock = Clock()
    flow, tables = _flow(champion, clock)
    batches = iter(lambda: rng.randint(1, 300), None)
    first_run = timeline("r1")
    redelivered = [event for event in first_run if event[0] == "attempt"][-300:]
    published = _feed(flow, first_run + redelivered + timeline("r2"), batches)

    counts = Counter((r["replay_id"], r["shot_id"], r["labelled"]) for _, r in published)
    assert set(counts.values()) == {1} and len(counts) == 2 * 2 * len(attempts)
    assert flow.given_up == 0 and flow.duplicates == 300
    assert not tables["held"] and not tables["early"]
    assert all(not entry["open"] for entry in tables["players"].values())
    # Joined shots are remembered for the time-to-live, then forgotten.
    assert all("done" in kept for kept in tables["pending"].values())
    clock.now += 301
    flow.expire()
    assert not tables["pending"]


def _one_players_shots(shots_frame, n):
    player = shots_frame["player_id"].value_counts().index[0]
    attempts, outcomes = _events(shots_frame[shots_frame["player_id"] == player].iloc[:n])
    return str(player).encode(), attempts, outcomes


def test_a_redelivered_held_attempt_is_held_once(champion, shots_frame):
    key, attempts, outcomes = _one_players_shots(shots_frame, 2)
    flow, tables = _flow(champion)
    flow.attempt(attempts[0], key, 0)
    flow.attempt(attempts[1], key, 0)
    flow.finish()
    flow.attempt(attempts[1], key, 0)  # redelivered while it waits
    assert flow.duplicates == 1 and len(tables["held"]) == 1
    for outcome in outcomes:
        flow.outcome(outcome, key, 0)
    published = flow.finish()
    assert Counter(r["labelled"] for _, r in published) == {False: 1, True: 2}
    assert _nothing_waits(tables)


def test_a_second_replay_of_the_same_shots_is_scored_again_not_dropped(champion, shots_frame):
    key, attempts, outcomes = _one_players_shots(shots_frame, 2)
    flow, tables = _flow(champion)
    flow.attempt({**attempts[0], "replay_id": "r1"}, key, 0)
    flow.finish()
    # Replayed while the first copy still waits for its outcome.
    flow.attempt({**attempts[0], "replay_id": "r2"}, key, 0)
    flow.outcome({**outcomes[0], "replay_id": "r1"}, key, 0)
    flow.outcome({**outcomes[0], "replay_id": "r2"}, key, 0)
    published = flow.finish()
    assert sorted((r["replay_id"], r["labelled"]) for _, r in published) == [
        ("r1", True),
        ("r2", False),
        ("r2", True),
    ]
    assert flow.duplicates == 0 and _nothing_waits(tables)


def test_with_no_wait_nothing_is_held(champion, shots_frame):
    key, attempts, outcomes = _one_players_shots(shots_frame, 3)
    flow, tables = _flow(champion, wait_s=0)
    for attempt in attempts:
        flow.attempt(attempt, key, 0)
    assert len(flow.finish()) == 3 and not tables["held"]
    for outcome in outcomes:
        flow.outcome(outcome, key, 0)
    assert all(r["labelled"] for _, r in flow.finish())
    assert tables["players"][key.decode()]["state"]["n"] == 3
