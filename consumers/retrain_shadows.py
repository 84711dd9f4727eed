"""The retrain loop's hooks for the judge of shadows (:mod:`models.promotion.judge`).

Each poll hands the judge the labels it read; a new challenge waits while a shadow is judged;
a verdict is counted, said, and recorded on the retrain that trained the judged version.

:class:`ShadowHooks` is a part of :class:`consumers.retrain_trigger.RetrainLoop`: it uses the
loop's ``settings``, ``db``, ``judge``, ``metrics`` and ``_say``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from parivision.store import RETRAIN_EVENTS


class ShadowHooks:
    """What the loop does for the shadow judged, if any."""

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
