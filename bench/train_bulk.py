"""How long `parivision train` takes, and how much memory it needs, on ~3 million shots.

Loads the bulk file (2003-04 to 2017-18 regular seasons, 2,980,062 shots) with
:func:`models.data.load_shots`, times :func:`models.features.build_features` on all of it, then
trains and registers exactly as `parivision train` does (:func:`models.train.train_and_register`:
time split, candidates, nested MLflow runs with plots, registration) into a throw-away SQLite
MLflow store in a temporary folder.  Prints seconds per stage, the process's peak resident memory
and the validation metrics, and, last, one JSON line.

    .venv/bin/python bench/train_bulk.py            # candidates lightgbm, hist_gb, logreg
    .venv/bin/python bench/train_bulk.py --candidates lightgbm random_forest --limit 500000

Timings depend on what else runs on the machine; the JSON line records the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from rich.console import Console

import models.train
from models.candidates import CANDIDATES
from models.data import load_shots
from models.features import build_features
from models.train import train_and_register
from parivision.settings import Settings

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nba_shots_2003_2018_bulk.csv.gz"
DEFAULT_CANDIDATES = ["lightgbm", "hist_gb", "logreg"]
MIB = 1024 * 1024


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """The high-water resident set size (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(who).ru_maxrss / 1024


def current_rss_mib() -> float:
    """The resident set size now, from /proc (0 where there is no /proc)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def say(message: str) -> None:
    print(message, flush=True)


def stage(name: str, seconds: float) -> None:
    say(
        f"{name:<9} {seconds:8.1f} s   rss now {current_rss_mib():7.0f} MiB, "
        f"peak {peak_rss_mib():7.0f} MiB"
    )


@contextmanager
def timed_candidates(spans: dict[str, float]):
    """Time each candidate's fit, validation scoring and importance (``fit_candidate``) as
    ``train_and_register`` calls it; what the library already measures (``fit_seconds``) is only
    the fit.  The MLflow logging after it is left in the train stage's remainder."""
    original = models.train.fit_candidate

    def fit_candidate(candidate, *args, **kwargs):
        started = time.perf_counter()
        try:
            return original(candidate, *args, **kwargs)
        finally:
            spans[candidate.name] = time.perf_counter() - started

    models.train.fit_candidate = fit_candidate
    try:
        yield spans
    finally:
        models.train.fit_candidate = original


def run(data: Path, limit: int | None, candidates: list[str], validation_share: float) -> dict:
    load_before = os.getloadavg()
    say(
        f"{data.name}: {os.cpu_count()} CPUs, load average {load_before[0]:.2f} "
        f"(other work on the machine makes these timings noisy)"
    )

    started = time.perf_counter()
    frame = load_shots(data, limit=limit)
    load_s = time.perf_counter() - started
    frame_mib = frame.memory_usage(deep=True).sum() / MIB
    stage("load", load_s)
    say(f"          {len(frame):,} shots, frame {frame_mib:,.0f} MiB (pandas deep size)")

    started = time.perf_counter()
    matrix = build_features(frame)
    features_s = time.perf_counter() - started
    matrix_mib = matrix.nbytes / MIB
    stage("features", features_s)
    rows, columns = matrix.shape
    say(f"          matrix {rows:,} x {columns} {matrix.dtype}, {matrix_mib:,.0f} MiB")
    # train_and_register builds its own matrices (training and validation side); this one only
    # measured the feature step, so it should not inflate the peak below.
    del matrix

    console = Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix="parivision-bench-") as home:
        settings = Settings(home=home, mlflow_tracking_uri=f"sqlite:///{home}/mlflow.db")
        walls: dict[str, float] = {}
        started = time.perf_counter()
        with timed_candidates(walls):
            result = train_and_register(
                settings,
                frame,
                data_name=data.name,
                validation_share=validation_share,
                candidates=candidates,
                console=console,
            )
        train_s = time.perf_counter() - started
    stage("train", train_s)

    window = result.window
    say(
        f"          split: train {window['train_rows']:,} shots "
        f"{window.get('train_from')}-{window.get('train_to')}, "
        f"validation {window['valid_rows']:,} shots "
        f"{window.get('valid_from')}-{window.get('valid_to')}"
    )
    rest_s = train_s - sum(walls.values())
    say(
        f"          split + features of both sides, MLflow logging (plots), registration: "
        f"{rest_s:.1f} s"
    )
    say(
        f"{'candidate':<14} {'fit s':>7} {'+score s':>8} {'log loss':>9} "
        f"{'ROC-AUC':>8} {'Brier':>7} {'acc':>7}"
    )
    per_candidate = {}
    for r in sorted(result.candidates, key=lambda r: r.metrics["log_loss"]):
        m = r.metrics
        wall = walls.get(r.name, float("nan"))
        say(
            f"{r.name:<14} {r.fit_seconds:7.1f} {wall:8.1f} {m['log_loss']:9.4f} "
            f"{m['roc_auc']:8.4f} {m['brier']:7.4f} {m['accuracy']:7.4f}"
            + ("   <- registered" if r.name == result.candidate else "")
        )
        per_candidate[r.name] = {
            "fit_s": round(r.fit_seconds, 1),
            "fit_score_importance_s": round(wall, 1),
            "rows_fitted": r.params.get("rows_fitted"),
            "rounds": r.params.get("rounds"),
            **{k: round(v, 4) for k, v in m.items()},
        }
    say(f"{'base rate':<14} {'':>7} {'':>8} {result.metrics['base_rate_log_loss']:9.4f}")
    say(f"registered {result.candidate} as v{result.version} in a temporary MLflow store")

    peak = peak_rss_mib()
    children = peak_rss_mib(resource.RUSAGE_CHILDREN)
    say(f"peak RSS {peak:,.0f} MiB (this process), {children:,.0f} MiB (largest child process)")
    return {
        "data": data.name,
        "rows": len(frame),
        "dropped_rows": int(frame.attrs.get("dropped_rows", 0)),
        "train_rows": window["train_rows"],
        "valid_rows": window["valid_rows"],
        "window": window,
        "load_s": round(load_s, 1),
        "frame_mib": round(frame_mib),
        "features_s": round(features_s, 1),
        "matrix_mib": round(matrix_mib),
        "train_s": round(train_s, 1),
        "train_other_s": round(rest_s, 1),
        "total_s": round(load_s + features_s + train_s, 1),
        "candidates": per_candidate,
        "best": result.candidate,
        "valid_log_loss": round(result.metrics["log_loss"], 4),
        "valid_roc_auc": round(result.metrics["roc_auc"], 4),
        "base_rate_log_loss": round(result.metrics["base_rate_log_loss"], 4),
        "peak_rss_mib": round(peak),
        "children_peak_rss_mib": round(children),
        "cpus": os.cpu_count(),
        "load_avg_start": round(load_before[0], 2),
        "load_avg_end": round(os.getloadavg()[0], 2),
        "numpy": np.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="22-column CSV or .csv.gz")
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows")
    parser.add_argument(
        "--candidates",
        nargs="+",
        default=DEFAULT_CANDIDATES,
        choices=list(CANDIDATES),
        metavar="NAME",
        help=f"from {', '.join(CANDIDATES)} (default: {' '.join(DEFAULT_CANDIDATES)})",
    )
    parser.add_argument("--validation-share", type=float, default=0.15)
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"no data at {args.data}")
    print(json.dumps(run(args.data, args.limit, args.candidates, args.validation_share)))


if __name__ == "__main__":
    main()
