"""What ``parivision demo`` reports at its end: the summary table, the live feed's count, and the
retrain loop's challenges of the demo, once each is decided.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from typing import Any

from pymongo import MongoClient
from rich.console import Console
from rich.table import Table

from parivision.cli.processes import check_alive
from parivision.settings import Settings
from parivision.store import RETRAIN_EVENTS


def challenges_since(settings: Settings, since: float) -> list[dict[str, Any]]:
    """The retrain loop's challenges started after ``since``: why, and what was decided."""
    db = MongoClient(settings.mongodb(), serverSelectionTimeoutMS=5000)[settings.database()]
    out = []
    for event in db[RETRAIN_EVENTS].find({"at": {"$gte": since}}, {"_id": 0}).sort("at", 1):
        decision = event.get("decision") or {}
        out.append(
            {
                "reason": event.get("reason"),
                "status": event.get("status"),
                "challenger": (event.get("training") or {}).get("version"),
                "decision": decision.get("reason") or event.get("error") or event.get("waiting"),
                "champion_after": decision.get("version"),
                # A challenger in shadow, then its verdict on live shots (models.promotion).
                **({"shadow": event["shadow"]} if event.get("shadow") else {}),
            }
        )
    return out


def live_messages_seen(base: str, *, want: int, timeout: float = 15.0) -> int:
    """How many ``shots.scored`` records the live API has passed on (waiting a little for it
    to reach ``want``: it follows the topic on its own)."""
    import httpx

    deadline, seen = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            seen = int(httpx.get(f"{base}health", timeout=5).json()["live"]["read"])
        if seen >= want:
            break
        time.sleep(0.5)
    return seen


def print_summary(console: Console, summary: dict[str, Any]) -> None:
    """The demo's summary as a table: counts, latencies, CPU and the challenges."""
    table = Table(title="PariVision demo")
    for key in (
        "produced",
        "scored",
        "labelled",
        "stored",
        "dead_lettered",
        "seconds",
        "shots_per_second",
        "model_version",
        "page",
    ):
        table.add_row(key, str(summary[key]))
    for key in ("scoring_latency_ms", "stored_latency_ms", "outcome_stored_latency_ms"):
        if summary[key]:
            table.add_row(key, f"p50 {summary[key]['p50']:,}, p99 {summary[key]['p99']:,}")
    cpu_ms = summary["cpu_ms_per_shot"]
    by_process = ", ".join(f"{k} {v:.2f}" for k, v in cpu_ms.items() if k != "all")
    table.add_row("cpu_ms_per_shot", f"{cpu_ms['all']:.2f} ({by_process})")
    for challenge in summary["challenges"]:
        table.add_row(
            "challenge",
            f"{challenge['reason']}: "
            + (f"v{challenge['challenger']} " if challenge["challenger"] else "")
            + f"{challenge['status']} ({challenge['decision']})",
        )
    console.print(table)


def wait_for_challenge(
    settings: Settings,
    since: float,
    *,
    expected: bool,
    processes: dict[str, subprocess.Popen],
    timeout: float,
    console: Console,
) -> list[dict[str, Any]]:
    """The challenges of this demo, once each is decided; when its labelled shots reached the
    count trigger, at least one (the loop trains and challenges while the replay runs)."""
    deadline = time.monotonic() + timeout
    with console.status("waiting for the retrain loop to decide its challenge"):
        while True:
            challenges = challenges_since(settings, since)
            running = [c for c in challenges if c["status"] in ("started", None)]
            # Every challenge decided, and at least one when the count trigger was reached.
            if not running and (challenges or not expected):
                return challenges
            if time.monotonic() > deadline:
                return challenges
            check_alive(settings, processes)
            time.sleep(1.0)
