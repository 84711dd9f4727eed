"""ShotFlow on plain dicts: the stream's ordering logic without Kafka (the integration test
test_form runs the same through a real broker and worker)."""

from __future__ import annotations

import random
from collections import Counter

from models.features import build_features, feature_dict
from streams.flow import ShotFlow
from streams.scoring import Scorer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _flow(champion, clock=None, wait_s=30.0):
    tables = {"players": {}, "seen": {}}
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


def _all(tables, part):
    """Every player's ``part`` of the entry (held, pending, done, early), together."""
    entries = tables["players"].values()
    if part == "held":
        return [item for entry in entries for item in entry["held"]]
    return {key: value for entry in entries for key, value in entry[part].items()}


def _nothing_waits(tables):
    """No prediction waits for an outcome, no attempt is held, no outcome is unclaimed."""
    return not any(
        entry["open"] or entry["held"] or entry["pending"] or entry["early"]
        for entry in tables["players"].values()
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
    assert len(_all(tables, "held")) == 2
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
    assert len(_all(tables, "held")) == 1

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


def test_partitions_taken_over_from_a_dead_worker_wait_for_their_own_data(champion, shots_frame):
    """A worker that has run for an hour takes over a partition from one that died with an
    attempt held there.  Until it has read that partition's outcomes (or ``wait_s`` passed
    with nothing to read), the attempt is not overdue: the rebalance's delay is not the data's."""
    key, attempts, outcomes = _one_players_shots(shots_frame, 2)
    clock = Clock()
    dead, tables = _flow(champion, clock, wait_s=30.0)
    produced = clock.now
    dead.attempt(attempts[0], key, 1, produced)
    dead.attempt(attempts[1], key, 1, produced + 1)
    dead.finish()

    survivor = ShotFlow(dead.scorer, wait_s=30.0, clock=clock, **tables)
    survivor.assigned([0])
    clock.now += 3600  # the survivor's own partition for an hour, then the rebalance
    survivor.assigned([0, 1])
    assert survivor.expire() == 0
    survivor.outcome(outcomes[0], key, 1, produced + 2)
    published = survivor.finish()
    assert [r["shot_id"] for _, r in published if not r["labelled"]] == [attempts[1]["shot_id"]]
    assert survivor.given_up == 0


def test_time_the_broker_was_away_does_not_count_against_held_attempts(champion, shots_frame):
    """The broker goes away for a minute with an attempt held and its outcome already in Kafka.
    When it is back the worker's data clock resumes: the attempt waits for what is read now and
    is released with its outcome, not given up on because a minute passed."""
    key, attempts, outcomes = _one_players_shots(shots_frame, 2)
    clock = Clock()
    flow, _ = _flow(champion, clock, wait_s=30.0)
    produced = clock.now
    flow.attempt(attempts[0], key, 0, produced)
    flow.attempt(attempts[1], key, 0, produced + 1)
    flow.outcome({**outcomes[0], "shot_id": "x", "player_id": 1}, b"1", 0, produced + 1)
    flow.finish()
    clock.now += 60  # the broker away: nothing read
    flow.data_clock.resume()
    assert flow.expire() == 0
    flow.outcome(outcomes[0], key, 0, produced + 2)
    published = flow.finish()
    assert [r["shot_id"] for _, r in published if not r["labelled"]] == [attempts[1]["shot_id"]]
    assert flow.given_up == 0


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


def test_a_crash_at_any_moment_then_redelivery_gives_every_shot_once_with_batch_features(
    champion, shots_frame
):
    """kill -9 of a worker, modelled: the tables come back as the changelog has them (each
    player's entry as after the batch in flight or the one before it, since a player's entry
    is one record), the consumer's offsets as last committed (some batches earlier), and Kafka
    redelivers everything after them.  Every shot is then labelled, every scored copy has the
    batch features, no attempt waits, and each player's form counts each shot once."""
    import copy

    frame = shots_frame.iloc[30_000:30_600]
    attempts, outcomes = _events(frame)
    rows = build_features(frame)
    expected = {a["shot_id"]: feature_dict(row) for a, row in zip(attempts, rows, strict=True)}
    shots_by_player = Counter(str(a["player_id"]) for a in attempts)
    rng = random.Random(11)
    timeline = []
    for i, (attempt, outcome) in enumerate(zip(attempts, outcomes, strict=True)):
        timeline.append((i, 0, ("attempt", attempt)))
        timeline.append((i + rng.randint(-2, 40), 1, ("outcome", outcome)))
    events = [event for _, _, event in sorted(timeline, key=lambda t: (t[0], t[1]))]
    for trial in range(8):
        sizes = []
        while sum(sizes) < len(events):
            sizes.append(rng.randint(1, 60))
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        flow, tables = _flow(champion)
        published, after = [], []
        crash = rng.randrange(2, len(sizes) - 1)  # the batch in flight
        for i in range(crash + 1):
            for kind, record in events[starts[i] : starts[i] + sizes[i]]:
                getattr(flow, kind)(record, str(record["player_id"]).encode(), 0)
            published += flow.finish()
            after.append(copy.deepcopy(tables))
        restored = {"players": {}, "seen": after[crash]["seen"]}
        for player in after[crash]["players"]:
            entry = rng.choice((after[crash - 1], after[crash]))["players"].get(player)
            if entry is not None:
                restored["players"][player] = entry
        committed = rng.randrange(0, crash)  # the first batch after the last commit
        restarted = ShotFlow(flow.scorer, wait_s=30.0, clock=Clock(), **restored)
        published += _feed(restarted, events[starts[committed] :], iter(sizes[committed:]))

        labelled = {r["shot_id"] for _, r in published if r["labelled"]}
        assert labelled == set(expected), (trial, len(set(expected) - labelled))
        for _, record in (item for item in published if not item[1]["labelled"]):
            assert record["features"] == expected[record["shot_id"]], (trial, record["shot_id"])
        assert restarted.given_up == 0 and _nothing_waits(restored)
        counted = {p: e["state"]["n"] for p, e in restored["players"].items()}
        assert counted == dict(shots_by_player), trial


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
    flow.expire()  # the mark is written to seen, then leaves the entry on the next sweep
    clock.now += 61
    flow.expire()
    assert not _all(tables, "pending") and not _all(tables, "done")
    assert len(tables["seen"]) == 1
    flow.attempt(attempts[0], key, 0)
    flow.outcome(outcomes[0], key, 0)
    assert flow.finish() == []
    assert flow.duplicates == 2
    assert tables["players"][player]["state"]["n"] == 1
    assert not _all(tables, "held") and not _all(tables, "early")


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
    assert _nothing_waits(tables)
    # Joined shots are remembered in their player's entry for the time-to-live, then in seen.
    assert len(_all(tables, "done")) == 2 * len(attempts)
    clock.now += 301
    flow.expire()
    assert len(tables["seen"]) == 2 * len(attempts)
    clock.now += 61
    flow.expire()
    assert not _all(tables, "done")


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
    assert flow.duplicates == 1 and len(_all(tables, "held")) == 1
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
    assert len(flow.finish()) == 3 and not _all(tables, "held")
    for outcome in outcomes:
        flow.outcome(outcome, key, 0)
    assert all(r["labelled"] for _, r in flow.finish())
    assert tables["players"][key.decode()]["state"]["n"] == 3


def test_a_warm_started_flow_gives_the_form_batch_computes_over_the_history_and_the_shots(
    champion, shots_frame
):
    """Players' form starts from a history (the champion's training shots), not from nothing:
    the stream's features equal batch features computed over history and new shots together."""
    from models.form import form_states

    history, later = shots_frame.iloc[20_000:26_000], shots_frame.iloc[26_000:28_000]
    warm = form_states(history)
    attempts, outcomes = _events(later)
    flow = ShotFlow(Scorer(champion), players={}, seen={}, clock=Clock(), warm=warm)
    events = [e for pair in zip(attempts, outcomes, strict=True) for e in pair]
    kinds = [("attempt", e) if "made" not in e else ("outcome", e) for e in events]
    published = _feed(flow, kinds, iter(lambda: 37, None))
    by_id = {r["shot_id"]: r for _, r in published if not r["labelled"]}
    expected = build_features(shots_frame.iloc[20_000:28_000])[6_000:]
    for attempt, row in zip(attempts, expected, strict=True):
        assert by_id[attempt["shot_id"]]["features"] == feature_dict(row), attempt["shot_id"]
    # Not the same as starting from nothing: most shots' form differs from a cold start.
    cold = build_features(later)
    differs = sum(
        by_id[a["shot_id"]]["features"] != feature_dict(row)
        for a, row in zip(attempts, cold, strict=True)
    )
    assert differs > len(attempts) * 0.5
    # The history is not changed by the stream's use of it.
    assert warm == form_states(history)
