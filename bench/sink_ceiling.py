"""How close the MongoDB sink comes to the store's own ceiling, on the same documents, and what
the store's layout costs the server.

Builds, from real shots, what the sink receives per shot: the attempt (``shots.attempts``), the
scored record with its 39 features and the labelled record (``shots.scored``). Then, on the
local MongoDB server (a fresh database each), it times, and reads the server's CPU time for:

- ``one document a shot, insert_many``: the store's layout (``parivision.store``): each shot's
  attempt, features, prediction and outcome as one document, one ``insert_many`` per batch,
  into a collection with the store's indexes. The reference: the fewest writes that store them;
- ``three documents a shot (the layout before)``: the raw shot, its features and its
  prediction with its outcome in three collections with their twelve indexes, as the store was
  before one document a shot;
- ``sink, label in the same batch``: :class:`consumers.mongo_sink.MongoSink` given each batch's
  attempts, scored records and labels, then ``flush``;
- ``sink, label one batch later``: the same, but each label arrives in the batch after its
  prediction, as it does when outcomes trail their attempts. With the sink's default
  ``label_wait_s`` the shot waits for it and goes in with one insert; with ``label_wait_s=0``
  the label is an update.

Shots per second count a shot once it is stored with its outcome.  Prints a markdown table and
one JSON line.

    .venv/bin/python bench/sink_ceiling.py --shots 20000 --batch 1000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nba_shots.csv"


def records(shots: int) -> list[tuple[dict, dict, dict]]:
    """(attempt, scored, labelled) for the most recent real shots, as the stream sends them."""
    import numpy as np

    from models.data import load_shots
    from models.features import build_features, feature_dict

    frame = load_shots(DATA).iloc[-shots:].reset_index(drop=True)
    matrix = build_features(frame)
    now = time.time()
    out = []
    for row, features in zip(frame.to_dict("records"), matrix, strict=True):
        made = int(row.pop("made"))
        shot_id = f"{row['game_id']}-{row['game_event_id']}"
        attempt = {**row, "shot_id": shot_id, "replay_id": "bench", "produced_at": now}
        p = float(np.clip(0.3 + 0.4 * (row["shot_distance"] < 10), 0.01, 0.99))
        head = {"shot_id": shot_id, "game_id": row["game_id"], "player_id": row["player_id"]}
        scored = {
            **head,
            "replay_id": "bench",
            "model_version": "1",
            "p_champion": p,
            "p_online": p,
            "p_online_by_learner": {"logreg": p, "on_champion": p},
            "online_learner": "logreg",
            "fair_odds": 1 / p,
            "features": feature_dict(features),
            "produced_at": now,
            "scored_at": now,
            "latency_ms": 1.0,
            "labelled": False,
        }
        labelled = {
            **head,
            "replay_id": "bench",
            "model_version": "1",
            "p_champion": p,
            "p_online": p,
            "labelled": True,
            "outcome": made,
            "labelled_at": now,
        }
        out.append((attempt, scored, labelled))
    return out


def one_document_insert_many(db, shots: list[tuple[dict, dict, dict]], batch: int) -> float:
    """Each shot as one document (``parivision.store.shot_document``), one insert_many a batch."""
    from consumers.store_layout import ensure_layout
    from parivision.store import SHOTS, shot_document

    ensure_layout(db)
    started = time.perf_counter()
    for first in range(0, len(shots), batch):
        now = time.time()
        db[SHOTS].insert_many(
            [
                shot_document({**a, "received_at": now}, s, lab, now)
                for a, s, lab in shots[first : first + batch]
            ],
            ordered=False,
        )
    return time.perf_counter() - started


def three_documents_insert_many(db, shots: list[tuple[dict, dict, dict]], batch: int) -> float:
    """The layout before one document a shot: three collections and their twelve indexes."""
    for name in ("old_raw", "old_features", "old_predictions"):
        db[name].create_index([("shot_id", 1)], unique=True, name="shot_id_unique")
        db[name].create_index([("replay_id", 1)], name="replay_id")
    for field in ("game_id", "player_id", "team_id", "scored_at", "labelled_at"):
        db["old_predictions"].create_index([(field, 1)], name=field)
    db["old_features"].create_index([("stored_at", 1)], name="stored_at")
    started = time.perf_counter()
    for first in range(0, len(shots), batch):
        chunk = shots[first : first + batch]
        now = time.time()
        db["old_raw"].insert_many([dict(a) for a, _, _ in chunk], ordered=False)
        db["old_features"].insert_many(
            [
                {"shot_id": s["shot_id"], "features": s["features"], "stored_at": now}
                for _, s, _ in chunk
            ],
            ordered=False,
        )
        db["old_predictions"].insert_many(
            [
                {
                    **{k: v for k, v in s.items() if k != "features"},
                    "outcome": lab["outcome"],
                    "labelled_at": lab["labelled_at"],
                    "stored_at": now,
                }
                for _, s, lab in chunk
            ],
            ordered=False,
        )
    return time.perf_counter() - started


def through_sink(
    client,
    database: str,
    shots: list[tuple[dict, dict, dict]],
    batch: int,
    lag: int,
    label_wait_s: float,
) -> float:
    """The sink's add/flush per batch; labels ``lag`` batches after their predictions."""
    from consumers.mongo_sink import MongoSink

    sink = MongoSink(client, database, topic_prefix="b.", label_wait_s=label_wait_s)
    chunks = [shots[i : i + batch] for i in range(0, len(shots), batch)]
    started = time.perf_counter()
    for index in range(len(chunks) + lag):
        if index < len(chunks):
            for attempt, scored, _ in chunks[index]:
                sink.add("b.shots.attempts", None, dict(attempt))
                sink.add("b.shots.scored", None, dict(scored))
        if index - lag >= 0 and index - lag < len(chunks):
            for _, _, labelled in chunks[index - lag]:
                sink.add("b.shots.scored", None, dict(labelled))
        sink.flush()
    sink.release()
    sink.flush()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()

    from pymongo import MongoClient

    from infra import mongodb
    from infra.services import down, up
    from parivision.cli.watching import cpu_seconds
    from parivision.settings import Settings

    home = Path(tempfile.mkdtemp(prefix="parivision-sink-bench-"))
    settings = Settings(home=home)
    wait = settings.sink_label_wait_s
    endpoints = up(settings)
    server = mongodb.local_process(settings).read_pid()
    try:
        client = MongoClient(endpoints.mongodb)
        shots = records(args.shots)
        rows = {}
        paths = {
            "one document a shot, insert_many": lambda db: one_document_insert_many(
                client[db], shots, args.batch
            ),
            "three documents a shot (the layout before)": lambda db: three_documents_insert_many(
                client[db], shots, args.batch
            ),
            "sink, label in the same batch": lambda db: through_sink(
                client, db, shots, args.batch, lag=0, label_wait_s=wait
            ),
            f"sink, label one batch later (shot waits up to {wait:g} s)": lambda db: through_sink(
                client, db, shots, args.batch, lag=1, label_wait_s=wait
            ),
            "sink, label one batch later (label_wait_s=0: an update)": lambda db: through_sink(
                client, db, shots, args.batch, lag=1, label_wait_s=0.0
            ),
        }
        for name, run in paths.items():
            database = f"bench{uuid.uuid4().hex[:8]}"
            cpu_before = cpu_seconds(server)
            seconds = run(database)
            server_ms = 1000.0 * (cpu_seconds(server) - cpu_before) / len(shots)
            collection = "old_predictions" if name.startswith("three") else "shots"
            stored = client[database][collection].count_documents({"outcome": {"$exists": True}})
            assert stored == len(shots), f"{name}: {stored} of {len(shots)} stored with outcomes"
            rows[name] = {
                "seconds": seconds,
                "shots_per_s": len(shots) / seconds,
                "server_cpu_ms_per_shot": server_ms,
            }
        reference = rows["one document a shot, insert_many"]["shots_per_s"]
        print(f"{len(shots):,} real shots, batches of {args.batch:,}, local MongoDB server\n")
        print("| path | shots/s | of one-document insert_many | server CPU ms a shot |")
        print("|---|---:|---:|---:|")
        for name, row in rows.items():
            print(
                f"| {name} | {row['shots_per_s']:,.0f} | {row['shots_per_s'] / reference:.2f} "
                f"| {row['server_cpu_ms_per_shot']:.2f} |"
            )
        report = {"bench": "sink_ceiling", "shots": len(shots), "batch": args.batch, "paths": rows}
        print(json.dumps(report))
    finally:
        down(settings)


if __name__ == "__main__":
    main()
