"""The live API's scoring timed in this process, without HTTP and JSON: ``parse_shot``, the
history load and ``score``, on the champion and learners the API serves (``bench/serve.py``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from parivision.settings import Settings


def in_process(settings: Settings, shots_raw: list[dict], singles: int) -> dict[str, Any]:
    """``parse_shot``, the history load and ``score`` timed here, on the champion and learners
    the API serves and histories from the same MongoDB: a request's cost without HTTP and JSON.

    Scoring runs on a cache that never expires, so it is the scoring alone; the history load is
    timed apart, from cold, for the players of these shots."""
    from dataclasses import replace

    from pymongo import MongoClient

    from consumers.api.history import PlayerHistories
    from consumers.api.predict import score
    from consumers.api.serving import ModelHolder
    from consumers.api.shots_in import parse_shot

    holder = ModelHolder(settings)
    holder.refresh()
    served = holder.served
    client = MongoClient(settings.mongodb())
    try:
        histories = PlayerHistories(client[settings.database()], max_age_s=float("inf"))
        started = time.perf_counter()
        shots = [parse_shot(raw) for raw in shots_raw]
        out: dict[str, Any] = {
            "parse_ms_per_shot": round(1000 * (time.perf_counter() - started) / len(shots), 4)
        }
        players = {s["player_id"] for s in shots}
        started = time.perf_counter()
        loaded = histories.get_many(players)
        seconds = time.perf_counter() - started
        docs = sum(len(h.shots) for h in loaded.values())
        out |= {
            "history_load_players": len(players),
            "history_load_docs": docs,
            "history_load_ms_per_player": round(1000 * seconds / len(players), 1),
            "history_load_ms_per_doc": round(1000 * seconds / max(docs, 1), 3),
        }
        variants = (("", served), ("_no_learners", replace(served, learners={})))
        # One shot at a time, the two variants alternating, medians: robust to a noisy machine.
        times: dict[str, list[float]] = {label: [] for label, _ in variants}
        for shot in shots[:singles]:
            for label, what in variants:
                started = time.perf_counter()
                score(what, histories, [shot])
                times[label].append(time.perf_counter() - started)
        for label, _ in variants:
            out[f"single{label}_p50_ms"] = round(1000 * float(np.median(times[label])), 3)
        for label, what in variants:
            started = time.perf_counter()
            answers = score(what, histories, shots)
            seconds = time.perf_counter() - started
            out[f"batch_{len(shots)}{label}_shots_per_s"] = round(len(shots) / seconds, 1)
        # No earlier stored shot of the player in this game: the in-game features are NaN,
        # left out of what the River learners see, which makes the forest's predictions slow.
        out["share_without_prev_in_game"] = round(
            sum(a["form"]["prev_made_in_game"] is None for a in answers) / len(answers), 3
        )
        out["learners"] = list(served.learners)
        return out
    finally:
        client.close()
