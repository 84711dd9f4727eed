"""The retrain loop: watches MongoDB, and when a trigger fires retrains a challenger and lets
:func:`models.promotion.challenge` decide.

The decisions are :class:`models.drift.Triggers`' (pure, unit-tested); this module only reads
what they need from the store, runs the retrain and records it.  Each retrain is one document in
``retrain_events`` -- inserted as ``started`` when it begins, completed with the registered
version and the promotion decision (or the error) when it ends -- so the loop's state survives a
restart: the last document says when the last retrain was and up to which label it counted.

The challenger is trained on the labelled shots in MongoDB except the ``holdout`` most recently
labelled ones, and challenged on exactly those, so its numbers are on shots it has not seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from models.drift import (
    MANUAL,
    DriftReport,
    ErrorDrift,
    TriggerConfig,
    Triggers,
    TriggerState,
    columns_from_feature_dicts,
    drift_report,
    shot_error,
)
from models.features import FEATURE_NAMES
from parivision import schemas
from parivision.settings import Settings

EVENTS = "retrain_events"
REQUEST_FILE = "retrain.request"
_IN_CHUNK = 100  # small $in lists: see models.promotion.labelled_window


def _chunks(ids: Sequence[str]):
    for start in range(0, len(ids), _IN_CHUNK):
        yield list(ids[start : start + _IN_CHUNK])


def labelled_since(db, after: float) -> list[dict[str, Any]]:
    """Labelled predictions with ``labelled_at`` after ``after``, oldest label first."""
    from consumers.mongo_sink import PREDICTIONS

    return list(
        db[PREDICTIONS]
        .find(
            {"outcome": {"$exists": True}, "labelled_at": {"$gt": after}},
            {"_id": 0, "shot_id": 1, "outcome": 1, "p_champion": 1, "labelled_at": 1},
        )
        .sort("labelled_at", 1)
    )


def errors_of(predictions: Sequence[dict[str, Any]]) -> list[float]:
    """The champion's per-shot errors, in the order given (those without a probability skipped)."""
    return [
        shot_error(p["outcome"], p["p_champion"])
        for p in predictions
        if isinstance(p.get("p_champion"), int | float)
    ]


def feature_drift(db, window: int, *, after: float = 0.0) -> DriftReport | None:
    """The first ``window`` shots stored after ``after`` (reference) against the last ``window``
    (recent), on their stored features and, where labelled, their outcome (``made``).

    None until there are two full windows that do not overlap.
    """
    from consumers.mongo_sink import PREDICTIONS, SHOTS

    query = {"stored_at": {"$gt": after}}
    if db[SHOTS].count_documents(query) < 2 * window:
        return None
    projection = {"_id": 0, "shot_id": 1, "features": 1}
    sides = []
    for order in (1, -1):
        docs = list(db[SHOTS].find(query, projection).sort("stored_at", order).limit(window))
        columns = columns_from_feature_dicts([d.get("features") or {} for d in docs], FEATURE_NAMES)
        outcomes = {
            p["shot_id"]: p["outcome"]
            for ids in _chunks([d["shot_id"] for d in docs])
            for p in db[PREDICTIONS].find(
                {"shot_id": {"$in": ids}, "outcome": {"$exists": True}},
                {"_id": 0, "shot_id": 1, "outcome": 1},
            )
        }
        columns["made"] = [float(outcomes.get(d["shot_id"], float("nan"))) for d in docs]
        sides.append(columns)
    return drift_report(sides[0], sides[1])


def labelled_frame(db, *, holdout: int = 0, limit: int | None = None) -> pd.DataFrame:
    """Labelled shots from the store as a training frame (Shot fields and ``made``), in game
    time order, leaving out the ``holdout`` most recently labelled ones."""
    from consumers.mongo_sink import PREDICTIONS, RAW

    cursor = (
        db[PREDICTIONS]
        .find({"outcome": {"$exists": True}}, {"_id": 0, "shot_id": 1, "outcome": 1})
        .sort("labelled_at", -1)
        .skip(holdout)
    )
    if limit:
        cursor = cursor.limit(limit)
    outcome = {p["shot_id"]: int(p["outcome"]) for p in cursor}
    rows = []
    for ids in _chunks(list(outcome)):
        for raw in db[RAW].find({"shot_id": {"$in": ids}}, {"_id": 0}):
            try:
                shot = schemas.Shot.model_validate(raw).model_dump()
            except schemas.ValidationError:
                continue
            rows.append({**shot, "made": outcome[shot["shot_id"]]})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    order = [c for c in ("game_date", "game_id", "game_event_id") if c in frame.columns]
    return frame.sort_values(order, kind="stable").reset_index(drop=True)


def request_retrain(settings: Settings, reason: str = MANUAL) -> Path:
    """Ask a running loop to retrain at its next poll (a file it picks up and removes)."""
    path = settings.resolved_home() / REQUEST_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(reason)
    return path


def _take_request(settings: Settings) -> str | None:
    path = settings.resolved_home() / REQUEST_FILE
    try:
        reason = path.read_text().strip() or MANUAL
        path.unlink()
    except FileNotFoundError:
        return None
    return reason


def restore_state(db, now: float) -> TriggerState:
    """The triggers' memory from the last retrain recorded, or a fresh start at ``now`` (the
    schedule counts from the start; the labels from the first one stored)."""
    last = db[EVENTS].find_one({}, sort=[("at", -1)])
    if last is None:
        return TriggerState(last_retrain_at=now)
    return TriggerState(
        last_retrain_at=float(last["at"]),
        last_labelled_at=float(last.get("labelled_until") or 0.0),
        retrains=db[EVENTS].count_documents({}),
    )


@dataclass
class Check:
    """One look at the store: what the triggers saw and said."""

    at: float
    reasons: list[str]
    new_labelled: int
    labelled_until: float
    report: DriftReport | None
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
        data: str | None = None,
        candidates: Sequence[str] | None = ("lightgbm",),
        console: Console | None = None,
        train: Callable[..., Any] | None = None,
        challenge: Callable[..., Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.db = settings, db
        self.window, self.holdout = window, holdout
        self.data, self.candidates = data, list(candidates) if candidates else None
        self.console = console or Console(stderr=True)
        self.train, self.challenge = train, challenge
        self.clock = clock
        self.triggers = Triggers(config, restore_state(db, clock()), ErrorDrift())
        # ADWIN catches up from the last retrain on the first check.
        self.fed_until = self.triggers.state.last_labelled_at

    def check(self, *, manual: str | None = None) -> Check:
        """Read what arrived since the last check and ask the triggers."""
        now = self.clock()
        request = manual or _take_request(self.settings)
        state = self.triggers.state
        fresh = labelled_since(self.db, self.fed_until)
        if fresh:
            self.fed_until = max(float(p["labelled_at"]) for p in fresh)
        new_labelled = self._count_since(state.last_labelled_at)
        report = feature_drift(self.db, self.window, after=self._reference_after())
        reasons = self.triggers.check(
            now,
            new_labelled,
            errors_of(fresh),
            report.share if report else None,
            manual=request is not None,
        )
        return Check(
            at=now,
            reasons=reasons,
            new_labelled=new_labelled,
            labelled_until=self.fed_until,
            report=report,
            adwin=self.triggers.detector.state(),
            request=request,
        )

    def _count_since(self, after: float) -> int:
        from consumers.mongo_sink import PREDICTIONS

        return self.db[PREDICTIONS].count_documents(
            {"outcome": {"$exists": True}, "labelled_at": {"$gt": after}}
        )

    def _reference_after(self) -> float:
        # Before any retrain the reference is the oldest window; after one, the first window
        # stored after it (shots the new model was not trained on yet).
        return self.triggers.state.last_retrain_at if self.triggers.state.retrains else 0.0

    def retrain(self, check: Check) -> dict[str, Any]:
        """Train a challenger on the stored labelled shots (and ``data``), challenge the
        champion with it, and record both in ``retrain_events``; returns the document."""
        from models.data import training_frame
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
                "data": check.report.as_dict() if check.report else None,
            },
            "labelled_until": check.labelled_until,
            "model": self.settings.model_name,
        }
        inserted = self.db[EVENTS].insert_one(dict(event)).inserted_id
        self._say(f"[bold magenta]retrain[/] because {event['reason']}: {_summary(check)}")
        try:
            frame = labelled_frame(self.db, holdout=self.holdout)
            stored_rows = len(frame)
            name = f"mongodb:{self.settings.mongodb_database}"
            if self.data:
                extra, extra_name = training_frame(self.data)
                frame = pd.concat([extra, frame], ignore_index=True)
                order = [c for c in ("game_date", "game_id", "game_event_id") if c in frame]
                frame = frame.sort_values(order, kind="stable").reset_index(drop=True)
                name = f"{extra_name}+{name}"
            event["counts"] |= {"training_rows": len(frame), "stored_rows": stored_rows}
            result = train(
                self.settings,
                frame,
                data_name=name,
                make_champion=False,
                candidates=self.candidates,
                console=self.console,
            )
            event["training"] = {
                "version": result.version,
                "run_id": result.run_id,
                "rows": result.rows,
                "candidate": result.candidate,
                "metrics": {k: float(v) for k, v in result.metrics.items()},
            }
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
        event["finished_at"] = self.clock()
        self.db[EVENTS].replace_one({"_id": inserted}, event)
        # A failed retrain also restarts the clocks, or every poll would retry it at once.
        self.triggers.retrained(check.at, check.labelled_until)
        return event

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
    share = "n/a" if check.report is None else f"{check.report.share:.2f}"
    mean = check.adwin.get("mean_error")
    return (
        f"{check.new_labelled:,} new labelled, drift share {share}, ADWIN window "
        f"{check.adwin['window']:,} mean error {'n/a' if mean is None else f'{mean:.3f}'} "
        f"({check.adwin['detections']} drift(s))"
    )


def drift_status(db, window: int, *, delta: float = 0.002) -> dict[str, Any]:
    """The drift report now: ADWIN over every stored label, and the windows' feature tests."""
    detector = ErrorDrift(delta)
    detector.update(errors_of(labelled_since(db, 0.0)))
    report = feature_drift(db, window)
    return {
        "adwin": detector.state(),
        "data": report.as_dict() if report else None,
        "window": window,
    }


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
        data=data,
        candidates=list(candidates or [])
        or [c.strip() for c in settings.retrain_candidates.split(",") if c.strip()],
        console=console,
    )
