"""One retrain: train a challenger, let it challenge the champion, and record both.

Each retrain is one document in ``retrain_events`` -- inserted as ``started`` when it begins,
completed with the registered version and the promotion decision (or the error) when it ends.
The challenger learns what the champion learned plus the labelled shots in MongoDB, except the
``holdout`` most recently labelled ones and the champion's validation shots, and is challenged
on exactly those (:mod:`consumers.retrain_data`), so its numbers are on shots it has not seen.
A window that does not cover the league, a shadow still judged, or no lineage to learn from
makes the challenge wait instead (one ``waiting`` document a reason).

:class:`Challenging` is a part of :class:`consumers.retrain_trigger.RetrainLoop`: it uses the
loop's ``settings``, ``db``, ``holdout``, ``data``, ``candidates``, ``console``, ``metrics``,
``train``, ``challenge``, ``champion``, ``tag_version``, ``reference_ids``, ``triggers``,
``clock``, ``_shadowing`` and ``_say``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from consumers.retrain_check import Check, summary
from consumers.retrain_data import NotReady, coverage, recent_labelled, training_data
from models.promotion.gate import coverage_problem
from parivision.store import RETRAIN_EVENTS

# Decisions as the retrainer's metrics count them.
PROMOTED, KEPT, FAILED = "promoted", "kept", "failed"
SHADOWING, WAITING = "shadowing", "waiting"


class Challenging:
    """The loop's retrain: train, challenge, record; or wait, and say why."""

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
        self._say(f"[bold magenta]retrain[/] because {event['reason']}: {summary(check)}")
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
