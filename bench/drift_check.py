"""What one retrain-loop drift check costs: Evidently's presets as the loop ran them before, side
by side with the direct computation it runs now, in one run on the same real shots.

A LightGBM champion is fitted on 30,000 real shots of the 2018-19 season; its training sample
(5,000 rows, what ``parivision train`` logs) is the reference.  The recent window is the next
2,000 real shots (``--shift``: taken 8 ft further out, :func:`models.drift_report.shifted_shots`),
scored by the champion.  Reading the window from MongoDB is the same for both and not timed.

- ``evidently`` (before): ``DataDriftPreset`` and ``ClassificationPreset`` run, their numbers
  read with ``snapshot.dict()``, the HTML report rendered and saved with ``latest.html`` and
  ``latest.json`` (:func:`models.drift_report.save_report`);
- ``direct`` (now): :func:`models.drift_report.check_drift` and
  :func:`models.drift_checks.save_check` (the summary, the recent window and, once, the
  reference saved for a report drawn on request).

Prints wall and CPU milliseconds per check and per shot, the ratio, whether the two agree on
every verdict, what drawing the report on request then costs, and one JSON line.

    .venv/bin/python bench/drift_check.py                 # --repeat 3 for Evidently
    .venv/bin/python bench/drift_check.py --shift
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from models.candidates import make_candidates
from models.data import load_shots
from models.drift_checks import draw_report, save_check
from models.drift_evidently import (
    drift_numbers,
    drift_snapshot,
    quality_numbers,
    quality_snapshot,
    report_html,
)
from models.drift_report import (
    DRIFT_SHARE,
    MIN_LABELLED,
    DriftSummary,
    check_drift,
    labelled_shots,
    measurable,
    save_report,
    shifted_shots,
    summarize,
)
from models.drift_stats import columns_to_test
from models.features import FEATURE_NAMES, build_features
from models.reference import CHAMPION, Reference, reference_sample

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nba_shots.csv"
TRAIN, RECENT = (178_000, 208_000), (208_000, 210_000)


def window(shift: bool) -> tuple[pd.DataFrame, Reference]:
    """The recent window (features, outcomes, the champion's probabilities) and the reference."""
    shots = load_shots(DATA)
    train = shots.iloc[slice(*TRAIN)]
    x_train, y_train = build_features(train), train["made"].to_numpy(dtype=np.int64)
    champion = make_candidates(["lightgbm"])[0].fit(x_train, y_train)
    reference = Reference(
        reference_sample(x_train, y_train),
        CHAMPION,
        f"champion v1's training sample (5,000 of {len(train):,} rows)",
        version="1",
    )
    recent_shots = shots.iloc[slice(*RECENT)]
    if shift:
        recent_shots = shifted_shots(recent_shots)
    # Player form from every earlier shot, as a stream that has run all season has it.
    x = build_features(pd.concat([train, recent_shots]))[len(train) :]
    recent = pd.DataFrame(x, columns=list(FEATURE_NAMES))
    recent["outcome"] = recent_shots["made"].to_numpy(dtype=np.float64)
    recent["p_champion"] = champion.predict(x)
    return recent, reference


def evidently_check(recent: pd.DataFrame, reference: Reference, folder: Path) -> DriftSummary:
    """The check as the loop ran it before: Evidently's presets, their numbers, the report."""
    columns = columns_to_test(recent, reference.frame, FEATURE_NAMES)
    drift = drift_snapshot(recent, reference.frame, columns, DRIFT_SHARE)
    share, scores = drift_numbers(drift)
    labelled = labelled_shots(recent)
    quality, numbers = None, {}
    if measurable(labelled):
        quality = quality_snapshot(labelled)
        numbers = quality_numbers(quality)
    summary = summarize(
        recent,
        reference,
        labelled_rows=len(labelled),
        share=share,
        drift_share=DRIFT_SHARE,
        scores=scores,
        columns=columns,
        quality=numbers,
        champion_version="1",
        at=time.time(),
    )
    save_report(folder, summary, report_html(summary, drift, quality, MIN_LABELLED))
    return summary


def direct_check(recent: pd.DataFrame, reference: Reference, folder: Path) -> DriftSummary:
    """The check as the loop runs it now."""
    summary, inputs = check_drift(recent, reference, champion_version="1")
    save_check(folder, summary, inputs)
    return summary


def timed(check, repeat: int, *args) -> tuple[list[float], list[float], DriftSummary]:
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        summary = check(*args)
        walls.append(1000 * (time.perf_counter() - wall))
        cpus.append(1000 * (time.process_time() - cpu))
    return walls, cpus, summary


def agree(ours: DriftSummary, theirs: DriftSummary) -> tuple[bool, float]:
    """Whether two checks give the same verdicts, and their largest relative difference."""
    same = (ours.dataset_drift, ours.drifted, ours.drift_share) == (
        theirs.dataset_drift,
        theirs.drifted,
        theirs.drift_share,
    ) and all(
        (a.method, a.drifted) == (theirs.features[n].method, theirs.features[n].drifted)
        for n, a in ours.features.items()
    )
    pairs = [(a.score, theirs.features[n].score) for n, a in ours.features.items()]
    pairs += [(v, theirs.quality[k]) for k, v in ours.quality.items()]
    worst = max(abs(a - b) / max(abs(b), 1e-300) for a, b in pairs)
    return same and set(ours.quality) == set(theirs.quality), worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shift", action="store_true", help="the recent shots 8 ft further out")
    parser.add_argument("--repeat", type=int, default=3, help="Evidently checks (each seconds)")
    parser.add_argument("--direct-repeat", type=int, default=30)
    args = parser.parse_args()
    recent, reference = window(args.shift)
    rows = len(recent)
    with tempfile.TemporaryDirectory(prefix="parivision-drift-bench-") as folder:
        old_dir, new_dir = Path(folder) / "evidently", Path(folder) / "direct"
        # Warm up both (Evidently's imports, scikit-learn's first calls); not timed.
        evidently_check(recent, reference, old_dir)
        direct_check(recent, reference, new_dir)
        old_wall, old_cpu, old = timed(evidently_check, args.repeat, recent, reference, old_dir)
        new_wall, new_cpu, new = timed(direct_check, args.direct_repeat, recent, reference, new_dir)
        draw = time.perf_counter()
        draw_report(Path(new.report))
        draw_ms = 1000 * (time.perf_counter() - draw)
    same, worst = agree(new, old)
    ms = {
        "evidently": (statistics.median(old_wall), statistics.median(old_cpu)),
        "direct": (statistics.median(new_wall), statistics.median(new_cpu)),
    }
    window_name = "shifted" if args.shift else "real"
    print(
        f"one drift check: {rows:,} {window_name} shots against {len(reference.frame):,} "
        f"reference rows (median of {args.repeat} Evidently, {args.direct_repeat} direct)"
    )
    print(f"{'path':<10} {'wall ms':>10} {'CPU ms':>10} {'CPU ms/shot':>12}")
    for name, (wall, cpu) in ms.items():
        print(f"{name:<10} {wall:>10.1f} {cpu:>10.1f} {cpu / rows:>12.4f}")
    ratio = ms["evidently"][1] / ms["direct"][1]
    print(f"ratio (CPU): Evidently costs {ratio:.0f}x the direct check")
    print(
        f"same verdicts: {same} (dataset drift {new.dataset_drift}, share {new.drift_share:.3f}, "
        f"{len(new.drifted)} drifted); largest relative difference {worst:.1e}"
    )
    print(f"drawing the report on request, once per check asked for: {draw_ms:.0f} ms")
    print(
        json.dumps(
            {
                "window": window_name,
                "shots": rows,
                "reference_rows": len(reference.frame),
                "evidently_ms": round(ms["evidently"][1], 1),
                "direct_ms": round(ms["direct"][1], 2),
                "evidently_wall_ms": round(ms["evidently"][0], 1),
                "direct_wall_ms": round(ms["direct"][0], 2),
                "ratio": round(ratio, 1),
                "same_verdicts": same,
                "largest_relative_difference": worst,
                "draw_on_request_ms": round(draw_ms),
            }
        )
    )


if __name__ == "__main__":
    main()
