"""A worker restarted while predictions wait for outcomes and attempts wait for form."""

from __future__ import annotations

import threading
import time

import pytest

import producers.replay
from models.data import load_shots
from models.features import build_features, feature_dict
from parivision.cli.processes import start_process, stop_process, wait_for_group
from parivision.sources.csv_source import CsvSource
from parivision.topics import ensure_topics
from producers.outcomes import WallTimeOutcomes
from producers.pacing import MaxPacer
from producers.replay import replay
from tests.integration.conftest import ScoredReader, wait_until

pytestmark = pytest.mark.integration


class HeldOutcomes(WallTimeOutcomes):
    """The replay's outcomes, all held until the test lets them go (:attr:`gate`): outcomes as
    late as the restart takes, on a busy machine too, rather than a fixed delay to race."""

    gate = threading.Event()

    def due(self, now: float) -> list:
        return super().due(float("inf")) if self.gate.is_set() else []

    def next_due(self) -> float | None:
        return None if not self._due else time.time() + (0 if self.gate.is_set() else 0.05)


SHOTS = 2000


def test_kept_predictions_and_held_attempts_survive_a_worker_restart(
    services, settings_factory, champion_version, games_csv, monkeypatch
):
    """Outcomes held back: the first worker scores each player's first shot and holds the rest
    (their form needs those outcomes), then stops.  The second worker recovers both from the
    changelogs, then the outcomes come: every shot is scored once, labelled once with the
    prediction kept for it, and the held shots get exactly the batch player form."""
    endpoints, _ = services
    # The outcomes wait for the restart, however long it takes on a busy machine; held attempts
    # are never given up on meanwhile (the overdue rule has tests of its own in test_flow).
    HeldOutcomes.gate.clear()
    monkeypatch.setattr(producers.replay, "WallTimeOutcomes", HeldOutcomes)
    settings = settings_factory(outcome_timing="wall", form_wait_s=300.0)
    ensure_topics(settings)
    frame = load_shots(games_csv, limit=SHOTS)
    players = frame["player_id"].nunique()
    reader = ScoredReader(settings)
    first = start_process(settings, endpoints, "stream", "restart-1.log")
    second = None
    try:
        wait_for_group(settings, settings.stream_group(), {"stream": first})
        stats = {}
        sender = threading.Thread(
            target=lambda: stats.update(
                vars(
                    replay(
                        settings,
                        CsvSource(games_csv),
                        pacer=MaxPacer(),
                        limit=SHOTS,
                        show_progress=False,
                    )
                )
            )
        )
        sender.start()

        def first_shots_scored() -> bool:
            reader.read()
            return len(reader.scored) == players

        wait_until(first_shots_scored, 120, f"the first shot of each of {players} players")
        assert not reader.labelled  # no outcome has been sent
        stop_process(first)
        assert len(reader.scored) == players  # the others were held, not scored

        second = start_process(settings, endpoints, "stream", "restart-2.log")
        wait_for_group(settings, settings.stream_group(), {"stream": second})
        HeldOutcomes.gate.set()
        sender.join(120)
        assert not sender.is_alive(), "the replay did not end"

        def all_labelled() -> bool:
            reader.read()
            return len(reader.labelled) == SHOTS

        wait_until(all_labelled, 120, "every outcome joined by the second worker")
    finally:
        for process in (first, second):
            if process is not None:
                stop_process(process)
    assert stats["outcomes"] == SHOTS
    # Nothing lost, nothing scored twice, and each label carries the prediction kept for it.
    assert set(reader.scored.values()) == {1} and set(reader.labelled.values()) == {1}
    assert len(reader.scored) == SHOTS
    assert reader.p_labelled == reader.p_scored
    # The players' form came back with the tables: the held shots got the batch values.
    expected = build_features(frame)
    for shot_id, row in zip(_shot_ids(frame), expected, strict=True):
        assert reader.features[shot_id] == feature_dict(row), shot_id


def _shot_ids(frame):
    return [f"{g}-{e}" for g, e in zip(frame["game_id"], frame["game_event_id"], strict=True)]
