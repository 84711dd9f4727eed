"""The live pipeline: shots through Kafka, the stream worker, the MongoDB sink and the API."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from infra.grafana.boards import SWAPS
from infra.grafana.panels import (
    assemble,
    graph,
    per_deployment,
    quantile,
    query,
    rate,
    recorded,
    series,
)

TITLE = "PariVision — live pipeline"


def build() -> dashboard.Dashboard:
    throughput = [
        graph(
            "Shots scored and stored per second",
            "Attempts the stream worker scored, and their predictions the sink stored.",
            query(recorded("parivision:shots_scored:rate1m"), "{{deployment}} scored"),
            query(recorded("parivision:shots_stored:rate1m"), "{{deployment}} stored"),
            unit="ops",
            span=6,
        ),
        graph(
            "Predictions served by the API per second",
            "Shots scored through /predict and /predict/batch, a batch counting each of its shots.",
            query(
                per_deployment("sum", rate("parivision_api_predictions_total")), "{{deployment}}"
            ),
            unit="ops",
            span=6,
        ),
        graph(
            "Records consumed per second, by kind",
            "What the stream worker read from Kafka: attempts and outcomes.",
            query(
                per_deployment("sum", rate("parivision_shots_consumed_total"), "kind"),
                "{{deployment}} {{kind}}",
            ),
            unit="ops",
            span=6,
        ),
        graph(
            "Replay records produced per second",
            "What the replay sent to Kafka, by kind; no line when no replay runs.",
            query(
                per_deployment("sum", rate("parivision_replay_produced_total"), "kind"),
                "{{deployment}} {{kind}}",
            ),
            unit="ops",
            span=6,
        ),
    ]
    latency = [
        graph(
            "Score latency (attempt produced → scored)",
            "Per shot, from the attempt produced to its scored record.",
            query(recorded("parivision:score_latency_seconds:p50"), "{{deployment}} p50"),
            query(recorded("parivision:score_latency_seconds:p99"), "{{deployment}} p99"),
            unit="s",
            span=8,
        ),
        graph(
            "End-to-end latency (attempt produced → stored)",
            "Per shot, from the attempt produced to its prediction stored in MongoDB.",
            query(recorded("parivision:end_to_end_latency_seconds:p50"), "{{deployment}} p50"),
            query(recorded("parivision:end_to_end_latency_seconds:p99"), "{{deployment}} p99"),
            unit="s",
            span=8,
        ),
        graph(
            "Score batch time",
            "Time to score one micro-batch: features, champion and online learners.",
            query(quantile(0.5, "parivision_score_batch_seconds"), "{{deployment}} p50"),
            query(quantile(0.99, "parivision_score_batch_seconds"), "{{deployment}} p99"),
            unit="s",
            span=8,
        ),
    ]
    backlog = [
        graph(
            "Consumer lag, by group",
            "Records not yet read, summed over partitions; a steady climb means a consumer "
            "cannot keep up.",
            query(recorded("parivision:consumer_lag:sum"), "{{deployment}} {{group}}"),
            span=8,
        ),
        graph(
            "Consumer lag, by group and partition",
            "One skewed partition points at a hot key or a stuck worker.",
            query(
                per_deployment("max", series("parivision_consumer_lag"), "group, topic, partition"),
                "{{deployment}} {{group}} {{topic}}/{{partition}}",
            ),
            span=8,
        ),
        graph(
            "Held attempts and releases without outcome",
            "Attempts waiting for their player's previous outcome, and the rate of those "
            "scored without it because it was overdue.",
            query(per_deployment("sum", series("parivision_shots_held")), "{{deployment}} held"),
            query(
                per_deployment("sum", rate("parivision_shots_released_without_outcome_total")),
                "{{deployment}} released without outcome /s",
            ),
            span=8,
        ),
    ]
    return assemble(
        TITLE,
        "parivision-live-pipeline",
        "Shots through Kafka, the stream worker, the MongoDB sink and the API: throughput, "
        "latency, lag.",
        [("Throughput", throughput), ("Latency", latency), ("Backlog", backlog)],
        annotations=[SWAPS],
    )
