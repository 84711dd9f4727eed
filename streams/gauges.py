"""What the worker shows of itself: Prometheus gauges (held attempts, live model quality,
consumer lag) every two seconds, and the live metrics in the log every ten."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

import faust

from parivision import schemas
from parivision.metrics import Metrics
from parivision.settings import Settings
from streams.flow import ShotFlow
from streams.scoring import Scorer

log = logging.getLogger("parivision.stream")


class WorkerGauges:
    """:meth:`update_gauges` and :meth:`report_metrics` are the app's timers."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        scorer: Scorer,
        flow: ShotFlow,
        metrics: Metrics,
    ) -> None:
        self.app = app
        self.group = settings.stream_group()
        self.topics = (settings.topic(schemas.ATTEMPTS), settings.topic(schemas.OUTCOMES))
        self.scorer = scorer
        self.flow = flow
        self.metrics = metrics

    async def update_gauges(self) -> None:
        metrics, scorer = self.metrics, self.scorer
        metrics["held"].set(self.flow.held_count())
        if "shadow" not in scorer.recent:
            for gauge in ("live_log_loss", "live_roc_auc", "live_brier", "live_window"):
                with contextlib.suppress(KeyError):  # no shadow: no line on the graphs
                    metrics[gauge].remove("shadow")
        for model, quality in list(scorer.recent.items()):
            summary = quality.summary()
            if summary["n"]:
                for name in ("log_loss", "roc_auc", "brier"):
                    metrics[f"live_{name}"].labels(model=model).set(summary[name])
                metrics["live_window"].labels(model=model).set(summary["n"])
        export_lag(metrics, self.app.consumer, self.group, self.topics)

    async def report_metrics(self) -> None:
        if self.scorer.scored:
            log.info("live metrics %s", json.dumps(self.scorer.live_metrics()))


def export_lag(metrics: Metrics, consumer: Any, group: str, topics: tuple[str, ...]) -> None:
    """Consumer lag per assigned partition: the broker's high watermark (as of the last fetch)
    less the next offset this worker will read.  Revoked partitions leave the gauge."""
    lag = metrics["lag"]
    lag.clear()
    try:
        assigned = [tp for tp in consumer.assignment() if tp.topic in topics]
    except Exception:  # not started, or between two assignments
        return
    for tp in assigned:
        try:
            highwater = consumer.highwater(tp)
        except Exception:
            continue
        if highwater is None:
            continue
        # Faust keeps the last offset it handed on, and the last it committed.
        read = consumer._read_offset.get(tp)
        committed = consumer._committed_offset.get(tp)
        behind = highwater - (read + 1 if read is not None else committed or 0)
        lag.labels(group=group, topic=tp.topic, partition=str(tp.partition)).set(max(0, behind))
