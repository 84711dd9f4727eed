"""Every Prometheus metric PariVision exports: the contract between the code and ``infra/``.

Each process builds the metrics of its own job with :func:`for_job` (a registry of its own, so a
process exports what it measures and nothing else) and serves them with :meth:`Metrics.serve` on
its port from settings; the API renders them on its own app at ``/metrics``.  The alert rules,
recording rules and Grafana dashboards under ``infra/`` may name only metrics listed here (a
test checks), and every metric listed here is exported by the process of its job (another test
reads each process's ``/metrics``).

Names follow Prometheus's conventions: ``parivision_`` prefix, base units (seconds), ``_total``
for counters.  Label values are bounded: a dead letter's ``reason`` is a short code
(``empty``, ``invalid_json``, ``schema``, ...), never the message itself.

Example:
    >>> m = for_job("sink")
    >>> m["stored"].labels(collection="shots").inc(3)
    >>> b"parivision_stored_total{collection=\\"shots\\"} 3.0" in m.render()
    True
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)

# No ``*_created`` series beside each counter and histogram: nothing here reads them, and they
# would double what every scrape carries.
disable_created_metrics()

STREAM, SINK, API, REPLAY, RETRAINER = "stream", "sink", "api", "replay", "retrainer"
JOBS = (STREAM, SINK, API, REPLAY, RETRAINER)

# Latencies from a fraction of a millisecond (scoring a batch) to a minute (a held attempt).
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


@dataclass(frozen=True)
class Spec:
    """One metric: its kind, what it means, its labels and which processes export it."""

    key: str
    kind: str  # counter, gauge, histogram, info
    name: str  # the base name; Prometheus adds _total to counters, _info to infos
    help: str
    jobs: tuple[str, ...]
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = LATENCY_BUCKETS

    def exported_names(self) -> tuple[str, ...]:
        """The series names a scrape shows for this metric."""
        if self.kind == "counter":
            return (f"{self.name}_total",)
        if self.kind == "info":
            return (f"{self.name}_info",)
        if self.kind == "histogram":
            return tuple(f"{self.name}_{end}" for end in ("bucket", "count", "sum"))
        return (self.name,)


SPECS = (
    # The stream worker.
    Spec("consumed", "counter", "parivision_shots_consumed",
         "Records the stream worker read, by kind (attempt or outcome).", (STREAM,), ("kind",)),
    Spec("scored", "counter", "parivision_shots_scored",
         "Attempts scored by the champion and the online learners.", (STREAM,)),
    Spec("held", "gauge", "parivision_shots_held",
         "Attempts held until the outcome of their player's previous shot arrives.", (STREAM,)),
    Spec("released", "counter", "parivision_shots_released_without_outcome",
         "Held attempts scored without their player's previous outcome (it was overdue).",
         (STREAM,)),
    Spec("labelled", "counter", "parivision_shots_labelled",
         "Outcomes joined to their scored attempt.", (STREAM,)),
    Spec("dead_letters", "counter", "parivision_dead_letters",
         "Records sent to the dead-letter topic, by stage and reason code.",
         (STREAM, REPLAY), ("stage", "reason")),
    Spec("score_latency", "histogram", "parivision_score_latency_seconds",
         "From an attempt produced to its scored record, per shot.", (STREAM,)),
    Spec("batch_seconds", "histogram", "parivision_score_batch_seconds",
         "Time to score one micro-batch (features, champion, learners).", (STREAM,)),
    Spec("lag", "gauge", "parivision_consumer_lag",
         "Records not yet read, per consumer group and partition.",
         (STREAM, SINK), ("group", "topic", "partition")),
    Spec("champion", "info", "parivision_champion",
         "The champion the stream scores with.", (STREAM,)),
    Spec("champion_reference_log_loss", "gauge", "parivision_champion_reference_log_loss",
         "The champion's log loss when it was promoted (its validation score).", (STREAM,)),
    Spec("live_log_loss", "gauge", "parivision_live_log_loss",
         "Log loss over the most recent labelled shots, by model (champion or a learner).",
         (STREAM,), ("model",)),
    Spec("live_roc_auc", "gauge", "parivision_live_roc_auc",
         "ROC-AUC over the most recent labelled shots, by model.", (STREAM,), ("model",)),
    Spec("live_brier", "gauge", "parivision_live_brier",
         "Brier score over the most recent labelled shots, by model.", (STREAM,), ("model",)),
    Spec("live_window", "gauge", "parivision_live_window_shots",
         "Labelled shots the live quality metrics are measured on, by model.",
         (STREAM,), ("model",)),
    Spec("model_loads", "counter", "parivision_model_loads",
         "Champion versions loaded from the registry, by outcome (ok or error).",
         (STREAM,), ("outcome",)),
    Spec("model_swaps", "counter", "parivision_model_swaps",
         "Champion swaps without a restart.", (STREAM,)),
    Spec("shadow_version", "gauge", "parivision_shadow_version",
         "The version scored in shadow beside the champion, not served (0: none).", (STREAM,)),
    # The MongoDB sink.
    Spec("stored", "counter", "parivision_stored",
         "Shots stored in MongoDB (first written), by collection.", (SINK,), ("collection",)),
    Spec("write_seconds", "histogram", "parivision_mongo_write_seconds",
         "Time of one bulk write to MongoDB, by collection.", (SINK,), ("collection",)),
    Spec("write_errors", "counter", "parivision_mongo_write_errors",
         "Failed writes to MongoDB (each retried; nothing is committed past them).", (SINK,)),
    Spec("e2e_latency", "histogram", "parivision_end_to_end_latency_seconds",
         "From an attempt produced to its prediction stored in MongoDB, per shot.", (SINK,)),
    # The API.
    Spec("requests", "counter", "parivision_api_requests",
         "HTTP requests, by route template, method and status.",
         (API,), ("route", "method", "status")),
    Spec("request_seconds", "histogram", "parivision_api_request_seconds",
         "HTTP request time, by route template.", (API,), ("route",)),
    Spec("predictions", "counter", "parivision_api_predictions",
         "Shots scored through /predict and /predict/batch.", (API,)),
    Spec("live_clients", "gauge", "parivision_live_clients",
         "WebSocket clients of the live feed.", (API,)),
    Spec("live_dropped", "counter", "parivision_live_dropped",
         "Live-feed messages dropped for a client that did not keep up.", (API,)),
    # The replay.
    Spec("produced", "counter", "parivision_replay_produced",
         "Records the replay sent, by topic kind (attempt or outcome).", (REPLAY,), ("kind",)),
    # The retrain loop.
    Spec("retrains", "counter", "parivision_retrains",
         "Retrains started, by trigger (count, schedule, error_drift, data_drift, manual).",
         (RETRAINER,), ("trigger",)),
    Spec("decisions", "counter", "parivision_promotion_decisions",
         "Challenges and shadows decided, by outcome (promoted, shadowing, kept, waiting, "
         "failed; refused_live, confirmed, rolled_back).", (RETRAINER,), ("outcome",)),
    Spec("shadow_labelled", "gauge", "parivision_shadow_labelled_shots",
         "Labelled shots both the shadow and the champion scored, in the shadow being judged.",
         (RETRAINER,)),
    Spec("shadow_log_loss", "gauge", "parivision_shadow_log_loss",
         "Live log loss in the shadow being judged, by model (shadow, champion, base_rate).",
         (RETRAINER,), ("model",)),
    Spec("rollbacks", "counter", "parivision_champion_rollbacks",
         "Champions rolled back automatically: worse live than the one they replaced, or than "
         "the base rate.", (RETRAINER,)),
    Spec("drift_share", "gauge", "parivision_drift_share",
         "Share of features Evidently finds drifted, recent shots against the reference.",
         (RETRAINER,)),
    Spec("drift_detected", "gauge", "parivision_drift_detected",
         "1 when Evidently's dataset drift is detected in the last check.", (RETRAINER,)),
    Spec("drifted_features", "gauge", "parivision_drifted_features",
         "Features Evidently finds drifted in the last check.", (RETRAINER,)),
    Spec("feature_drift", "gauge", "parivision_feature_drift_score",
         "Evidently's drift score per feature (the test's p-value or distance).",
         (RETRAINER,), ("feature",)),
    Spec("error_drift", "gauge", "parivision_error_drift_detected",
         "1 when ADWIN saw the champion's errors change in the last check.", (RETRAINER,)),
    Spec("recent_quality", "gauge", "parivision_recent_quality",
         "The champion's quality on recent labelled shots (Evidently), by metric.",
         (RETRAINER,), ("metric",)),
    Spec("labelled_since_retrain", "gauge", "parivision_labelled_since_retrain",
         "Labelled shots stored since the last retrain.", (RETRAINER,)),
    Spec("drift_checks", "counter", "parivision_drift_checks",
         "Drift checks run (each writes an Evidently report).", (RETRAINER,)),
)  # fmt: skip

SPEC_BY_KEY = {spec.key: spec for spec in SPECS}


def exported_names(job: str | None = None) -> set[str]:
    """Every series name the code exports (for one job, or for all)."""
    return {
        name for spec in SPECS if job is None or job in spec.jobs for name in spec.exported_names()
    }


class Metrics:
    """The metrics of one process, by key: ``metrics["scored"].inc()``."""

    def __init__(self, job: str, specs: Iterable[Spec]) -> None:
        self.job = job
        self.registry = CollectorRegistry(auto_describe=True)
        self._metrics = {spec.key: _build(spec, self.registry) for spec in specs}
        self._server = None
        self._lock = threading.Lock()

    def __getitem__(self, key: str):
        return self._metrics[key]

    def __contains__(self, key: str) -> bool:
        return key in self._metrics

    def render(self) -> bytes:
        """The text exposition format, as a scrape reads it."""
        return generate_latest(self.registry)

    def serve(self, host: str, port: int) -> int | None:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread; 0 means off.

        Returns the port, or None when off.

        Raises:
            OSError: the port is taken (the message names it and the setting).
        """
        if not port:
            return None
        with self._lock:
            if self._server is None:
                try:
                    self._server, _thread = start_http_server(port, host, self.registry)
                except OSError as error:
                    raise OSError(
                        f"cannot serve the {self.job} metrics on {host}:{port} ({error}); "
                        f"set PARIVISION_{self.job.upper()}_METRICS_PORT to a free port, or 0"
                    ) from error
        return port

    def close(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                self._server = None


def _build(spec: Spec, registry: CollectorRegistry):
    if spec.kind == "counter":
        name = spec.name
        return Counter(name, spec.help, spec.labels, registry=registry)
    if spec.kind == "gauge":
        return Gauge(spec.name, spec.help, spec.labels, registry=registry)
    if spec.kind == "histogram":
        return Histogram(spec.name, spec.help, spec.labels, buckets=spec.buckets, registry=registry)
    if spec.kind == "info":
        return Info(spec.name, spec.help, spec.labels, registry=registry)
    raise ValueError(f"unknown metric kind {spec.kind!r}")


def for_job(job: str) -> Metrics:
    """A fresh set of the metrics ``job`` exports, in a registry of its own."""
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}; one of {', '.join(JOBS)}")
    return Metrics(job, (spec for spec in SPECS if job in spec.jobs))


def metrics_port(settings, job: str) -> int:
    """The port ``job`` serves its metrics on (the API: its own port, at /metrics)."""
    if job == API:
        return settings.api_port
    return getattr(settings, f"{'retrain' if job == RETRAINER else job}_metrics_port")
