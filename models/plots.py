"""Pictures logged with every candidate: calibration, confusion matrix, feature importance.

Drawn on matplotlib's Agg canvas directly (no ``pyplot``), so nothing global is switched and it
works on machines without a display.  Each function writes one PNG and returns its path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def calibration_bins(
    y_true: np.ndarray, p: np.ndarray, bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width probability bin: mean prediction, observed make rate, shot count.

    Empty bins are left out.
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    index = np.clip((p * bins).astype(int), 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    predicted = np.bincount(index, weights=p, minlength=bins)
    observed = np.bincount(index, weights=y, minlength=bins)
    kept = counts > 0
    return predicted[kept] / counts[kept], observed[kept] / counts[kept], counts[kept]


def plot_calibration(
    y_true: np.ndarray, p: np.ndarray, path: str | Path, *, bins: int = 10, title: str = ""
) -> Path:
    """Reliability diagram: observed make rate against predicted P(made), with bin counts below."""
    predicted, observed, counts = calibration_bins(y_true, p, bins)
    figure = _figure(6, 6.5)
    top, bottom = figure.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    top.plot(predicted, observed, marker="o", label="model")
    for x, y, n in zip(predicted, observed, counts, strict=True):
        top.annotate(f"{n:,}", (x, y), textcoords="offset points", xytext=(4, -12), fontsize=7)
    top.set_ylabel("observed make rate")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.legend(loc="upper left")
    top.set_title(title or "Calibration (reliability diagram)")
    edges = np.linspace(0, 1, bins + 1)
    bottom.hist(np.asarray(p, dtype=np.float64), bins=edges, color="tab:blue", alpha=0.7)
    bottom.set_xlabel("predicted P(made)")
    bottom.set_ylabel("shots")
    return _save(figure, path)


def confusion_counts(y_true: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """2x2 counts, rows actual (missed, made), columns called at ``threshold`` (missed, made)."""
    y = np.asarray(y_true, dtype=np.int64)
    called = (np.asarray(p, dtype=np.float64) >= threshold).astype(np.int64)
    return np.bincount(y * 2 + called, minlength=4).reshape(2, 2)


def plot_confusion(
    y_true: np.ndarray, p: np.ndarray, path: str | Path, *, threshold: float = 0.5, title: str = ""
) -> Path:
    """Confusion matrix of the call ``P(made) >= threshold``, with counts and row shares."""
    counts = confusion_counts(y_true, p, threshold)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure = _figure(5, 4.5)
    axes = figure.subplots()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, label="share of actual")
    labels = ["missed", "made"]
    axes.set_xticks([0, 1], labels)
    axes.set_yticks([0, 1], labels)
    axes.set_xlabel(f"called (P >= {threshold:g})")
    axes.set_ylabel("actual")
    for i in range(2):
        for j in range(2):
            colour = "white" if shares[i, j] > 0.5 else "black"
            axes.text(
                j,
                i,
                f"{counts[i, j]:,}\n{shares[i, j]:.0%}",
                ha="center",
                va="center",
                color=colour,
            )
    axes.set_title(title or "Confusion matrix")
    return _save(figure, path)


def plot_importance(
    names: Sequence[str],
    values: np.ndarray,
    path: str | Path,
    *,
    kind: str = "importance",
    top: int = 30,
    title: str = "",
) -> Path:
    """Horizontal bars of the ``top`` features by ``values``, largest at the top."""
    values = np.asarray(values, dtype=np.float64)
    if len(names) != len(values):
        raise ValueError(f"{len(names)} feature names for {len(values)} importance values")
    order = np.argsort(values)[::-1][:top][::-1]
    figure = _figure(7, max(3.0, 0.28 * len(order) + 1.2))
    axes = figure.subplots()
    axes.barh([names[i] for i in order], values[order], color="tab:green")
    axes.set_xlabel(kind)
    axes.set_title(title or "Feature importance")
    return _save(figure, path)
