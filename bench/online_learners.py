"""Each online learner's live quality and cost next to the champion's, on real shots in order.

Trains a LightGBM champion (the ``lightgbm`` candidate of ``parivision train``) on every shot
dated before ``--split`` (default 2018-12-01) of the real NBA file, then replays the next
``--shots`` (default 100,000) shots in time order through :class:`streams.scoring.Scorer`, the
code the stream runs: a micro-batch of ``--batch`` shots is scored, then its outcomes arrive.
Every learner predicts each shot before it learns its outcome, so the numbers are progressive
validation, measured on the same shots as the champion's: log loss after the first 5,000,
20,000 and 100,000 shots (``--at``), ROC-AUC over all of them, and the mean probability less the
make rate (how far off the level is) over the first 5,000 and over all.  Prints a markdown table
and, last, one JSON line.

Two other champions, for a season the champion never saw (use ``--split 20181001``: the
2018-19 season of ``nba_shots.csv``):

- ``--champion-from-bulk``: trained on the bulk file's seasons (2003-18) alone;
- ``--since 20171001``: as the README's best-champion command trains it (``parivision train
  --data nba_shots.csv --data BULK --since 20171001``): ``nba_shots.csv`` and the bulk file's
  shots from that date, before the split; the latest 15% (whole dates) validate, and LightGBM
  is recalibrated on them when that helps (:mod:`models.calibration`).  The proxy, without the
  hidden seasons, of a champion replayed on seasons after its own.

Either way player form is warm, as a stream started with ``PARIVISION_FORM_HISTORY`` keeps it:
every replayed shot's form comes from all earlier shots of both files.  Loading the bulk file and
training on it take minutes; ``--cache DIR`` keeps the champion and the replayed shots there
(outside the repository) so a second run only replays.

    .venv/bin/python bench/online_learners.py
    .venv/bin/python bench/online_learners.py --champion-from-bulk --split 20181001   # new season
    .venv/bin/python bench/online_learners.py --since 20171001 --split 20181001       # README's

The bias learner's settings were tuned on seasons before those, four of them replayed after a
champion of 2013-14 made the same way (``--since 20131001 --split 20141001 --replay-bulk
--shots 834778``: 2014-15 to 2017-18) and four after one of 2009-10 (``--since 20091001
--split 20101001 --replay-bulk --shots 766354``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from models.calibration import recalibrate
from models.candidates import LightGBMCandidate
from models.data import combine_shots, load_shots
from models.features import FEATURE_SET, build_features
from models.form import FORM_NAMES
from models.online import LEARNERS
from models.registry import Champion
from models.train import time_split
from streams.scoring import Scorer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nba_shots.csv"
BULK = DATA.parent / "nba_shots_2003_2018_bulk.csv.gz"
MILESTONES = (5_000, 20_000, 100_000)


class _Timed:
    """A learner that counts the time spent in its ``predict_proba_one`` and ``learn_one``."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.seconds = 0.0
        self.learned = 0
        # What models.online.learner_input reads to give a learner the champion's logit and ids.
        self.uses_champion = getattr(model, "uses_champion", False)
        self.uses_ids = getattr(model, "uses_ids", False)

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


def _fingerprint(*parts: Any) -> str:
    """A cache key: the arguments, and the size and time of every file among them."""
    described = [
        [str(p), p.stat().st_size, p.stat().st_mtime_ns] if isinstance(p, Path) else p
        for p in parts
    ]
    return hashlib.sha256(json.dumps([FEATURE_SET, *described]).encode()).hexdigest()[:16]


def _fit_recipe(
    shots: pd.DataFrame, bulk: pd.DataFrame, split: int, since: int
) -> tuple[Any, int, dict]:
    """The README's champion: both files from ``since``, before ``split``, validated on the
    latest 15% and recalibrated when that helps, as ``parivision train`` does it (features over
    the training shots alone, so form starts at ``since`` there, as it does in ``train``)."""
    frame = combine_shots([shots, bulk[bulk["game_date"] >= since]])
    train, valid = time_split(frame[frame["game_date"] < split], 0.15)
    matrix = build_features(pd.concat([train, valid]))
    candidate = LightGBMCandidate()
    model = candidate.fit(matrix[: len(train)], train["made"].to_numpy())
    found = recalibrate(model.predict_raw(matrix[len(train) :]), valid["made"].to_numpy())
    model.calibration = found.calibration
    return model, len(train), {**candidate.fit_info, "recalibration": found.reason}


def prepare(
    data: Path,
    split: int,
    bulk: Path | None = None,
    since: int | None = None,
    replay_bulk: bool = False,
) -> dict:
    """The champion and every shot of ``data`` (and of ``bulk`` too with ``replay_bulk``) from
    the split on, with its warm player form."""
    frame = load_shots(data)
    if bulk is None:
        train = frame[frame["game_date"] < split]
        later = frame[frame["game_date"] >= split]
    else:
        # Seasons the champion never saw: the file's shots from the split on, their form
        # over the whole history of both files.
        frame = combine_shots([frame.assign(bulk=False), load_shots(bulk).assign(bulk=True)])
        train = frame[(frame["game_date"] < split) & frame["bulk"]]
        later = frame[(frame["game_date"] >= split) & (replay_bulk | ~frame["bulk"])]
    if train.empty or later.empty:
        raise SystemExit(f"--split {split} leaves no shots on one side of {data}")
    start = time.perf_counter()
    # Player form over the whole history at once: the replayed shots' form includes training
    # shots, as the stream's table would after it had seen them.
    matrix = build_features(frame.drop(columns=["bulk"], errors="ignore"))
    if since is None:
        candidate = LightGBMCandidate()
        model = candidate.fit(matrix[train.index.to_numpy()], train["made"].to_numpy())
        train_shots, info = len(train), dict(candidate.fit_info)
    else:
        is_bulk = frame["bulk"]
        model, train_shots, info = _fit_recipe(
            frame[~is_bulk].drop(columns=["bulk"]),
            frame[is_bulk].drop(columns=["bulk"]),
            split,
            since,
        )
    return {
        "model": model,
        "train_shots": train_shots,
        "fit_info": info,
        "train_s": round(time.perf_counter() - start, 1),
        "later": later.drop(columns=["bulk"], errors="ignore"),
        "later_form": matrix[later.index.to_numpy()][:, -len(FORM_NAMES) :],
    }


def _cached_prepare(cache: Path | None, *args: Any) -> dict:
    if cache is None:
        return prepare(*args)
    path = cache / f"online_learners-{_fingerprint(*args)}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())  # noqa: S301 - written by this bench
    prepared = prepare(*args)
    cache.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(prepared, protocol=pickle.HIGHEST_PROTOCOL))
    return prepared


def replay(
    prepared: dict, shots: int, batch: int, learners: list[str]
) -> tuple[dict[str, np.ndarray], dict]:
    """Every model's probability for each of the first ``shots`` shots after the split, and
    each learner's seconds per shot."""
    champion = Champion(name="bench", version="bench", model=prepared["model"])
    scorer = Scorer(champion, learners=learners)
    timed = {name: _Timed(learner) for name, learner in scorer.learners.items()}
    scorer.learners = dict(timed)  # same protocol; the Scorer cannot tell
    later, later_form = prepared["later"].iloc[:shots], prepared["later_form"][:shots]
    records = later.drop(columns=["made"]).to_dict("records")
    for record in records:
        record["shot_id"] = f"{record['game_id']}-{record['game_event_id']}"
    made = later["made"].tolist()
    p: dict[str, list[float]] = {"champion": [], **{name: [] for name in timed}}
    for first in range(0, len(records), batch):
        scored = scorer.score_batch(
            records[first : first + batch], form=later_form[first : first + batch]
        )
        for record, y in zip(scored, made[first : first + batch], strict=True):
            p["champion"].append(record["p_champion"])
            for name, value in record["p_online_by_learner"].items():
                p[name].append(value)
            scorer.label(record, y)
    cost = {name: learner.seconds / max(learner.learned, 1) for name, learner in timed.items()}
    return {name: np.asarray(values) for name, values in p.items()}, cost


def quality(y: np.ndarray, p: np.ndarray, at: tuple[int, ...]) -> dict[str, Any]:
    """Progressive log loss and mean p minus the make rate ("bias") over the first ``at``
    shots; ROC-AUC, mean p and bias over all."""
    loss = -(y * np.log(p) + (1 - y) * np.log1p(-p))
    at = tuple(n for n in at if n <= len(y))
    return {
        "n": len(y),
        "log_loss_at": {str(n): round(float(loss[:n].mean()), 4) for n in at},
        "log_loss": round(float(loss.mean()), 4),
        "roc_auc": round(float(roc_auc_score(y, p)), 4),
        "mean_p": round(float(p.mean()), 4),
        "bias_at": {str(n): round(float((p[:n] - y[:n]).mean()), 4) for n in at},
        "bias": round(float((p - y).mean()), 4),
    }


def run(
    data: Path,
    split: int,
    shots: int,
    batch: int,
    learners: list[str],
    bulk: Path | None = None,
    since: int | None = None,
    at: tuple[int, ...] = MILESTONES,
    cache: Path | None = None,
    replay_bulk: bool = False,
) -> dict:
    if (since is not None or replay_bulk) and bulk is None:
        bulk = BULK
    prepared = _cached_prepare(cache, data, split, bulk, since, replay_bulk)
    later = prepared["later"].iloc[:shots]
    if len(later) < shots:
        raise SystemExit(f"--split {split} leaves {len(later):,} shots to replay, not {shots:,}")
    start = time.perf_counter()
    p, cost = replay(prepared, shots, batch, learners)
    replay_s = time.perf_counter() - start
    y = later["made"].to_numpy(dtype=np.float64)
    names = {"champion": "champion (LightGBM)", **{name: name for name in learners}}
    return {
        "data": str(data),
        "champion": "bulk file"
        if since is None and bulk is not None
        else (f"nba_shots + bulk since {since}, recalibrated" if since else "nba_shots"),
        "split": split,
        "replayed": "both files" if replay_bulk else str(data.name),
        "train_shots": prepared["train_shots"],
        "champion_rounds": prepared["fit_info"]["rounds"],
        "champion_fit": prepared["fit_info"],
        "train_s": prepared["train_s"],
        "replayed_shots": len(later),
        "replay_dates": [int(later["game_date"].min()), int(later["game_date"].max())],
        "make_rate": round(float(y.mean()), 4),
        "batch": batch,
        "replay_s": round(replay_s, 1),
        "shots_per_s_all_learners": round(len(later) / replay_s),
        "models": {
            label: {
                **quality(y, p[name], at),
                "us_per_shot": round(cost[name] * 1e6, 1) if name in cost else None,
            }
            for name, label in names.items()
        },
    }


def print_table(report: dict) -> None:
    champion = report["models"]["champion (LightGBM)"]
    at = list(champion["log_loss_at"])
    if str(report["replayed_shots"]) not in at:
        at.append("all")

    def losses(row: dict) -> list[float]:
        return [row["log_loss_at"].get(n, row["log_loss"]) for n in at]

    print(
        f"{report['replayed_shots']:,} shots dated {report['replay_dates'][0]}-"
        f"{report['replay_dates'][1]} (make rate {report['make_rate']:.4f}); the champion trained "
        f"on {report['train_shots']:,} shots ({report['champion']}); micro-batches of "
        f"{report['batch']}, {report['shots_per_s_all_learners']:,} shots/s with every learner\n"
    )
    heads = [f"log loss, first {int(n):,}" if n != "all" else "log loss, all" for n in at]
    first = at[0]  # the bias this early shows how fast a learner takes a new level

    def bias(row: dict) -> str:
        early = row["bias_at"].get(first, row["bias"])
        return f"{early:+.3f} / {row['bias']:+.3f}"

    early = "all" if first == "all" else f"first {int(first):,}"
    print(
        f"| model | {' | '.join(heads)} | ROC-AUC | mean p - make rate, {early} / all | "
        "µs per shot (predict + learn) |"
    )
    print("|---|" + "---:|" * (len(at) + 3))
    for name, row in report["models"].items():
        cells = [
            f"{loss:.4f}" if row is champion else f"{loss:.4f} ({loss - base:+.4f})"
            for loss, base in zip(losses(row), losses(champion), strict=True)
        ]
        cost = "-" if row["us_per_shot"] is None else f"{row['us_per_shot']:.0f}"
        print(f"| {name} | {' | '.join(cells)} | {row['roc_auc']:.4f} | {bias(row)} | {cost} |")
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
    parser.add_argument(
        "--since",
        type=int,
        help="train the champion as the README's command does: nba_shots.csv and the bulk file "
        "(--champion-from-bulk's, or the default) from this date, recalibrated",
    )
    parser.add_argument(
        "--replay-bulk",
        action="store_true",
        help="replay the bulk file's shots from --split too: seasons before 2018-19, on which "
        "the bias learner's settings were tuned (see the README)",
    )
    parser.add_argument(
        "--at",
        type=lambda text: tuple(int(n) for n in text.split(",")),
        default=MILESTONES,
        help="progressive log loss after this many shots (comma-separated)",
    )
    parser.add_argument(
        "--cache", type=Path, help="keep the champion and replayed shots here between runs"
    )
    args = parser.parse_args()
    report = run(
        args.data,
        args.split,
        args.shots,
        args.batch,
        args.learner or list(LEARNERS),
        bulk=args.champion_from_bulk,
        since=args.since,
        at=args.at,
        cache=args.cache,
        replay_bulk=args.replay_bulk,
    )
    print_table(report)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
