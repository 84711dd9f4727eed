"""What one retrain-loop poll costs the store as the store grows, side by side with the queries
the loop asked before (in one run, on the same local MongoDB server and documents).

The store is filled with real shots (their 39 features, outcomes and times, as the sink writes
them) up to each size; then a poll's worth of new shots and labels arrives (``--new``) and:

- ``whole-store queries`` (the loop before): the newest stored shot by a sort of the whole
  collection, the labels since the last poll and the count since the last retrain, both asked
  with ``outcome: {$exists: true}`` (which the local server answers with a collection scan);
- ``the loop's poll`` (now): :meth:`consumers.retrain_trigger.RetrainLoop.check`, reading what
  arrived since its last poll on the ``scored_at`` and ``outcome_stored_at`` indexes.  Its drift
  report is made once on the first poll (not timed): fewer new shots than the window make
  none.

Each row: the poll's wall time and the server's CPU time for it (from /proc).  Prints a
markdown table and one JSON line.

    .venv/bin/python bench/retrain_poll.py --sizes 10000 30000 90000 --new 500
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from functools import partial
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nba_shots.csv"
TICKS = os.sysconf("SC_CLK_TCK")


def server_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def documents(frame, matrix, start: int) -> list[dict]:
    """Documents of real shots as the sink stores them, one a shot (features, outcome, times;
    the i-th stored at ``1000 + start + i``); the poll test stores them too."""
    from models.features import feature_dict

    shots = []
    for i, (row, features) in enumerate(zip(frame.to_dict("records"), matrix, strict=True)):
        shot_id, at = f"b{start + i}", 1000.0 + start + i
        shots.append(
            {
                "_id": shot_id,
                "shot_id": shot_id,
                "features": feature_dict(features),
                "game_id": int(row["game_id"]),
                "player_id": int(row["player_id"]),
                "p_champion": 0.45,
                "outcome": int(row["made"]),
                "scored_at": at - 0.1,
                "labelled_at": at + 0.5,
                "outcome_stored_at": at + 0.5,
                "stored_at": at,
            }
        )
    return shots


def whole_store_queries(db, since: float) -> None:
    """The queries one poll of the loop sent before, in its order."""
    from parivision.store import SHOTS

    labelled = {"outcome": {"$exists": True}}
    list(
        db[SHOTS]
        .find({**labelled, "labelled_at": {"$gt": since}}, {"_id": 0, "labelled_at": 1})
        .sort("labelled_at", 1)
    )
    db[SHOTS].count_documents({**labelled, "labelled_at": {"$gt": 0.0}})
    db[SHOTS].find_one({"scored_at": {"$gt": 0.0}}, sort=[("scored_at", -1)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 90_000])
    parser.add_argument("--new", type=int, default=500, help="shots arriving between two polls")
    args = parser.parse_args()

    from pymongo import MongoClient
    from rich.console import Console
    from rich.progress import Progress

    from consumers.retrain_trigger import RetrainLoop
    from consumers.store_layout import ensure_layout
    from infra import mongodb
    from models.data import load_shots
    from models.drift import TriggerConfig
    from models.features import build_features
    from models.reference import CHAMPION, Reference, reference_sample
    from parivision.settings import Settings
    from parivision.store import SHOTS

    total = max(args.sizes) + args.new * len(args.sizes)
    shots = load_shots(DATA)
    frame = shots.iloc[-total:].reset_index(drop=True)
    matrix = build_features(frame)
    sample = shots.iloc[-total - 5000 : -total]
    reference = reference_sample(build_features(sample), sample["made"].to_numpy())
    champion = ("1", Reference(reference, CHAMPION, "champion v1's training sample", "1"), "")

    home = Path(tempfile.mkdtemp(prefix="parivision-poll-bench-"))
    settings = Settings(home=home, mongodb_database="poll")
    mongodb.start(settings)
    pid = mongodb.local_process(settings).read_pid()
    rows = []
    try:
        db = MongoClient(settings.mongodb())[settings.database()]
        ensure_layout(db)
        config = TriggerConfig(min_new_labelled=0, every_s=None, drift_share=0.25)
        loop = RetrainLoop(
            settings,
            db,
            config,
            window=2000,
            champion=lambda: champion,
            console=Console(quiet=True),
        )
        stored, last_poll = 0, 0.0

        def store(n: int, progress=None, task=None) -> None:
            nonlocal stored
            for first in range(stored, stored + n, 1000):
                count = min(1000, stored + n - first)
                docs = documents(
                    frame.iloc[first : first + count], matrix[first : first + count], first
                )
                db[SHOTS].insert_many(docs, ordered=False)
                if progress is not None:
                    progress.advance(task, count)
            stored += n

        for size in args.sizes:
            with Progress(transient=True) as progress:
                task = progress.add_task(f"storing up to {size:,} shots", total=size - stored)
                store(size - stored, progress, task)
            loop.check()  # catches up (and makes its drift report): not timed
            last_poll = 1000.0 + stored - 1 + 0.5
            store(args.new)
            timings = {}
            for name, poll in (
                ("whole-store queries (before)", partial(whole_store_queries, db, last_poll)),
                ("the loop's poll (now)", loop.check),
            ):
                cpu, wall = server_cpu_s(pid), time.perf_counter()
                poll()
                timings[name] = {
                    "wall_ms": (time.perf_counter() - wall) * 1000,
                    "server_cpu_ms": (server_cpu_s(pid) - cpu) * 1000,
                }
            rows.append({"stored": stored, "new": args.new, **timings})
    finally:
        mongodb.stop(settings)

    print(f"one poll after {args.new:,} new shots and labels, local MongoDB server\n")
    print(
        "| stored shots | before: wall ms | before: server CPU ms | now: wall ms | "
        "now: server CPU ms | before / now (wall) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        before, now = row["whole-store queries (before)"], row["the loop's poll (now)"]
        print(
            f"| {row['stored']:,} | {before['wall_ms']:,.0f} | {before['server_cpu_ms']:,.0f} | "
            f"{now['wall_ms']:,.0f} | {now['server_cpu_ms']:,.0f} | "
            f"{before['wall_ms'] / now['wall_ms']:,.1f} |"
        )
    print(json.dumps({"bench": "retrain_poll", "rows": rows}))


if __name__ == "__main__":
    main()
