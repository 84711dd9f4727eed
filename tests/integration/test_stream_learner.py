"""`parivision stream --learner NAME`: NAME's probability is the record's ``p_online``.

The worker is started as a user starts it (the CLI, in a process of its own) and real shots of
the 2018-19 league are replayed; what a consumer of ``shots.scored`` reads is checked.  The
independent truth: every default learner starts as the champion itself (``bias`` with no bias
learned, ``on_champion`` with slope 1 and nothing else), so a shot scored before any outcome
has arrived carries the champion's probability for each of them.  Once outcomes arrive the
learners move apart, and only then does it show which one ``p_online`` follows.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from itertools import islice

import pytest

from parivision.cli.processes import _child_env, stop_process, wait_for_group
from parivision.sources.base import Source, SourceShot
from parivision.sources.csv_source import CsvSource
from parivision.topics import ensure_topics
from producers.pacing import MaxPacer, make_pacer
from producers.replay import replay
from tests.integration.conftest import copy_champion, scored_consumer, wait_for_progress

pytestmark = pytest.mark.integration

LEARNERS = ("bias", "on_champion")  # the default PARIVISION_ONLINE_LEARNERS, in its order
UNLABELLED = 200  # shots replayed first without outcomes: no learner has learned anything
LABELLED = 400  # then shots with their outcomes, paced so later shots meet learned learners


class Shots(Source):
    def __init__(self, items, name):
        self.items, self.name = items, name

    def __iter__(self):
        return iter(self.items)


class ScoredRecords:
    """Every record on ``shots.scored`` from the start, as a consumer reads them (committed)."""

    def __init__(self, settings) -> None:
        self.consumer = scored_consumer(settings)
        self.scored: dict[str, dict] = {}
        self.labelled: dict[str, dict] = {}

    def read(self) -> None:
        for message in self.consumer.consume(5000, timeout=0.5):
            if not message.error():
                record = json.loads(message.value())
                side = self.labelled if record["labelled"] else self.scored
                side[record["shot_id"]] = record

    def count(self, side: str) -> int:
        self.read()
        return len(getattr(self, side))

    def close(self) -> None:
        self.consumer.close()


def _start_stream(settings, services, learner: str | None) -> subprocess.Popen:
    """``parivision stream [--learner NAME]`` as a user runs it, logging under the test's home."""
    endpoints, _ = services
    logs = settings.deployment_dir("logs")
    logs.mkdir(parents=True, exist_ok=True)
    log = open(logs / f"learner-stream-{settings.app_id}.log", "ab")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "parivision", "stream"]
        + (["--learner", learner] if learner else []),
        env=_child_env(settings, endpoints),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.mark.parametrize(
    ("learner", "first"),
    [("on_champion", "on_champion"), (None, "bias")],
    ids=["--learner on_champion", "default"],
)
def test_p_online_is_the_learner_named_first(
    services, settings_factory, champion_version, games_csv, learner, first
):
    settings = settings_factory(
        model_name=f"learner-{uuid.uuid4().hex[:6]}",
        online_learners=",".join(LEARNERS),
        # The first shots never get outcomes: a player's next shot waits this long for the one
        # before (30 s by default), then is scored without it.
        form_wait_s=1.0,
    )
    copy_champion(settings, champion_version)
    ensure_topics(settings)
    items = list(islice(CsvSource(games_csv), UNLABELLED + LABELLED))
    unlabelled = [SourceShot(item.shot, None) for item in items[:UNLABELLED]]
    labelled = items[UNLABELLED:]
    records = ScoredRecords(settings)
    stream = _start_stream(settings, services, learner)
    try:
        wait_for_group(settings, settings.stream_group(), {"stream": stream})
        replay(settings, Shots(unlabelled, "no outcomes"), pacer=MaxPacer(), show_progress=False)
        wait_for_progress(
            lambda: records.count("scored"), UNLABELLED, "shots without outcomes scored"
        )
        before = dict(records.scored)
        # A few hundred a second: each outcome arrives 0.5 s after its shot, so most shots are
        # scored after the learners have learned from earlier ones.
        replay(
            settings, Shots(labelled, "outcomes"), pacer=make_pacer(rate=150), show_progress=False
        )
        wait_for_progress(lambda: records.count("labelled"), LABELLED, "shots labelled")
        wait_for_progress(lambda: records.count("scored"), len(items), "every shot scored")
    finally:
        stop_process(stream)
        records.close()

    # Every record a consumer reads names the learner it was asked for, first, and carries its
    # probability as p_online.
    order = [first, *(name for name in LEARNERS if name != first)]
    for record in [*records.scored.values(), *records.labelled.values()]:
        assert record["online_learner"] == first, record
        assert list(record["p_online_by_learner"]) == order, record
        assert record["p_online"] == record["p_online_by_learner"][first], record

    # Nothing learned yet: each learner is exactly the champion.
    for record in before.values():
        for name in LEARNERS:
            assert record["p_online_by_learner"][name] == pytest.approx(
                record["p_champion"], abs=1e-9
            ), (name, record)

    # Once they have learned they disagree, and p_online is the first one's, not the other's.
    other = order[1]
    later = [records.scored[item.shot["shot_id"]] for item in labelled]
    apart = [
        r
        for r in later
        if abs(r["p_online_by_learner"][first] - r["p_online_by_learner"][other]) > 1e-4
    ]
    assert len(apart) > LABELLED // 2, f"{len(apart)} of {LABELLED} scored shots told them apart"
    assert all(r["p_online"] != r["p_online_by_learner"][other] for r in apart)
    # The labelled record keeps the probabilities the shot was scored with.
    for r in later:
        labelled_record = records.labelled[r["shot_id"]]
        assert labelled_record["p_online_by_learner"] == r["p_online_by_learner"]
