"""What the demo watches while it runs: the scored records on Kafka, the shots in the store,
and the CPU each process spends (``bench/compare.py`` reads the same)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import httpx
from confluent_kafka import Consumer, TopicPartition
from pymongo import MongoClient

from parivision import schemas
from parivision.settings import Settings
from parivision.store import SHOTS


class ScoredCounter(threading.Thread):
    """Counts distinct shots of one replay on ``shots.scored``, read from the end as it was."""

    def __init__(self, settings: Settings, replay_id: str) -> None:
        super().__init__(daemon=True)
        self.settings, self.replay_id = settings, replay_id
        self.topic = settings.topic(schemas.SCORED)
        self.scored: set[str] = set()
        self.latencies_ms: list[float] = []
        self.labelled: set[str] = set()
        self.stop_event = threading.Event()
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka(),
                "group.id": f"parivision-demo-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                # Ten fetches a second, not one per record batch the stream writes (each a broker
                # request, bench/kafka_cpu.py); the latencies counted are the records' own.
                "fetch.wait.max.ms": 100,
                "fetch.min.bytes": 1_000_000,
            }
        )
        partitions = self.consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
        assignment = []
        for p in partitions:
            _low, high = self.consumer.get_watermark_offsets(
                TopicPartition(self.topic, p), timeout=10
            )
            assignment.append(TopicPartition(self.topic, p, high))
        self.consumer.assign(assignment)

    def run(self) -> None:
        import orjson

        needle = self.replay_id.encode()  # skips other replays' records before parsing
        while not self.stop_event.is_set():
            for message in self.consumer.consume(1000, timeout=0.2):
                value = message.value()
                if message.error() or not value or needle not in value:
                    continue
                record = orjson.loads(value)
                if record.get("replay_id") != self.replay_id:
                    continue
                if record.get("labelled"):
                    self.labelled.add(record["shot_id"])
                else:
                    self.scored.add(record["shot_id"])
                    self.latencies_ms.append(record.get("latency_ms", 0.0))
        self.consumer.close()


class StoredCounts:
    """How many of a replay's shots the store holds, asked so as to load it little.

    A count reads the replay's documents (a range on the ``scored_at`` index from the replay's
    start): on the local server about 0.2 ms a document, which competes with the sink's writes.
    So while the sink's own count of the shots it stored (its metrics) is short of what the demo
    waits for, the store is not asked at all; then the shots stored with their outcome are
    counted, the other layers once those are all in; and the next look comes after at least
    four times as long as the last one took.
    """

    LAYERS = {
        "raw": {"raw": {"$exists": True}},
        "features": {"features": {"$exists": True}},
        "predictions": {"scored_at": {"$exists": True}},
        "outcomes": {"outcome": {"$exists": True}},
    }

    def __init__(self, settings: Settings, replay_id: str, since: float) -> None:
        self.sink_metrics = f"http://{settings.metrics_host}:{settings.sink_metrics_port}/metrics"
        self.client = MongoClient(settings.mongodb(), serverSelectionTimeoutMS=5000)
        self.db = self.client[settings.database()]
        self.replay_id, self.since = replay_id, since
        self.counts = dict.fromkeys(self.LAYERS, 0)
        self.took = 0.0
        self._told: float | None = None
        self._told_moved = time.monotonic()

    def _count(self, layer: str) -> int:
        query = {"scored_at": {"$gte": self.since}, "replay_id": self.replay_id}
        if layer != "predictions":
            query.update(self.LAYERS[layer])
        return self.db[SHOTS].count_documents(query)

    def sink_stored(self) -> float | None:
        """The shots the sink says it stored (all replays'), or None if it does not answer."""
        try:
            text = httpx.get(self.sink_metrics, timeout=2).text
        except httpx.HTTPError:
            return None
        total = None
        for line in text.splitlines():
            if line.startswith("parivision_stored_total{"):
                total = (total or 0.0) + float(line.rsplit(" ", 1)[1])
        return total

    def look(self, want: int) -> int:
        """The fewest of ``want`` shots stored in any layer, by the cheapest count."""
        started = time.monotonic()
        told = self.sink_stored() if want else None
        if told != self._told:
            self._told, self._told_moved = told, started
        # Trusted while it moves: a sink restarted mid-run counts from zero, so a count that
        # has stood still for 10 s is checked against the store.
        if told is not None and told < want and started - self._told_moved < 10.0:
            return int(told)
        self.counts["outcomes"] = self._count("outcomes")
        if self.counts["outcomes"] >= want:
            for layer in ("raw", "features", "predictions"):
                self.counts[layer] = self._count(layer)
        self.took = time.monotonic() - started
        return min(self.counts.values())

    def pause(self) -> float:
        """Seconds until the next look."""
        return max(1.0, 4 * self.took)

    def latencies_ms(self) -> dict[str, list[float]]:
        """Per stored shot, in ms: ``stored`` is produce -> stored (the ``stored_at`` of the
        write that stored it, less its attempt's ``produced_at``), which includes the wait
        for its outcome; ``outcome_stored`` is from its outcome joined in the stream
        (``labelled_at``) to stored."""
        fields = {"_id": 0, "produced_at": 1, "stored_at": 1, "labelled_at": 1}
        query = {"scored_at": {"$gte": self.since}, "replay_id": self.replay_id}
        out: dict[str, list[float]] = {"stored": [], "outcome_stored": []}
        for doc in self.db[SHOTS].find(query, fields):
            stored = doc.get("stored_at")
            if not isinstance(stored, int | float):
                continue
            for key, start in (("stored", "produced_at"), ("outcome_stored", "labelled_at")):
                if isinstance(doc.get(start), int | float):
                    out[key].append(1000.0 * max(0.0, stored - doc[start]))
        return out

    def close(self) -> None:
        self.client.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuSampler(threading.Thread):
    """CPU seconds each kind of process of one deployment spends while it runs (read from
    /proc every half second, so processes that stop before the end are counted up to their
    last sample).  A process is the deployment's when its home is in its command line or its
    environment: another deployment's on the same machine is not counted."""

    KINDS = (
        ("kafka", "kafka.Kafka"),
        ("mongodb", "secantusd"),
        ("stream", "parivision stream"),
        ("sink", "parivision sink"),
        ("api", "parivision serve"),
        ("retrain loop", "parivision retrain-loop"),
        ("prometheus", "prometheus"),
        ("alertmanager", "alertmanager"),
    )

    def __init__(self, home: Path) -> None:
        super().__init__(daemon=True)
        self.home = str(home).encode()
        self.first: dict[int, tuple[str, float]] = {}
        self.last: dict[int, float] = {}
        # Processes that are not the deployment's, looked at again only every RECHECK samples
        # (one may exec into one of ours; its CPU time is counted whole when it is seen).
        self.others: set[int] = set()
        self.samples = 0
        self.stop_event = threading.Event()
        self._sample(first=True)

    def _kind(self, pid: int) -> str | None:
        if pid == os.getpid():
            return "replay and the demo (this process)"
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            ours = self.home in cmdline or self.home in Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            return None
        text = cmdline.decode(errors="replace")
        return next((kind for kind, mark in self.KINDS if ours and mark in text), None)

    # Reading every process's command line and environment twice a second cost the demo
    # ~6 ms a sample on a quiet machine (0.05 ms a shot at 250 shots/s).
    RECHECK = 10

    def _sample(self, *, first: bool = False) -> None:
        self.samples += 1
        if self.samples % self.RECHECK == 0:
            self.others.clear()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            if pid in self.others:
                continue
            try:
                seconds = cpu_seconds(pid)
            except (OSError, IndexError):
                continue
            if pid not in self.first:
                kind = self._kind(pid)
                if kind is None:
                    self.others.add(pid)
                    continue
                # A process started after the first sample counts from zero.
                self.first[pid] = (kind, seconds if first else 0.0)
            self.last[pid] = seconds

    def run(self) -> None:
        while not self.stop_event.wait(0.5):
            self._sample()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(5)
        self._sample()

    def by_kind(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for pid, (kind, start) in self.first.items():
            totals[kind] = totals.get(kind, 0.0) + self.last.get(pid, start) - start
        return totals

    def ms_per_shot(self, shots: int) -> dict[str, float]:
        """CPU ms a shot by kind of process, most first, and ``all``."""
        by_kind = self.by_kind()
        out = {
            kind: round(1000.0 * seconds / max(1, shots), 3)
            for kind, seconds in sorted(by_kind.items(), key=lambda item: -item[1])
        }
        out["all"] = round(sum(out.values()), 3)
        return out


def percentiles(values: list[float]) -> dict[str, float]:
    """p50 / p99 of a latency in ms (dominated by queueing when replaying at --max)."""
    if not values:
        return {}
    ordered = sorted(values)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)  # noqa: E731
    return {"p50": pick(0.50), "p99": pick(0.99)}
