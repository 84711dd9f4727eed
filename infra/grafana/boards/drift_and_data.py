"""Drift and data: what the retrain loop's drift checks see, and how much data arrives."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from infra.grafana.panels import (
    assemble,
    graph,
    increase,
    per_deployment,
    query,
    series,
    single,
)

TITLE = "PariVision — drift and data"


def latest(gauge: str, labels: str = "") -> str:
    """A retrain loop's gauge, per deployment (and ``labels``): one loop runs in each."""
    return per_deployment("max", series(gauge), labels)


def build() -> dashboard.Dashboard:
    flag = {"0": ("no", "green"), "1": ("detected", "red")}
    drift = [
        single(
            "Dataset drift",
            "Evidently's dataset drift in the last check of the retrain loop.",
            query(latest("parivision_drift_detected"), "{{deployment}}"),
            texts=flag,
        ),
        single(
            "Error drift (ADWIN)",
            "Whether ADWIN saw the champion's errors change in the last check.",
            query(latest("parivision_error_drift_detected"), "{{deployment}}"),
            texts=flag,
        ),
        single(
            "Drifted features",
            "Features Evidently finds drifted in the last check.",
            query(latest("parivision_drifted_features"), "{{deployment}}"),
            steps=((None, "green"), (1, "orange")),
        ),
        single(
            "Drift checks over the range",
            "Each writes an Evidently report under the home's reports folder.",
            query(
                per_deployment("sum", increase("parivision_drift_checks_total")),
                "{{deployment}}",
                instant=True,
            ),
        ),
        graph(
            "Drift share",
            "Share of features drifted, recent shots against the reference.",
            query(latest("parivision_drift_share"), "{{deployment}} drift share"),
            unit="percentunit",
            min_value=0,
            max_value=1,
        ),
        graph(
            "Drift score, by feature",
            "Evidently's score per feature: the test's p-value or distance.",
            query(
                latest("parivision_feature_drift_score", "feature"), "{{deployment}} {{feature}}"
            ),
        ),
    ]
    data = [
        graph(
            "Champion quality on recent shots, by metric",
            "Evidently's quality report on the latest labelled shots.",
            query(latest("parivision_recent_quality", "metric"), "{{deployment}} {{metric}}"),
            span=8,
        ),
        graph(
            "Labelled shots since the last retrain",
            "The count trigger retrains when this reaches its threshold.",
            query(latest("parivision_labelled_since_retrain"), "{{deployment}} labelled"),
            span=8,
        ),
        single(
            "Documents stored over the range, by collection",
            "What the sink wrote to MongoDB in the dashboard's time range.",
            query(
                per_deployment("sum", increase("parivision_stored_total"), "collection"),
                "{{deployment}} {{collection}}",
                instant=True,
            ),
            span=8,
            height=8,
        ),
    ]
    return assemble(
        TITLE,
        "parivision-drift-and-data",
        "Data and error drift seen by the retrain loop, and how much data arrives.",
        [("Drift", drift), ("Data", data)],
    )
