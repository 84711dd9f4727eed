"""Each online learner's live quality and cost next to the champion's, on real shots in order.

Trains a LightGBM champion (the ``lightgbm`` candidate of ``parivision train``) on every shot
dated before ``--split`` (default 2018-12-01) of the real NBA file, then replays the next
``--shots`` (default 100,000) shots in time order through :class:`streams.scoring.Scorer`, the
code the stream runs: a micro-batch of ``--batch`` shots is scored, then its outcomes arrive.
Every learner predicts each shot before it learns its outcome, so the numbers are progressive
validation, measured on the same shots as the champion's.  Prints a markdown table and, last,
one JSON line.

    .venv/bin/python bench/online_learners.py
    .venv/bin/python bench/online_learners.py --champion-from-bulk --split 20181001   # new season
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from models.candidates import LightGBMCandidate
from models.data import combine_shots, load_shots
from models.features import build_features
from models.form import FORM_NAMES
from models.online import LEARNERS
from models.registry import Champion
from streams.scoring import Scorer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nba_shots.csv"
BULK = DATA.parent / "nba_shots_2003_2018_bulk.csv.gz"


class _Timed:
    """A learner that counts the time spent in its ``predict_proba_one`` and ``learn_one``."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.seconds = 0.0
        self.learned = 0
        # A learner on top of the champion is given the champion's logit (models.online).
        self.uses_champion = getattr(model, "uses_champion", False)

    def predict_proba_one(self, x: dict) -> dict:
        start = time.perf_counter()
        try:
            return self.model.predict_proba_one(x)
        finally:
            self.seconds += time.perf_counter() - start

    def learn_one(self, x: dict, y: bool) -> None:
        start = time.perf_counter()
        try:
            self.model.learn_one(x, y)
        finally:
            self.seconds += time.perf_counter() - start
            self.learned += 1


def run(
    data: Path, split: int, shots: int, batch: int, learners: list[str], bulk: Path | None = None
) -> dict:
    frame = load_shots(data)
    if bulk is None:
        train = frame[frame["game_date"] < split]
        later = frame[frame["game_date"] >= split].iloc[:shots]
    else:
        # A season the champion never saw: trained on the bulk file's seasons only, replaying
        # the file's shots from the split on.
        frame = combine_shots([frame.assign(bulk=False), load_shots(bulk).assign(bulk=True)])
        train = frame[(frame["game_date"] < split) & frame["bulk"]]
        later = frame[(frame["game_date"] >= split) & ~frame["bulk"]].iloc[:shots]
        frame = frame.drop(columns=["bulk"])
        train, later = train.drop(columns=["bulk"]), later.drop(columns=["bulk"])
    if train.empty or len(later) < shots:
        raise SystemExit(f"--split {split} leaves too few shots on one side of {data}")
    start = time.perf_counter()
    candidate = LightGBMCandidate()
    # Player form over the whole history at once: the replayed shots' form includes training
    # shots, as the stream's table would after it had seen them.
    matrix = build_features(frame)
    model = candidate.fit(matrix[train.index.to_numpy()], train["made"].to_numpy())
    later_form = matrix[later.index.to_numpy()][:, -len(FORM_NAMES) :]
    train_s = time.perf_counter() - start
    champion = Champion(name="bench", version="bench", model=model)

    scorer = Scorer(champion, learners=learners)
    timed = {name: _Timed(learner) for name, learner in scorer.learners.items()}
    scorer.learners = dict(timed)  # same protocol; the Scorer cannot tell

    records = later.drop(columns=["made"]).to_dict("records")
    for record in records:
        record["shot_id"] = f"{record['game_id']}-{record['game_event_id']}"
    made = later["made"].tolist()
    start = time.perf_counter()
    for first in range(0, len(records), batch):
        scored = scorer.score_batch(
            records[first : first + batch], form=later_form[first : first + batch]
        )
        for record, y in zip(scored, made[first : first + batch], strict=True):
            scorer.label(record, y)
    replay_s = time.perf_counter() - start

    live = scorer.live_metrics()
    rows = {"champion (LightGBM)": {**live["champion"], "us_per_shot": None}}
    for name, learner in timed.items():
        rows[name] = {
            **live["learners"][name],
            "us_per_shot": round(learner.seconds / max(learner.learned, 1) * 1e6, 1),
        }
    return {
        "data": str(data),
        "split": split,
        "train_shots": len(train),
        "champion_rounds": candidate.fit_info["rounds"],
        "train_s": round(train_s, 1),
        "replayed_shots": len(records),
        "replay_dates": [int(later["game_date"].min()), int(later["game_date"].max())],
        "batch": batch,
        "replay_s": round(replay_s, 1),
        "shots_per_s_all_learners": round(len(records) / replay_s),
        "models": {
            name: {
                "n": row["n"],
                "log_loss": round(row["log_loss"], 4),
                "roc_auc": round(float(row["roc_auc"]), 4),
                "us_per_shot": row["us_per_shot"],
            }
            for name, row in rows.items()
        },
    }


def print_table(report: dict) -> None:
    print(
        f"{report['replayed_shots']:,} shots dated {report['replay_dates'][0]}-"
        f"{report['replay_dates'][1]}, after training on {report['train_shots']:,}; "
        f"micro-batches of {report['batch']}, {report['shots_per_s_all_learners']:,} shots/s "
        "with every learner\n"
    )
    print("| model | shots | log loss | ROC-AUC | µs per shot (predict + learn) |")
    print("|---|---:|---:|---:|---:|")
    for name, row in report["models"].items():
        cost = "-" if row["us_per_shot"] is None else f"{row['us_per_shot']:.0f}"
        print(f"| {name} | {row['n']:,} | {row['log_loss']:.4f} | {row['roc_auc']:.4f} | {cost} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--split", type=int, default=20181201, help="first replayed date, YYYYMMDD")
    parser.add_argument("--shots", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--learner", action="append", choices=sorted(LEARNERS), help="repeat; default all"
    )
    parser.add_argument(
        "--champion-from-bulk",
        type=Path,
        nargs="?",
        const=BULK,
        help="train the champion on the bulk file (2003-18) instead, and replay from --split "
        "(use 20181001: the 2018-19 season it never saw)",
    )
    args = parser.parse_args()
    report = run(
        args.data,
        args.split,
        args.shots,
        args.batch,
        args.learner or list(LEARNERS),
        bulk=args.champion_from_bulk,
    )
    print_table(report)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
