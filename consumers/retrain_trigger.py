"""The retrain loop: watches MongoDB, and when a trigger fires retrains a challenger and lets
:func:`models.promotion.challenge` decide.

The decisions are :class:`models.drift.Triggers`' (pure, unit-tested); this module only reads
what they need from the store, runs the retrain and records it.  Each retrain is one document in
``retrain_events`` -- inserted as ``started`` when it begins, completed with the registered
version and the promotion decision (or the error) when it ends -- so the loop's state survives a
restart: the last document says when the last retrain was and up to which label it counted.

The challenger learns what the champion learned plus the labelled shots in MongoDB, except
the ``holdout`` most recently labelled ones and the champion's validation shots, and is
challenged on exactly those (:mod:`consumers.retrain_data`), so its numbers are on shots it has
not seen.  A window that does not cover the league, or no lineage to learn from, makes the
challenge wait.  Each poll also hands the new labels to the judge of the shadow, if any
(:mod:`models.promotion.judge`).

Data drift is Evidently's (:mod:`consumers.retrain_drift`); a check's HTML report is drawn
when a retrain cites it, or when someone asks for it (:mod:`models.drift_checks`).
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from consumers.retrain_data import (
    NewLabels,
    NotReady,
    coverage,
    errors_of,
    labelled_frame,
    labelled_since,
    recent_labelled,
    training_data,
)
from consumers.retrain_drift import (
    champion_reference,
    drift_status,
    export_drift,
    recent_shots,
    run_drift_check,
)
from models.drift import MANUAL, ErrorDrift, TriggerConfig, Triggers, TriggerState
from models.drift_report import DRIFT_SHARE, DriftSummary
from models.promotion.gate import coverage_problem
from models.reference import Reference
from parivision.metrics import RETRAINER, Metrics, for_job
from parivision.settings import Settings
from parivision.store import RETRAIN_EVENTS, SHOTS, read_range

REQUEST_FILE = "retrain.request"
__all__ = [
    "RetrainLoop",
    "drift_status",
    "errors_of",
    "labelled_frame",
    "labelled_since",
    "loop_from_settings",
    "recent_shots",
    "request_retrain",
]
# Decisions as the retrainer's metrics count them.
PROMOTED, KEPT, FAILED = "promoted", "kept", "failed"
SHADOWING, WAITING = "shadowing", "waiting"


def request_retrain(settings: Settings, reason: str = MANUAL) -> Path:
    """Ask a running loop to retrain at its next poll (a file it picks up and removes)."""
    path = settings.deployment_home() / REQUEST_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(reason)
    return path


def _take_request(settings: Settings) -> str | None:
    path = settings.deployment_home() / REQUEST_FILE
    try:
        reason = path.read_text().strip() or MANUAL
        path.unlink()
    except FileNotFoundError:
        return None
    return reason


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


@dataclass
class Check:
    """One look at the store: what the triggers saw and said."""

    at: float
    reasons: list[str]
    new_labelled: int
    labelled_until: float
    drift: DriftSummary | None
    adwin: dict[str, Any]
    request: str | None = None


class RetrainLoop:
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
        # The last drift check, and what it was run on: a poll that finds no new shot, no new
        # label and the same champion reuses it rather than writing the same report again.
        self.drift: DriftSummary | None = None
        self._drift_key: tuple[Any, ...] | None = None
        self._newest_polled: float | None = None
        # The ``window`` newest ``scored_at`` the polls have read (a min-heap): the drift
        # check reads its window as a range from the smallest of them, not as a sort of the
        # whole store for its last ``window`` (a scan of every stored shot on the local
        # server: 1.2 s at 24,000 shots, blocking the sink's writes meanwhile).
        self._newest_scored: list[float] = []
        self._newest_pushed = -math.inf
        # Shots the polls have read since the last drift check (``_too_soon``).
        self._stored_since_check = 0

    def check(self, *, manual: str | None = None) -> Check:
        """Read what arrived since the last check, run the drift report, ask the triggers."""
        now = self.clock()
        request = manual or _take_request(self.settings)
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

    def _drift_check(self, now: float) -> DriftSummary | None:
        after = self._reference_after()
        newest_at = self._newest_stored(after)
        champion = self.champion()
        quiet, self._newest_polled = newest_at == self._newest_polled, newest_at
        key = (after, newest_at, self.labels.until, champion[0], champion[1] is None)
        if key == self._drift_key or (not quiet and self._too_soon(key)):
            return self.drift
        share = self.triggers.config.drift_share or DRIFT_SHARE
        try:
            drift = run_drift_check(
                self.settings,
                self.db,
                self.window,
                after=after,
                drift_share=share,
                champion=champion,
                at=now,
                newest_from=self._window_start(after),
            )
        except ValueError as error:  # Evidently could not test these shots: say so, go on
            self._say(f"[bold red]drift check failed[/]: {error}")
            drift = None
        self.drift, self._drift_key = drift, key
        self._stored_since_check = 0
        if drift is not None:
            export_drift(self.metrics, drift)
        return drift

    def _newest_stored(self, after: float) -> float | None:
        """When the newest shot stored after ``after`` was scored.  Only the shots scored since
        the last poll are read (a range on the ``scored_at`` index; a sort of the whole
        collection for its last one costs the server a scan of every shot at every poll)."""
        polled = self._newest_polled
        since = after if polled is None else max(after, polled)
        new = read_range(self.db[SHOTS], "scored_at", since, {"_id": 0, "scored_at": 1})
        newest, heap, pushed = None, self._newest_scored, self._newest_pushed
        for doc in new:
            at = float(doc["scored_at"])
            newest = at if newest is None or at > newest else newest
            if at <= pushed:
                continue  # read before: the heap must not count a shot twice
            self._stored_since_check += 1
            if len(heap) < self.window:
                heapq.heappush(heap, at)
            elif at > heap[0]:
                heapq.heapreplace(heap, at)
        if newest is not None:
            self._newest_pushed = max(pushed, newest)
        if newest is None and since > after:
            return polled
        return newest

    def _window_start(self, after: float) -> float | None:
        """A ``scored_at`` at or before the ``window``-th newest stored shot scored after
        ``after``, or None when the polls have not read that many.

        The polls may miss a shot stored late with an older ``scored_at``; that only adds
        shots to the range, so its newest ``window`` are still the store's."""
        heap = self._newest_scored
        if len(heap) < self.window or heap[0] <= after:
            return None
        return heap[0]

    def _too_soon(self, key: tuple[Any, ...]) -> bool:
        """Whether the last report still stands: same reference and champion, and fewer than
        ``drift_every`` shots stored since it.  While shots arrive, a report every
        ``drift_every`` of them; once they stop (nothing new since the last poll), one more
        on the last window, with its labels.  The shots are counted as the polls read them
        (``_newest_stored``), not by the server: a count there reads each of them again."""
        last = self._drift_key
        if self.drift is None or last is None or (last[0], *last[3:]) != (key[0], *key[3:]):
            return False
        if last[1] is None or self.drift_every <= 0:
            return False
        return self._stored_since_check < self.drift_every

    def _reference_after(self) -> float:
        # A retrain answers the drift seen so far: after one, only shots stored since count.
        return self.triggers.state.last_retrain_at if self.triggers.state.retrains else 0.0

    def retrain(self, check: Check) -> dict[str, Any]:
        """Train a challenger on what the champion learned plus the stored labelled shots (and
        ``data``), challenge the champion with it, and record both in ``retrain_events``;
        returns the document.  A recent window too narrow to judge on, or nothing to train on,
        makes it wait instead (a ``waiting`` document; the trigger stays pending)."""
        from models.promotion import PromotionError
        from models.promotion import challenge as default_challenge
        from models.train import train_and_register

        train = self.train or train_and_register
        challenge = self.challenge or default_challenge
        event: dict[str, Any] = {
            "at": check.at,
            "reasons": check.reasons,
            "reason": ",".join(check.reasons),
            "request": check.request,
            "status": "started",
            "counts": {"new_labelled": check.new_labelled},
            "drift": {
                "adwin": check.adwin,
                "data": check.drift.as_dict() if check.drift else None,
            },
            "labelled_until": check.labelled_until,
            "model": self.settings.registered_model(),
        }
        window = recent_labelled(self.db, self.holdout)
        event["window"] = {"shots": len(window), **coverage(window)}
        champion = self.champion()[0]
        try:
            narrow = coverage_problem(event["window"], self.settings)
            if narrow:
                raise NotReady(f"{narrow}; the challenge waits for a wider window")
            busy = self._shadowing()
            if busy:
                raise NotReady(busy)
            data = training_data(
                self.settings,
                self.db,
                champion=champion,
                leave_out={p["shot_id"] for p in window} | self.reference_ids(champion),
                data=self.data,
            )
        except NotReady as why:
            return self._wait(check, event, str(why))
        self._waiting = None
        inserted = self.db[RETRAIN_EVENTS].insert_one(dict(event)).inserted_id
        for reason in check.reasons:
            self.metrics["retrains"].labels(trigger=reason).inc()
        self._say(f"[bold magenta]retrain[/] because {event['reason']}: {_summary(check)}")
        self._draw_report(check)
        try:
            event["counts"] |= {"training_rows": len(data.frame), "sources": data.counts}
            event["lineage"] = data.lineage.to_json()
            result = train(
                self.settings,
                data.frame,
                data_name=data.name,
                make_champion=False,
                candidates=self.candidates,
                # The lineage's half-life is the retrain's: the champion's (none recorded: it
                # was trained unweighted), or the setting's when the store alone is learned.
                half_life_days=data.lineage.half_life_days or 0.0,
                lineage=data.lineage,
                console=self.console,
            )
            event["training"] = {
                "version": result.version,
                "run_id": result.run_id,
                "rows": result.rows,
                "candidate": result.candidate,
                "metrics": {k: float(v) for k, v in result.metrics.items()},
            }
            self._tag(result.version, check)
            decision = challenge(self.settings, result.version, window=self.holdout, db=self.db)
            event["decision"] = decision.as_event()
            event["status"] = decision.event
            self._say(
                f"[bold]v{result.version}[/] {decision.event}: {decision.reason} "
                f"(champion now v{decision.version})"
            )
        except (ValueError, LookupError, PromotionError, ConnectionError) as error:
            event["status"], event["error"] = "failed", str(error)
            self._say(f"[bold red]retrain failed[/]: {error}")
        outcome = {PROMOTED: PROMOTED, FAILED: FAILED, SHADOWING: SHADOWING}.get(
            event["status"], KEPT
        )
        self.metrics["decisions"].labels(outcome=outcome).inc()
        event["finished_at"] = self.clock()
        self.db[RETRAIN_EVENTS].replace_one({"_id": inserted}, event)
        # A failed retrain also restarts the clocks, or every poll would retry it at once.
        self.triggers.retrained(check.at, check.labelled_until)
        self._labelled = 0  # the labels read after this check, counted from the next one
        return event

    def _wait(self, check: Check, event: dict[str, Any], why: str) -> dict[str, Any]:
        """Record that the challenge waits, and why: one document per reason (updated while the
        reason stands, so a waiting loop does not write one every poll); the triggers stay
        pending and the next poll that reads new labels looks again."""
        event |= {"status": WAITING, "waiting": why, "finished_at": self.clock()}
        if self._waiting is not None and self._waiting[0] == why:
            self.db[RETRAIN_EVENTS].update_one(
                {"status": WAITING, "waiting": why, "at": self._waiting[1]},
                {"$set": {"checked_at": check.at, "counts": event["counts"]}},
            )
            return event
        self._waiting = (why, check.at)
        self.db[RETRAIN_EVENTS].insert_one(dict(event))
        self.metrics["decisions"].labels(outcome=WAITING).inc()
        self._say(f"[bold yellow]challenge waits[/] ({event['reason']}): {why}")
        return event

    def _shadowing(self) -> str | None:
        """Why a new challenge must wait for the shadow now judged, if one is."""
        shadow = self.judge.shadow if hasattr(self.judge, "shadow") else None
        if shadow is None:
            return None
        what = "a challenger" if shadow.role == "challenger" else "the last promotion's watch"
        return (
            f"v{shadow.version} is in shadow ({what}, {shadow.shots:,} labelled shots): the next "
            "challenge waits for its verdict"
        )

    def _reference_ids(self, champion: str | None) -> set[str]:
        """The champion's validation shots: the challenger must not learn them, as it is
        judged on them (models.promotion.gate)."""
        from mlflow.exceptions import MlflowException

        from models.reference import validation_set

        if champion is None:
            return set()
        try:
            found = validation_set(self.settings, champion)
        except MlflowException as error:
            self._say(f"[yellow]could not read champion v{champion}'s validation set[/]: {error}")
            return set()
        return set(found.all_ids) if found is not None else set()

    def _make_judge(self):
        from models.promotion.judge import ShadowJudge

        def progress(shadow, evidence) -> None:
            self.metrics["shadow_labelled"].set(evidence.n if shadow is not None else 0)
            for side, values in evidence.metrics().items() if shadow is not None else ():
                self.metrics["shadow_log_loss"].labels(model=side).set(values["log_loss"])

        return ShadowJudge(self.settings, self.db, on_decision=self._judged, on_progress=progress)

    def _judge(self, fresh: Sequence[dict[str, Any]]) -> None:
        """Let the judge of the shadow look at this poll's labels; never stops the loop."""
        from mlflow.exceptions import MlflowException

        from models.promotion import PromotionError

        try:
            self.judge.poll(fresh)
        except (MlflowException, PromotionError, LookupError, ValueError) as error:
            self._say(f"[yellow]shadow not judged this poll[/]: {error}")

    def _judged(self, action: str, decision, shadow: dict[str, Any]) -> None:
        """A shadow decided: count it, say it, and record it on the retrain that trained the
        judged version (``shadow``: a challenger's verdict as ``shadow``, a watch's as ``watch``
        on the retrain of the champion it watched)."""
        from models.promotion.judge import OUTCOMES
        from models.promotion.shadow import ROLL_BACK

        outcome = OUTCOMES[action]
        self.metrics["decisions"].labels(outcome=outcome).inc()
        if action == ROLL_BACK:
            self.metrics["rollbacks"].inc()
        colour = "red" if action == ROLL_BACK else "green"
        self._say(f"[bold {colour}]{outcome.replace('_', ' ')}[/]: {decision.reason}")
        watch = shadow.get("role") == "watch"
        watched = shadow.get("champion") if watch else shadow.get("version")
        field = "watch" if watch else "shadow"
        self.db[RETRAIN_EVENTS].update_many(
            {"training.version": watched},
            {
                "$set": {
                    field: {
                        "decision": decision.event,
                        "reason": decision.reason,
                        "at": decision.at,
                    }
                }
            },
        )

    def _draw_report(self, check: Check) -> None:
        """Draw the report of the check a retrain answers: its event and its challenger cite it
        (the loop's other checks are drawn only when asked for)."""
        from models.drift_checks import draw_report

        try:
            if check.drift is not None and check.drift.report:
                draw_report(Path(check.drift.report))
        except (OSError, ValueError) as error:  # the event still has the check's numbers
            self._say(f"[yellow]could not draw the drift report[/]: {error}")

    def _tag(self, version: str, check: Check) -> None:
        """Say on the registered challenger why it was trained (and which report said so)."""
        from mlflow.exceptions import MlflowException

        from models.registry import tag_version

        tags = {
            "retrain.reason": ",".join(check.reasons),
            "retrain.drift_share": f"{check.drift.drift_share:.4f}" if check.drift else None,
            "retrain.drift_report": check.drift.report if check.drift else None,
        }
        try:
            (self.tag_version or tag_version)(self.settings, version, tags)
        except MlflowException as error:  # the event in MongoDB still has the reasons
            self._say(f"[yellow]could not tag v{version}[/]: {error}")

    def step(self, *, manual: str | None = None) -> dict[str, Any] | None:
        """One check, and a retrain if any trigger fired; the retrain document or None."""
        check = self.check(manual=manual)
        if not check.reasons:
            self._say(f"[dim]no retrain[/]: {_summary(check)}")
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


def _summary(check: Check) -> str:
    drift = check.drift
    if drift is None:
        data = "data drift not measured yet"
    else:
        verdict = "dataset drift" if drift.dataset_drift else "no dataset drift"
        data = f"drift share {drift.drift_share:.2f} ({verdict}) against {drift.reference}"
    mean = check.adwin.get("mean_error")
    return (
        f"{check.new_labelled:,} new labelled, {data}, ADWIN window "
        f"{check.adwin['window']:,} mean error {'n/a' if mean is None else f'{mean:.3f}'} "
        f"({check.adwin['detections']} drift(s))"
    )


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
