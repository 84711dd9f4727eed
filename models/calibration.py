"""Recalibrating a model's probabilities on the most recent shots, when that makes them better.

A model can rank shots well and still be off on the level: trained on fifteen seasons, LightGBM
put the 2018-19 shots 5 points above their make rate, because the league's shots changed under
the same features.  Platt scaling (a logistic regression on the model's logit) moves and
stretches the probabilities to match the latest shots without changing their order.

:func:`recalibrate` decides honestly: it fits on the earlier half of the validation window and
keeps the calibration only if it lowers log loss on the later half, which it has not seen; the
calibration then shipped is refitted on the whole window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.metrics import EPSILON, score

# Below this many shots in each half a two-parameter fit is not worth trusting.
MIN_HALF = 500


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPSILON, 1.0 - EPSILON)
    return np.log(p) - np.log1p(-p)


def fit_platt(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope and intercept on the logit that make ``p`` best match outcomes ``y`` (log loss).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> p = rng.uniform(0.2, 0.8, 20_000)
        >>> y = rng.random(20_000) < p - 0.05          # the model says 5 points too much
        >>> bool(abs(apply_platt(p, fit_platt(p, y)).mean() - y.mean()) < 0.001)
        True
    """
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y, dtype=np.int64)
    if len(np.unique(y)) < 2:
        raise ValueError("calibration needs both made and missed shots")
    fitted = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(p)[:, None], y)
    return float(fitted.coef_[0, 0]), float(fitted.intercept_[0])


def apply_platt(p: np.ndarray, calibration: tuple[float, float]) -> np.ndarray:
    """``p`` moved by a (slope, intercept) from :func:`fit_platt`."""
    slope, intercept = calibration
    return 1.0 / (1.0 + np.exp(-(slope * _logit(p) + intercept)))


@dataclass(frozen=True)
class Recalibration:
    """What :func:`recalibrate` found: the later half's metrics before and after, and the
    calibration to ship (None when it did not help)."""

    calibration: tuple[float, float] | None
    reason: str
    holdout_rows: int = 0
    before: dict[str, float] | None = None
    after: dict[str, float] | None = None


def recalibrate(p: np.ndarray, y: np.ndarray, min_half: int = MIN_HALF) -> Recalibration:
    """Platt scaling fitted on the validation window ``p``/``y`` (time order), if it helps.

    Fitted on the earlier half and measured on the later half: kept only when it lowers the later
    half's log loss; then refitted on the whole window.
    """
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.int64)
    half = len(p) // 2
    if half < min_half:
        return Recalibration(None, f"{len(p):,} validation shots are too few to recalibrate on")
    early, late = slice(None, half), slice(half, None)
    if len(np.unique(y[early])) < 2 or len(np.unique(y[late])) < 2:
        return Recalibration(None, "a half of the validation window has one outcome only")
    before = score(y[late], p[late])
    after = score(y[late], apply_platt(p[late], fit_platt(p[early], y[early])))
    found = {"holdout_rows": len(p) - half, "before": before, "after": after}
    if not after["log_loss"] < before["log_loss"]:
        return Recalibration(
            None,
            f"Platt scaling fitted on the earlier half did not lower the later half's log loss "
            f"({before['log_loss']:.4f} -> {after['log_loss']:.4f})",
            **found,
        )
    return Recalibration(
        fit_platt(p, y),
        f"Platt scaling lowered the later half's log loss {before['log_loss']:.4f} -> "
        f"{after['log_loss']:.4f} and its calibration error {before['ece']:.4f} -> "
        f"{after['ece']:.4f}; refitted on the whole validation window",
        **found,
    )
