"""PariVision's Grafana dashboards, as code.

``python -m infra.grafana.dashboards`` writes one JSON file per dashboard under
``infra/grafana/dashboards/``, which Grafana's file provider loads (see ``provisioning/``);
``--check`` writes nothing and exits 1 when the committed files differ from what this module
generates, so an edit here cannot ship without its JSON.  Edit this file (and ``panels.py``,
its building blocks), never the JSON.

Panels query the Prometheus data source provisioned with uid ``prometheus`` and name only the
series of :mod:`parivision.metrics`, Prometheus's ``up`` and the recording rules of
``infra/prometheus/rules/recording.yml`` (a test checks).  :func:`all_queries` lists every
expression, so a test can run each against a real Prometheus.

Example:
    >>> [title for title, _ in DASHBOARDS.values()][:2]
    ['PariVision — live pipeline', 'PariVision — model quality']
    >>> ("PariVision — errors", "Targets up, by job", "min by (job) (up)") in all_queries()
    True
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from infra.grafana.panels import (
    DATASOURCE_UID,
    RANGE,
    RATE,
    assemble,
    graph,
    labels_table,
    quantile,
    query,
    single,
)
from parivision import generated

__all__ = ["DASHBOARDS", "DATASOURCE_UID", "OUT_DIR", "all_queries", "differences", "generate"]

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
# all_queries(resolve=True) gives Grafana's per-query variables these values.
GRAFANA_VARIABLES = {RATE: "1m", RANGE: "1h", "$__interval": "1m"}

# Marks on the time axis where the champion changed, so a jump in a curve has its cause beside it.
SWAPS = ("Champion swapped", "purple", "increase(parivision_model_swaps_total[1m]) > 0")


# --- the dashboards ----------------------------------------------------------------------------


def live_pipeline() -> dashboard.Dashboard:
    throughput = [
        graph(
            "Shots scored and stored per second",
            "Attempts the stream worker scored, and their predictions the sink stored.",
            query("sum(parivision:shots_scored:rate1m)", "scored"),
            query("sum(parivision:shots_stored:rate1m)", "stored"),
            unit="ops",
        ),
        graph(
            "Records consumed per second, by kind",
            "What the stream worker read from Kafka: attempts and outcomes.",
            query(f"sum by (kind) (rate(parivision_shots_consumed_total[{RATE}]))", "{{kind}}"),
            unit="ops",
            span=6,
        ),
        graph(
            "Replay records produced per second",
            "What the replay sent to Kafka, by kind; flat at 0 when no replay runs.",
            query(f"sum by (kind) (rate(parivision_replay_produced_total[{RATE}]))", "{{kind}}"),
            unit="ops",
            span=6,
        ),
    ]
    latency = [
        graph(
            "Score latency (attempt produced → scored)",
            "Per shot, from the attempt produced to its scored record.",
            query("parivision:score_latency_seconds:p50", "p50"),
            query("parivision:score_latency_seconds:p99", "p99"),
            unit="s",
            span=8,
        ),
        graph(
            "End-to-end latency (attempt produced → stored)",
            "Per shot, from the attempt produced to its prediction stored in MongoDB.",
            query("parivision:end_to_end_latency_seconds:p50", "p50"),
            query("parivision:end_to_end_latency_seconds:p99", "p99"),
            unit="s",
            span=8,
        ),
        graph(
            "Score batch time",
            "Time to score one micro-batch: features, champion and online learners.",
            query(quantile(0.5, "parivision_score_batch_seconds"), "p50"),
            query(quantile(0.99, "parivision_score_batch_seconds"), "p99"),
            unit="s",
            span=8,
        ),
    ]
    backlog = [
        graph(
            "Consumer lag, by group",
            "Records not yet read, summed over partitions; a steady climb means a consumer "
            "cannot keep up.",
            query("parivision:consumer_lag:sum", "{{group}}"),
            span=8,
        ),
        graph(
            "Consumer lag, by group and partition",
            "One skewed partition points at a hot key or a stuck worker.",
            query(
                "max by (group, topic, partition) (parivision_consumer_lag)",
                "{{group}} {{topic}}/{{partition}}",
            ),
            span=8,
        ),
        graph(
            "Held attempts and releases without outcome",
            "Attempts waiting for their player's previous outcome, and the rate of those "
            "scored without it because it was overdue.",
            query("sum(parivision_shots_held)", "held"),
            query(
                f"sum(rate(parivision_shots_released_without_outcome_total[{RATE}]))",
                "released without outcome /s",
            ),
            span=8,
        ),
    ]
    return assemble(
        "PariVision — live pipeline",
        "parivision-live-pipeline",
        "Shots through Kafka, the stream worker and the MongoDB sink: throughput, latency, lag.",
        [("Throughput", throughput), ("Latency", latency), ("Backlog", backlog)],
        annotations=[SWAPS],
    )


def model_quality() -> dashboard.Dashboard:
    by_model = "avg by (model) ({})"
    live = [
        graph(
            "Live log loss, by model",
            "Over the most recent labelled shots; the champion and each online learner.",
            query(by_model.format("parivision_live_log_loss"), "{{model}}"),
            span=8,
        ),
        graph(
            "Live ROC-AUC, by model",
            "Over the most recent labelled shots; 0.5 is a coin toss.",
            query(by_model.format("parivision_live_roc_auc"), "{{model}}"),
            span=8,
        ),
        graph(
            "Live Brier score, by model",
            "Mean squared error of the probabilities; lower is better.",
            query(by_model.format("parivision_live_brier"), "{{model}}"),
            span=8,
        ),
        graph(
            "Champion log-loss excess over its reference",
            "Live log loss minus the log loss it was promoted with; above 0 it does worse live "
            "than in validation.",
            query("parivision:champion_log_loss_excess", "excess"),
            span=12,
        ),
        graph(
            "Live window, by model",
            "Labelled shots the live metrics are measured on; small windows are noisy.",
            query(by_model.format("parivision_live_window_shots"), "{{model}}"),
            span=12,
        ),
    ]
    champion = [
        labels_table(
            "Champion",
            "The registered model and version the stream scores with.",
            "parivision_champion_info",
        ),
        single(
            "Champion reference log loss",
            "Its validation log loss when it was promoted.",
            query("max(parivision_champion_reference_log_loss)"),
            span=4,
        ),
        single(
            "Model loads over the range, by outcome",
            "Champion versions loaded from the registry; errors keep the previous champion.",
            query(
                f"sum by (outcome) (increase(parivision_model_loads_total[{RANGE}]))",
                "{{outcome}}",
                instant=True,
            ),
            span=4,
        ),
        single(
            "Champion swaps over the range",
            "Champions swapped in without a restart.",
            query(f"sum(increase(parivision_model_swaps_total[{RANGE}]))", instant=True),
            span=4,
        ),
    ]
    retraining = [
        graph(
            "Retrains, by trigger",
            "Retrains started per interval: count, schedule, error_drift, data_drift or manual.",
            query(f"sum by (trigger) (increase(parivision_retrains_total[{RATE}]))", "{{trigger}}"),
            bars=True,
        ),
        graph(
            "Promotion decisions, by outcome",
            "Challenges decided per interval: promoted, kept or failed.",
            query(
                f"sum by (outcome) (increase(parivision_promotion_decisions_total[{RATE}]))",
                "{{outcome}}",
            ),
            bars=True,
        ),
    ]
    return assemble(
        "PariVision — model quality",
        "parivision-model-quality",
        "How well the champion and the online learners predict live, and what the retrain loop "
        "decides.",
        [("Live quality", live), ("Champion", champion), ("Retraining", retraining)],
        annotations=[
            SWAPS,
            (
                "Challenger promoted",
                "green",
                'increase(parivision_promotion_decisions_total{outcome="promoted"}[1m]) > 0',
            ),
        ],
    )


def drift_and_data() -> dashboard.Dashboard:
    flag = {"0": ("no", "green"), "1": ("detected", "red")}
    drift = [
        single(
            "Dataset drift",
            "Evidently's dataset drift in the last check of the retrain loop.",
            query("max(parivision_drift_detected)"),
            texts=flag,
        ),
        single(
            "Error drift (ADWIN)",
            "Whether ADWIN saw the champion's errors change in the last check.",
            query("max(parivision_error_drift_detected)"),
            texts=flag,
        ),
        single(
            "Drifted features",
            "Features Evidently finds drifted in the last check.",
            query("max(parivision_drifted_features)"),
            steps=((None, "green"), (1, "orange")),
        ),
        single(
            "Drift checks over the range",
            "Each writes an Evidently report under the home's reports folder.",
            query(f"sum(increase(parivision_drift_checks_total[{RANGE}]))", instant=True),
        ),
        graph(
            "Drift share",
            "Share of features drifted, recent shots against the reference.",
            query("max(parivision_drift_share)", "drift share"),
            unit="percentunit",
            min_value=0,
            max_value=1,
        ),
        graph(
            "Drift score, by feature",
            "Evidently's score per feature: the test's p-value or distance.",
            query("max by (feature) (parivision_feature_drift_score)", "{{feature}}"),
        ),
    ]
    data = [
        graph(
            "Champion quality on recent shots, by metric",
            "Evidently's quality report on the latest labelled shots.",
            query("max by (metric) (parivision_recent_quality)", "{{metric}}"),
            span=8,
        ),
        graph(
            "Labelled shots since the last retrain",
            "The count trigger retrains when this reaches its threshold.",
            query("max(parivision_labelled_since_retrain)", "labelled"),
            span=8,
        ),
        single(
            "Documents stored over the range, by collection",
            "What the sink wrote to MongoDB in the dashboard's time range.",
            query(
                f"sum by (collection) (increase(parivision_stored_total[{RANGE}]))",
                "{{collection}}",
                instant=True,
            ),
            span=8,
            height=8,
        ),
    ]
    return assemble(
        "PariVision — drift and data",
        "parivision-drift-and-data",
        "Data and error drift seen by the retrain loop, and how much data arrives.",
        [("Drift", drift), ("Data", data)],
    )


def errors() -> dashboard.Dashboard:
    pipeline = [
        graph(
            "Dead letters per second, by stage and reason",
            "Records sent to the dead-letter topic; the reason is a short code.",
            query(
                f"sum by (stage, reason) (rate(parivision_dead_letters_total[{RATE}]))",
                "{{stage}}: {{reason}}",
            ),
            unit="ops",
        ),
        graph(
            "Dead letters per second, all (5m)",
            "The rate the dead-letter alert watches.",
            query("sum(parivision:dead_letters:rate5m)", "dead letters"),
            unit="ops",
        ),
        graph(
            "MongoDB write errors per second",
            "Failed bulk writes; each is retried and nothing is committed past it.",
            query(f"sum(rate(parivision_mongo_write_errors_total[{RATE}]))", "write errors"),
            unit="ops",
        ),
        graph(
            "MongoDB write time p99, by collection",
            "One bulk write to MongoDB.",
            query(quantile(0.99, "parivision_mongo_write_seconds", "collection"), "{{collection}}"),
            unit="s",
        ),
    ]
    api = [
        graph(
            "API requests per second, by status",
            "HTTP requests the live API answered.",
            query(f"sum by (status) (rate(parivision_api_requests_total[{RATE}]))", "{{status}}"),
            unit="reqps",
            span=8,
        ),
        graph(
            "API 5xx ratio",
            "Share of requests answered with a server error.",
            query(
                # "or vector(0)": no server error at all is a ratio of 0, not a gap.
                f'(sum(rate(parivision_api_requests_total{{status=~"5.."}}[{RATE}])) or vector(0))'
                f" / sum(rate(parivision_api_requests_total[{RATE}]))",
                "5xx",
            ),
            unit="percentunit",
            min_value=0,
            span=8,
        ),
        graph(
            "API latency p99, by route",
            "HTTP request time per route template.",
            query(quantile(0.99, "parivision_api_request_seconds", "route"), "{{route}}"),
            unit="s",
            span=8,
        ),
        graph(
            "Live-feed clients and dropped messages",
            "WebSocket clients of the live feed, and messages dropped for clients that fell "
            "behind.",
            query("sum(parivision_live_clients)", "clients"),
            query(f"sum(rate(parivision_live_dropped_total[{RATE}]))", "dropped /s"),
            span=12,
        ),
        single(
            "Targets up, by job",
            "1 when every target of the job answers Prometheus's scrape; 0 when one is down.",
            query("min by (job) (up)", "{{job}}"),
            span=12,
            steps=((None, "red"), (1, "green")),
            texts={"0": ("down", "red"), "1": ("up", "green")},
        ),
    ]
    return assemble(
        "PariVision — errors",
        "parivision-errors",
        "What went wrong: dead letters, MongoDB writes, API errors, the live feed, scrapes.",
        [("Pipeline", pipeline), ("API and scrapes", api)],
    )


# File name (without .json) -> (title, builder); the uid of each is fixed in its builder.
DASHBOARDS: dict[str, tuple[str, Callable[[], dashboard.Dashboard]]] = {
    "live-pipeline": ("PariVision — live pipeline", live_pipeline),
    "model-quality": ("PariVision — model quality", model_quality),
    "drift-and-data": ("PariVision — drift and data", drift_and_data),
    "errors": ("PariVision — errors", errors),
}


# --- output ------------------------------------------------------------------------------------


def render(board: dashboard.Dashboard) -> str:
    """The dashboard's JSON, as committed: stable key order, one trailing newline."""
    return json.dumps(board.build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def generate() -> dict[str, str]:
    """Every dashboard's JSON text, by file name."""
    return {f"{name}.json": render(build()) for name, (_title, build) in DASHBOARDS.items()}


def differences(out_dir: Path = OUT_DIR) -> list[str]:
    """What differs between ``out_dir`` and the generated dashboards (empty: up to date)."""
    return generated.differences(out_dir, generate(), "*.json")


def write(out_dir: Path = OUT_DIR) -> list[Path]:
    """Write every dashboard to ``out_dir`` and remove JSON files no longer generated."""
    return generated.write(out_dir, generate(), "*.json")


def _panels(panels: list[dict]) -> Iterator[dict]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])  # a collapsed row holds its panels


def _resolve(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def all_queries(resolve: bool = True) -> list[tuple[str, str, str]]:
    """Every PromQL expression of every dashboard: (dashboard title, panel title, expr).

    Annotations count as panels named ``annotation: <name>``.  With ``resolve`` (the default),
    Grafana's ``$__rate_interval``, ``$__interval`` and ``$__range`` become fixed durations (1m,
    1m, 1h), so that each expression runs as it is on Prometheus's ``/api/v1/query``; without
    it, the expressions are as the dashboards hold them.
    """
    found = []
    for text in generate().values():
        board = json.loads(text)
        for panel in _panels(board.get("panels") or []):
            for target in panel.get("targets") or []:
                found.append((board["title"], panel["title"], target["expr"]))
        for annotation in (board.get("annotations") or {}).get("list") or []:
            if annotation.get("expr"):
                found.append(
                    (board["title"], f"annotation: {annotation['name']}", annotation["expr"])
                )
    if resolve:
        return [(board, panel, _resolve(expr)) for board, panel, expr in found]
    return found


def main(argv: Sequence[str] | None = None) -> int:
    return generated.command(
        argv,
        prog="python -m infra.grafana.dashboards",
        what="Grafana dashboards",
        out_dir=OUT_DIR,
        count=len(DASHBOARDS),
        differences=differences,
        write=write,
    )


if __name__ == "__main__":
    sys.exit(main())
