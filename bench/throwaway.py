"""A throw-away home for a bench: free loopback ports, real shots in game order, a champion
trained on them, labelled history in MongoDB and fitted online learners; and its clean-up.

``bench/serve.py``, ``bench/compare.py``, ``bench/latency.py`` and ``bench/replication.py`` set
themselves up with these.
"""

from __future__ import annotations

import pickle
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

from infra.services import down
from parivision.settings import Settings

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nba_shots.csv"
console = Console(stderr=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_up(settings: Settings, home: Path, *, keep: bool) -> None:
    """Stop the throw-away services and remove their home (or say where it was kept)."""
    try:
        down(settings)
    except Exception as error:  # noqa: BLE001 - report and keep cleaning up
        console.print(f"[red]could not stop the local services: {error}[/]")
    if keep:
        console.print(f"kept {home}")
    else:
        shutil.rmtree(home, ignore_errors=True)


def read_windows(path: Path, train_rows: int, pool_rows: int) -> tuple[list[dict], list[dict]]:
    """The file's rows in game order as string records: the training window, then the load pool
    (the ``pool_rows`` most recent rows; the ``train_rows`` before them train and are history)."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    keys = [
        pd.to_numeric(raw[c], errors="coerce").fillna(0).to_numpy()
        for c in ("Game Event ID", "Game ID", "Game Date")
    ]
    raw = raw.iloc[np.lexsort(keys)]  # lexsort: last key first; stable, as load_shots sorts
    if len(raw) < train_rows + pool_rows:
        raise SystemExit(f"{path} has {len(raw):,} rows; --train-rows + --pool need more")
    window = raw.iloc[-(train_rows + pool_rows) :].to_dict("records")
    return window[:train_rows], window[train_rows:]


def train_champion(settings: Settings, shots: list[dict], made: list[int]) -> str:
    from models.train import train_and_register

    frame = pd.DataFrame(shots).assign(made=made)
    result = train_and_register(
        settings,
        frame,
        data_name="nba_shots.csv (bench)",
        candidates=["lightgbm"],
        make_champion=True,
        console=console,
    )
    console.print(
        f"champion v{result.version}: validation log loss {result.metrics['log_loss']:.4f}, "
        f"AUC {result.metrics['roc_auc']:.3f}"
    )
    return result.version


def store_history(settings: Settings, shots: list[dict], made: list[int], version: str) -> int:
    """Labelled shots as the sink leaves them (one document a shot: attempt, prediction and
    label)."""
    from pymongo import MongoClient

    from consumers.mongo_sink import upsert_many
    from consumers.store_layout import ensure_layout
    from parivision.store import SHOTS

    client = MongoClient(settings.mongodb())
    try:
        db = client[settings.database()]
        ensure_layout(db)
        now = time.time()
        docs = [
            {
                "_id": shot["shot_id"],
                **shot,
                "raw": shot,
                "shot_value": 3 if shot["shot_type"].startswith("3") else 2,
                "replay_id": "bench-history",
                "model_version": version,
                "scored_at": now,
                "labelled": True,
                "outcome": outcome,
                "labelled_at": now,
                "stored_at": now,
            }
            for shot, outcome in zip(shots, made, strict=True)
        ]
        written = 0
        for start in range(0, len(docs), 5000):
            written += sum(upsert_many(db[SHOTS], docs[start : start + 5000]))
        return written
    finally:
        client.close()


def save_learners(settings: Settings, shots: list[dict], made: list[int], n: int) -> list[str]:
    """Fit the online learners on the last ``n`` training shots (features with their form, as the
    stream computes them) and write them where the stream checkpoints them."""
    from models.features import build_features, feature_dict
    from models.online import (
        CHECKPOINT_FORMAT,
        LiveMetrics,
        checkpoint_path,
        learner_features,
        make_learner,
    )
    from streams.scoring import save_checkpoint

    names = [name.strip() for name in settings.online_learners.split(",") if name.strip()]
    if not names or n <= 0:
        return []
    matrix = build_features(pd.DataFrame(shots).assign(made=made))[-n:]
    learners = {name: make_learner(name) for name in names}
    for row, outcome in zip(matrix, made[-n:], strict=True):
        features = learner_features(feature_dict(row))
        for model in learners.values():
            # No champion here: a learner on top of it starts as the champion instead.
            if not getattr(model, "uses_champion", False):
                model.learn_one(features, bool(outcome))
    state = {
        "format": CHECKPOINT_FORMAT,
        "saved_at": time.time(),
        "learners": {
            name: {"model": model, "metrics": LiveMetrics(), "learned": len(matrix)}
            for name, model in learners.items()
        },
    }
    save_checkpoint(
        pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), checkpoint_path(settings)
    )
    return names
