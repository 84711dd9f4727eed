"""Loading the live API over HTTP: wait until it answers, post shots one by one, from concurrent
workers or in batches, and tally each mode's latencies, throughput and CPU per shot.

``bench/serve.py`` and ``bench/compare.py`` measure the API with these.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from rich.console import Console

from parivision.cli.watching import cpu_seconds

HEADERS = {"content-type": "application/json"}
console = Console(stderr=True)


def wait_ready(url: str, body: bytes, process: subprocess.Popen, log: Path, timeout: float) -> dict:
    """Until ``POST /predict`` answers 200 (503 while the champion loads)."""
    deadline, last = time.monotonic() + timeout, "no answer"
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                raise SystemExit(
                    f"`parivision serve` exited ({process.returncode}); {log}:\n{tail}"
                )
            try:
                answer = client.post("/predict", content=body, headers=HEADERS)
                if answer.status_code == 200:
                    return answer.json()
                last = f"{answer.status_code} {answer.text[:200]}"
            except httpx.TransportError as error:
                last = repr(error)
            time.sleep(0.5)
    raise SystemExit(f"the API at {url} was not ready within {timeout:.0f}s: {last}")


class Meters:
    """Counters read around each mode: CPU time of the API and of MongoDB, and MongoDB's query
    count (the API queries it only to load player histories)."""

    def __init__(self, api_pid: int, mongo_pid: int | None, mongo_uri: str) -> None:
        from pymongo import MongoClient

        self.api_pid, self.mongo_pid = api_pid, mongo_pid
        self.client = MongoClient(mongo_uri)

    def read(self) -> dict[str, float]:
        status = self.client.admin.command("serverStatus")
        return {
            "api_cpu": cpu_seconds(self.api_pid),
            "mongo_cpu": cpu_seconds(self.mongo_pid) if self.mongo_pid else 0.0,
            "mongo_queries": status.get("opcounters", {}).get("query", 0),
        }

    def close(self) -> None:
        self.client.close()


class Tally:
    """Latencies, wall time, shots and the :class:`Meters` deltas of one mode, over rounds."""

    def __init__(self, shots_per_request: int) -> None:
        self.shots_per_request = shots_per_request
        self.latencies: list[float] = []
        self.wall = 0.0
        self.errors = 0
        self.meters: dict[str, float] = {}
        self.rounds: list[float] = []  # shots/s in each round

    def add(self, latencies: list[float], wall: float, errors: int, meters: dict) -> None:
        self.latencies += latencies
        self.wall += wall
        self.errors += errors
        for key, value in meters.items():
            self.meters[key] = self.meters.get(key, 0.0) + value
        if wall > 0:
            self.rounds.append(len(latencies) * self.shots_per_request / wall)

    def summary(self) -> dict[str, Any]:
        n = len(self.latencies)
        shots = n * self.shots_per_request
        ms = np.asarray(self.latencies) * 1000 if n else np.zeros(1)

        def per_shot(key: str) -> float:
            return round(1000 * self.meters.get(key, 0.0) / max(shots, 1), 3)

        return {
            "requests": n,
            "shots": shots,
            "seconds": round(self.wall, 2),
            "requests_per_s": round(n / self.wall, 2) if self.wall else 0.0,
            "shots_per_s": round(shots / self.wall, 1) if self.wall else 0.0,
            "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "mean_ms": round(float(ms.mean()), 2),
            "api_cpu_ms_per_shot": per_shot("api_cpu"),
            "mongo_cpu_ms_per_shot": per_shot("mongo_cpu"),
            "history_queries": int(self.meters.get("mongo_queries", 0)),
            "shots_per_s_by_round": [round(r, 1) for r in self.rounds],
            "errors": self.errors,
        }


def check(answer: httpx.Response, shots: int) -> bool:
    if answer.status_code != 200:
        console.print(f"[red]{answer.status_code}[/] {answer.text[:300]}")
        return False
    if shots > 1:
        return len(orjson.loads(answer.content)["predictions"]) == shots
    return 0.0 < orjson.loads(answer.content)["probability"] < 1.0


def run_serial(client: httpx.Client, path: str, bodies: list[bytes], shots: int, budget: float):
    """One client, one request at a time on a kept-alive connection, until done or out of time."""
    latencies, errors = [], 0
    started = time.perf_counter()
    for body in bodies:
        sent = time.perf_counter()
        answer = client.post(path, content=body, headers=HEADERS)
        latencies.append(time.perf_counter() - sent)
        errors += not check(answer, shots)
        if time.perf_counter() - started > budget:
            break
    return latencies, time.perf_counter() - started, errors


async def _run_concurrent(url: str, bodies: list[bytes], workers: int, budget: float):
    latencies: list[float] = []
    errors = 0
    todo = iter(bodies)
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        # Open every connection before the clock starts, as long-lived clients would have.
        await asyncio.gather(*(client.get("/models/champion") for _ in range(workers)))
        started = time.perf_counter()

        async def worker() -> None:
            nonlocal errors
            for body in todo:
                sent = time.perf_counter()
                answer = await client.post("/predict", content=body, headers=HEADERS)
                latencies.append(time.perf_counter() - sent)
                errors += not check(answer, 1)
                if time.perf_counter() - started > budget:
                    return

        await asyncio.gather(*(worker() for _ in range(workers)))
        return latencies, time.perf_counter() - started, errors


def run_concurrent(url: str, bodies: list[bytes], workers: int, budget: float):
    return asyncio.run(_run_concurrent(url, bodies, workers, budget))


def turn(items: list, r: int, n: int) -> list:
    """Round ``r``'s ``n`` items: each round goes on where the one before stopped (wrapping)."""
    return [items[(r * n + i) % len(items)] for i in range(n)]
