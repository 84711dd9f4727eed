"""Model quality: the champion and the online learners live, and what the retrain loop decides."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from infra.grafana.boards import SWAPS
from infra.grafana.panels import (
    RATE,
    assemble,
    graph,
    increase,
    labels_table,
    per_deployment,
    query,
    rate,
    recorded,
    series,
    single,
)

TITLE = "PariVision — model quality"


def by_model(gauge: str) -> str:
    """A live-quality gauge per deployment and model, averaged over the stream workers."""
    return per_deployment("avg", series(gauge), "model")


def build() -> dashboard.Dashboard:
    live = [
        graph(
            "Live log loss, by model",
            "Over the most recent labelled shots; the champion and each online learner.",
            query(by_model("parivision_live_log_loss"), "{{deployment}} {{model}}"),
            span=8,
        ),
        graph(
            "Live ROC-AUC, by model",
            "Over the most recent labelled shots; 0.5 is a coin toss.",
            query(by_model("parivision_live_roc_auc"), "{{deployment}} {{model}}"),
            span=8,
        ),
        graph(
            "Live Brier score, by model",
            "Mean squared error of the probabilities; lower is better.",
            query(by_model("parivision_live_brier"), "{{deployment}} {{model}}"),
            span=8,
        ),
        graph(
            "Champion log-loss excess over its reference",
            "Live log loss minus the log loss it was promoted with; above 0 it does worse live "
            "than in validation.",
            query(recorded("parivision:champion_log_loss_excess"), "{{deployment}} excess"),
            span=12,
        ),
        graph(
            "Live window, by model",
            "Labelled shots the live metrics are measured on; small windows are noisy.",
            query(by_model("parivision_live_window_shots"), "{{deployment}} {{model}}"),
            span=6,
        ),
        graph(
            "Shots labelled per second",
            "Outcomes the stream worker joined to their scored attempt: what the live metrics "
            "and the online learners learn from; 0 while shots are scored means outcomes are "
            "not arriving.",
            query(per_deployment("sum", rate("parivision_shots_labelled_total")), "{{deployment}}"),
            unit="ops",
            span=6,
        ),
    ]
    champion = [
        labels_table(
            "Champion",
            "The registered model and version the stream scores with, per deployment and "
            "stream worker.",
            series("parivision_champion_info"),
        ),
        single(
            "Champion reference log loss",
            "Its validation log loss when it was promoted.",
            query(
                per_deployment("max", series("parivision_champion_reference_log_loss")),
                "{{deployment}}",
            ),
            span=4,
        ),
        single(
            "Model loads over the range, by outcome",
            "Champion versions loaded from the registry; errors keep the previous champion.",
            query(
                per_deployment("sum", increase("parivision_model_loads_total"), "outcome"),
                "{{deployment}} {{outcome}}",
                instant=True,
            ),
            span=4,
        ),
        single(
            "Champion swaps over the range",
            "Champions swapped in without a restart.",
            query(
                per_deployment("sum", increase("parivision_model_swaps_total")),
                "{{deployment}}",
                instant=True,
            ),
            span=4,
        ),
    ]
    retraining = [
        graph(
            "Retrains, by trigger",
            "Retrains started per interval: count, schedule, error_drift, data_drift or manual.",
            query(
                per_deployment("sum", increase("parivision_retrains_total", RATE), "trigger"),
                "{{deployment}} {{trigger}}",
            ),
            bars=True,
        ),
        graph(
            "Promotion decisions, by outcome",
            "Challenges decided per interval: promoted, kept or failed.",
            query(
                per_deployment(
                    "sum", increase("parivision_promotion_decisions_total", RATE), "outcome"
                ),
                "{{deployment}} {{outcome}}",
            ),
            bars=True,
        ),
    ]
    promoted = increase("parivision_promotion_decisions_total", "1m", 'outcome="promoted"')
    return assemble(
        TITLE,
        "parivision-model-quality",
        "How well the champion and the online learners predict live, and what the retrain loop "
        "decides.",
        [("Live quality", live), ("Champion", champion), ("Retraining", retraining)],
        annotations=[
            SWAPS,
            ("Challenger promoted", "green", f"{per_deployment('sum', promoted)} > 0"),
        ],
    )
