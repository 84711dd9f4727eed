"""The online learners' checkpoint in the worker: restored when it starts, saved every
``online_checkpoint_every`` labelled shots or ``online_checkpoint_s`` seconds and when it stops.

The file (:func:`models.online.checkpoint_path`) is per worker group, not per worker: with
several workers each learns from its own partitions and the last one to save wins; a worker that
starts takes whatever was saved last.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import faust

from models.online import checkpoint_path
from parivision.settings import Settings
from streams.scoring import Scorer, load_checkpoint, save_checkpoint

log = logging.getLogger("parivision.stream")


def learner_names(settings: Settings, learner: str | None = None) -> list[str]:
    """The learners to run: ``settings.online_learners``, with ``learner`` first if given."""
    names = [name.strip() for name in settings.online_learners.split(",") if name.strip()]
    if learner:
        names = [learner, *(name for name in names if name != learner)]
    return names


class LearnerCheckpoints:
    """Restores ``scorer``'s learners when built (before anything is scored); :meth:`announce`
    is a task, :meth:`save_learners` a timer and :meth:`save_learners_at_stop` a handler of the
    app's ``on_before_shutdown``."""

    def __init__(self, settings: Settings, scorer: Scorer) -> None:
        self.scorer = scorer
        self.every = settings.online_checkpoint_every
        self.every_s = settings.online_checkpoint_s
        self.path = checkpoint_path(settings)
        self.restored = load_checkpoint(scorer, self.path)
        self.saver = CheckpointSaver(scorer, self.path)

    async def announce(self) -> None:
        # Logged from here: the worker sets up logging after the app is built.
        if self.restored:
            what = ", ".join(f"{name} ({n} shots learned)" for name, n in self.restored.items())
            log.info("online learners restored from %s: %s", self.path, what)
        log.info(
            "online learners %s; saved to %s every %d labelled shots or %.0f s and at stop",
            ", ".join(self.scorer.learners),
            self.path,
            self.every,
            self.every_s,
        )

    async def save_learners(self) -> None:
        saver = self.saver
        due = (
            self.scorer.labelled - saver.saved_at_labelled >= self.every
            or time.monotonic() - saver.saved_monotonic >= self.every_s
        )
        if due:
            await saver.save("periodic")

    async def save_learners_at_stop(self, app: faust.App, **kwargs: Any) -> None:
        await self.saver.save("worker stop")


class CheckpointSaver:
    """Saves the scorer's learners when something new was learned; never raises."""

    def __init__(self, scorer: Scorer, path: Path) -> None:
        self.scorer = scorer
        self.path = path
        self.saved_at_labelled = 0
        self.saved_monotonic = time.monotonic()

    async def save(self, why: str) -> None:
        self.saved_monotonic = time.monotonic()
        labelled = self.scorer.labelled
        if labelled == self.saved_at_labelled:
            return  # nothing learned since the last save
        # Pickled on the loop, between two batches: one consistent moment. Written in a thread.
        data = self.scorer.learner_state()
        try:
            await asyncio.to_thread(save_checkpoint, data, self.path)
        except OSError as error:
            log.error("could not save the online learners to %s: %s", self.path, error)
            return
        self.saved_at_labelled = labelled
        log.info(
            "online learners saved to %s (%s, %d labelled shots since start; %d KiB): %s",
            self.path,
            why,
            labelled,
            len(data) // 1024,
            ", ".join(f"{name} {n}" for name, n in self.scorer.learned.items()),
        )
