"""How well a model trained on earlier seasons predicts a season it never saw (issue 10).

Test: the 2018-19 regular season of ``nba_shots.csv`` (every shot from ``--split``, default
2018-10-01).  Each recipe trains on shots before it, as ``parivision train`` does (the most recent
15% of its shots, whole dates, validate; the best is recalibrated on them when that helps,
:mod:`models.calibration`), and is measured twice on the test season:

- *form from history*: player form computed over training and test shots in time order, as a
  stream that has kept its form table since training would;
- *form from zero*: player form computed from the test season alone, as ``parivision evaluate``
  on a file of later seasons (and a fresh stream) does.

Recipes: the original PariVision features (logistic regression) on the whole bulk file;
LightGBM on the whole bulk file (issue 10's finding, reproduced), with and without recency
weights; LightGBM on the bulk file's latest season with the ``nba_shots.csv`` shots before the
split (the README's champion command, ``--since 20171001``); and LightGBM on the
``nba_shots.csv`` shots before the split alone.  Every LightGBM recipe is shown before and after
recalibration where that changed it.  Nothing is logged or registered.  Prints a markdown table
and, last, one JSON line.  Takes about 10 minutes on two cores (two 3M-row fits).

    .venv/bin/python bench/next_season.py
    .venv/bin/python bench/next_season.py --recipe latest_season --recipe small   # fewer
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.progress import Progress

from models.calibration import apply_platt, recalibrate
from models.candidates import make_candidates
from models.data import combine_shots, load_shots
from models.features import FEATURE_SET, build_features
from models.metrics import score
from models.original import original_features
from models.train import recency_weights, time_split

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHOTS, BULK = DATA / "nba_shots.csv", DATA / "nba_shots_2003_2018_bulk.csv.gz"


@dataclass(frozen=True)
class Recipe:
    name: str
    label: str
    bulk_since: int | None = None  # None: the whole bulk file; 0: none of it
    half_life_days: float | None = None
    original: bool = False


RECIPES = {
    r.name: r
    for r in (
        Recipe(
            "original_bulk",
            "original features (7), logistic regression, bulk 2003-18 + nba_shots",
            original=True,
        ),
        Recipe("bulk", "LightGBM, bulk 2003-18 + nba_shots"),
        Recipe(
            "bulk_half_life",
            "LightGBM, bulk 2003-18 + nba_shots, half-life 180 days",
            half_life_days=180,
        ),
        Recipe("latest_season", "LightGBM, bulk 2017-18 + nba_shots (README command)", 20171001),
        Recipe("small", "LightGBM, nba_shots.csv alone", bulk_since=0),
    )
}


def _measure(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    m = score(y, p)
    return {
        **{k: round(m[k], 4) for k in ("roc_auc", "log_loss", "brier", "ece")},
        "mean_p": round(float(p.mean()), 4),
    }


def run_recipe(recipe: Recipe, shots: pd.DataFrame, bulk: pd.DataFrame, split: int) -> list[dict]:
    """The recipe's row, and a row for it before recalibration when that changed it."""
    parts = [shots]
    if recipe.bulk_since != 0:
        since = recipe.bulk_since or 0
        parts.append(bulk[bulk["game_date"] >= since])
    frame = combine_shots(parts) if len(parts) > 1 else shots
    before = frame[frame["game_date"] < split]
    test = frame[(frame["game_date"] >= split) & (frame["source"] == "nba_shots")]
    train, valid = time_split(before, 0.15)
    y_train, y_valid = train["made"].to_numpy(), valid["made"].to_numpy()
    y_test = test["made"].to_numpy()
    started = time.perf_counter()
    if recipe.original:
        from model_quality import fit_original  # beside this file

        model = fit_original(original_features(train), y_train)
        p_hist = model.predict_proba(original_features(test))[:, 1]
        p_zero = p_hist  # no player form in these features
        note = "no player form"
    else:
        matrix = build_features(frame)
        zero = build_features(test.reset_index(drop=True))
        weight = (
            recency_weights(train["game_date"].to_numpy(), recipe.half_life_days)
            if recipe.half_life_days
            else None
        )
        model = make_candidates(["lightgbm"])[0].fit(
            matrix[train.index.to_numpy()], y_train, weight
        )
        p_hist = model.predict_raw(matrix[test.index.to_numpy()])
        p_zero = model.predict_raw(zero)
        found = recalibrate(model.predict_raw(matrix[valid.index.to_numpy()]), y_valid)
        if found.calibration is not None:
            raw = (p_hist, p_zero)
            p_hist = apply_platt(p_hist, found.calibration)
            p_zero = apply_platt(p_zero, found.calibration)
        note = "recalibrated" if found.calibration else found.reason
    row = {
        "name": recipe.name,
        "recipe": recipe.label + (", recalibrated" if note == "recalibrated" else ""),
        "features": "original (7)" if recipe.original else f"ours ({FEATURE_SET})",
        "train_rows": len(train),
        "train_dates": [int(train["game_date"].min()), int(train["game_date"].max())],
        "valid_dates": [int(valid["game_date"].min()), int(valid["game_date"].max())],
        "calibration": note,
        "form_from_history": _measure(y_test, p_hist),
        "form_from_zero": _measure(y_test, p_zero),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if note != "recalibrated":
        return [row]
    before = {
        **row,
        "name": f"{recipe.name}_raw",
        "recipe": f"{recipe.label}, not recalibrated",
        "calibration": "not recalibrated",
        "form_from_history": _measure(y_test, raw[0]),
        "form_from_zero": _measure(y_test, raw[1]),
    }
    return [before, row]


def markdown(report: dict) -> str:
    lines = [
        f"Test: {report['test_rows']:,} shots of nba_shots.csv from {report['split']} "
        f"(make rate {report['make_rate']:.4f}).",
        "",
        "| recipe | trained on | ROC-AUC | log loss | Brier | ECE | mean p | log loss, form "
        "from zero | mean p, form from zero |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        h, z = r["form_from_history"], r["form_from_zero"]
        lines.append(
            f"| {r['recipe']} | {r['train_rows']:,} | {h['roc_auc']:.4f} | {h['log_loss']:.4f} | "
            f"{h['brier']:.4f} | {h['ece']:.4f} | {h['mean_p']:.3f} | {z['log_loss']:.4f} | "
            f"{z['mean_p']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=int, default=20181001, help="first test date, YYYYMMDD")
    parser.add_argument("--recipe", action="append", choices=list(RECIPES), help="repeatable")
    args = parser.parse_args()
    shots = load_shots(SHOTS).assign(source="nba_shots")
    bulk = load_shots(BULK).assign(source="bulk")
    test = shots[shots["game_date"] >= args.split]
    if test.empty:
        raise SystemExit(f"--split {args.split} leaves no test shots in {SHOTS}")
    report = {
        "split": args.split,
        "test_rows": len(test),
        "make_rate": round(float(test["made"].mean()), 4),
        "results": [],
    }
    chosen = [RECIPES[name] for name in args.recipe or RECIPES]
    with Progress(transient=True) as progress:
        task = progress.add_task("recipes", total=len(chosen))
        for recipe in chosen:
            progress.update(task, description=f"training {recipe.name}")
            report["results"] += run_recipe(recipe, shots, bulk, args.split)
            progress.advance(task)
    print(markdown(report))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
