"""The retrain loop: watches MongoDB, and when a trigger fires retrains a challenger and lets
:func:`models.promotion.challenge` decide.

The decisions are :class:`models.drift.Triggers`' (pure, unit-tested); this module polls: it
reads the new labels, runs a drift check when due (:mod:`consumers.retrain_drift_checks`), hands
the labels to the judge of the shadow, if any (:mod:`consumers.retrain_shadows`), asks the
triggers, and when they fire retrains and records it (:mod:`consumers.retrain_challenge`).  A
request file asks it to retrain at its next poll (:mod:`consumers.retrain_request`).

Each retrain is one document in ``retrain_events``, so the loop's state survives a restart:
the last document says when the last retrain was and up to which label it counted.

Data drift is Evidently's (:mod:`consumers.retrain_drift`); a check's HTML report is drawn
when a retrain cites it, or when someone asks for it (:mod:`models.drift_checks`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console

from consumers.retrain_challenge import WAITING, Challenging
from consumers.retrain_check import Check, summary
from consumers.retrain_data import NewLabels, errors_of
from consumers.retrain_drift import champion_reference
from consumers.retrain_drift_checks import DriftChecks
from consumers.retrain_request import take_request
from consumers.retrain_shadows import ShadowHooks
from models.drift import ErrorDrift, TriggerConfig, Triggers, TriggerState
from models.reference import Reference
from parivision.metrics import RETRAINER, Metrics, for_job
from parivision.settings import Settings
from parivision.store import RETRAIN_EVENTS

__all__ = ["RetrainLoop", "loop_from_settings", "restore_state"]


def restore_state(db, now: float) -> TriggerState:
    """The triggers' memory from the last retrain recorded, or a fresh start at ``now`` (the
    schedule counts from the start; the labels from the first one stored)."""
    # A challenge that waited (a narrow window, nothing to train on) was not a retrain.
    done = [e for e in db[RETRAIN_EVENTS].find({}).sort("at", -1) if e.get("status") != WAITING]
    if not done:
        return TriggerState(last_retrain_at=now)
    last = done[0]
    return TriggerState(
        last_retrain_at=float(last["at"]),
        last_labelled_at=float(last.get("labelled_until") or 0.0),
        retrains=len(done),
    )


class RetrainLoop(DriftChecks, ShadowHooks, Challenging):
    """Polls the store, asks :class:`Triggers`, retrains and challenges when they say so."""

    def __init__(
        self,
        settings: Settings,
        db,
        config: TriggerConfig,
        *,
        window: int = 2000,
        holdout: int = 2000,
        drift_every: int | None = None,
        data: str | None = None,
        candidates: Sequence[str] | None = ("lightgbm",),
        console: Console | None = None,
        metrics: Metrics | None = None,
        train: Callable[..., Any] | None = None,
        challenge: Callable[..., Any] | None = None,
        champion: Callable[[], tuple[str | None, Reference | None, str]] | None = None,
        tag_version: Callable[..., Any] | None = None,
        judge: Any | None = None,
        reference_ids: Callable[[str | None], set[str]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.db = settings, db
        self.window, self.holdout = window, holdout
        # A drift check reads a window of shots from the store and keeps its frames: one
        # every ``drift_every`` new stored shots (default the window, so checks do not
        # overlap), not one every poll.
        self.drift_every = window if drift_every is None else drift_every
        self.data, self.candidates = data, list(candidates) if candidates else None
        self.console = console or Console(stderr=True)
        self.metrics = metrics or for_job(RETRAINER)
        self.train, self.challenge, self.tag_version = train, challenge, tag_version
        references: dict[str, Reference | None] = {}
        self.champion = champion or (lambda: champion_reference(settings, references))
        self.clock = clock
        self.triggers = Triggers(config, restore_state(db, clock()), ErrorDrift())
        # Shadows (a challenger before its promotion, a champion watched after one) are judged
        # on the labels each poll reads (models.promotion.judge).
        self.judge = judge or self._make_judge()
        self.reference_ids = reference_ids or self._reference_ids
        # Why the last challenge waited (a narrow window, no lineage), and when it was checked.
        self._waiting: tuple[str, float] | None = None
        # ADWIN catches up from the last retrain on the first check, and the labels since it
        # are counted from there.
        self.labels = NewLabels(db, self.triggers.state.last_labelled_at)
        self._labelled = 0
        self._start_drift_checks()

    def check(self, *, manual: str | None = None) -> Check:
        """Read what arrived since the last check, run the drift report, ask the triggers."""
        now = self.clock()
        request = manual or take_request(self.settings)
        fresh = self.labels.read()
        # Counted as they are read, not by the server: a count of every label since the last
        # retrain would read more of the store at every poll.
        self._labelled += len(fresh)
        self._judge(fresh)
        new_labelled = self._labelled
        drift = self._drift_check(now)
        reasons = self.triggers.check(
            now,
            new_labelled,
            errors_of(fresh),
            drift.dataset_drift if drift else None,
            manual=request is not None,
        )
        self.metrics["labelled_since_retrain"].set(new_labelled)
        self.metrics["error_drift"].set(1 if self.triggers.error_drift_pending else 0)
        return Check(
            at=now,
            reasons=reasons,
            new_labelled=new_labelled,
            labelled_until=self.labels.until,
            drift=drift,
            adwin=self.triggers.detector.state(),
            request=request,
        )

    def step(self, *, manual: str | None = None) -> dict[str, Any] | None:
        """One check, and a retrain if any trigger fired; the retrain document or None."""
        check = self.check(manual=manual)
        if not check.reasons:
            self._say(f"[dim]no retrain[/]: {summary(check)}")
            return None
        return self.retrain(check)

    def run(self, stop, poll_s: float = 30.0) -> int:
        """Step every ``poll_s`` seconds until ``stop`` (a threading.Event) is set."""
        while not stop.is_set():
            self.step()
            stop.wait(poll_s)
        return self.triggers.state.retrains

    def _say(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.clock()))
        self.console.print(f"[dim]{stamp}[/] {message}")


def loop_from_settings(
    settings: Settings,
    db,
    *,
    min_new: int | None = None,
    every: float | None = None,
    drift_share: float | None = None,
    window: int | None = None,
    holdout: int | None = None,
    data: str | None = None,
    candidates: Sequence[str] | None = None,
    console: Console | None = None,
    metrics: Metrics | None = None,
) -> RetrainLoop:
    """A :class:`RetrainLoop` configured from the ``retrain_*`` settings; any argument given
    overrides its setting (the CLI's options, the API's defaults)."""

    def given(value, default):
        return default if value is None else value

    config = TriggerConfig(
        min_new_labelled=given(min_new, settings.retrain_min_new_labelled),
        every_s=given(every, settings.retrain_every_s),
        drift_share=given(drift_share, settings.retrain_drift_share),
        error_drift=settings.retrain_adwin,
        cooldown_s=settings.retrain_cooldown_s,
    )
    return RetrainLoop(
        settings,
        db,
        config,
        window=given(window, settings.retrain_window),
        holdout=given(holdout, settings.retrain_holdout),
        drift_every=settings.retrain_drift_every,
        data=data,
        candidates=list(candidates or [])
        or [c.strip() for c in settings.retrain_candidates.split(",") if c.strip()],
        console=console,
        metrics=metrics,
    )
