"""The rule a challenger must pass to take the champion alias, on both versions' metrics.

Log loss first -- the stream sells fair odds, so the probabilities must be right -- with ROC-AUC
as a guard and calibration as a second one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

# What decide() asks when not told (challenge() takes Settings.promotion_margin and
# Settings.promotion_calibration_margin instead).
DEFAULT_MARGIN = 0.002
DEFAULT_CALIBRATION_MARGIN = 0.01
# Below this many labelled shots, a difference of a few thousandths in log loss is noise.
MIN_LABELLED = 200


class PromotionError(RuntimeError):
    """A promotion or rollback could not be carried out; the message says what to do."""


@dataclass(frozen=True)
class Verdict:
    """What :func:`decide` concluded, and why, in words a person can check."""

    promote: bool
    reason: str


def chance_calibration_error(rows: int, bins: int = 10) -> float:
    """The calibration error a perfectly calibrated model shows by chance on ``rows`` shots.

    Each of the ``bins`` equal-count bins misses its make rate by about ``sqrt(p(1-p)/size)``
    (p near 0.5 for shots) and the mean absolute value of that is ``sqrt(2/pi)`` of it: about
    0.018 on 5,000 shots, 0.09 on 200.

    Example:
        >>> round(chance_calibration_error(5000), 3)
        0.018
    """
    return math.sqrt(2 / math.pi) * 0.5 * math.sqrt(bins / max(rows, 1))


def decide(
    champion: Mapping[str, float] | None,
    challenger: Mapping[str, float],
    margin: float = DEFAULT_MARGIN,
    calibration_margin: float = DEFAULT_CALIBRATION_MARGIN,
) -> Verdict:
    """Whether the challenger replaces the champion, from their metrics on the same shots.

    The challenger wins when its log loss is at least ``margin`` below the champion's, its
    ROC-AUC is not lower, and (when both carry ``ece``) its expected calibration error is not
    worse than the champion's by more than ``calibration_margin`` or the error chance alone
    gives on this many shots (``rows``), whichever is larger: fair odds from a model that is
    better on average but off by several points for a whole band of shots are not better odds.
    With no champion (None) it wins outright.

    Example:
        >>> champion = {"log_loss": 0.640, "roc_auc": 0.660}
        >>> decide(champion, {"log_loss": 0.630, "roc_auc": 0.670}).promote
        True
        >>> decide(champion, {"log_loss": 0.639, "roc_auc": 0.670}).reason
        "log loss 0.6390 is not at least 0.0020 below the champion's 0.6400"
        >>> decide(champion, {"log_loss": 0.600, "roc_auc": 0.650}).reason
        "ROC-AUC 0.6500 is below the champion's 0.6600"
    """
    if not margin >= 0:
        raise ValueError(f"the log-loss margin must be 0 or more, not {margin}")
    if not calibration_margin >= 0:
        raise ValueError(f"the calibration margin must be 0 or more, not {calibration_margin}")
    if champion is None:
        return Verdict(True, "there is no champion yet")
    values = [champion["log_loss"], champion["roc_auc"], challenger["log_loss"]]
    values.append(challenger["roc_auc"])
    if any(not math.isfinite(v) for v in values):
        return Verdict(False, "a metric is undefined on this window (one outcome only?)")
    ll_champion, ll_challenger = champion["log_loss"], challenger["log_loss"]
    auc_champion, auc_challenger = champion["roc_auc"], challenger["roc_auc"]
    # A hair of tolerance so "exactly the margin" counts despite floating point.
    if ll_challenger > ll_champion - margin + 1e-12:
        return Verdict(
            False,
            f"log loss {ll_challenger:.4f} is not at least {margin:.4f} below the champion's "
            f"{ll_champion:.4f}",
        )
    if auc_challenger < auc_champion:
        return Verdict(
            False, f"ROC-AUC {auc_challenger:.4f} is below the champion's {auc_champion:.4f}"
        )
    ece_champion, ece_challenger = champion.get("ece"), challenger.get("ece")
    if ece_champion is not None and ece_challenger is not None:
        rows = int(challenger.get("rows") or champion.get("rows") or 0)
        allowed = calibration_margin
        if rows:
            allowed = max(allowed, chance_calibration_error(rows))
        if math.isfinite(ece_champion) and not ece_challenger <= ece_champion + allowed + 1e-12:
            return Verdict(
                False,
                f"calibration error {ece_challenger:.4f} is worse than the champion's "
                f"{ece_champion:.4f} by more than {allowed:.4f}",
            )
    return Verdict(
        True,
        f"log loss {ll_challenger:.4f} vs {ll_champion:.4f} (lower by "
        f"{ll_champion - ll_challenger:.4f} >= {margin:.4f}) and ROC-AUC {auc_challenger:.4f} "
        f">= {auc_champion:.4f}",
    )
