"""Building blocks of PariVision's Grafana dashboards, over grafana-foundation-sdk's builders.

Every panel and query names the Prometheus data source by the uid that
``provisioning/datasources/prometheus.yml`` gives it, so the dashboards need no variable and
work as soon as Grafana has loaded them.

Example:
    >>> print(quantile(0.99, "request_seconds", "route"))
    histogram_quantile(0.99, sum by (le, route) (rate(request_seconds_bucket[$__rate_interval])))
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from grafana_foundation_sdk.builders import common, dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import prometheus as prometheus_models

DATASOURCE_UID = "prometheus"  # the uid provisioning/datasources/prometheus.yml gives it
DATASOURCE = models.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
TAG = "parivision"  # every dashboard has it; their links menu lists the dashboards with it

# Grafana fills these in per query (dashboards.all_queries() gives them fixed values).
RATE = "$__rate_interval"
RANGE = "$__range"

Panel = cogbuilder.Builder[models.Panel]
Section = tuple[str, Sequence[Panel]]


def query(expr: str, legend: str = "", *, instant: bool = False) -> prometheus.Dataquery:
    """One Prometheus query; ``legend`` names each series (``{{label}}`` reads a label)."""
    target = prometheus.Dataquery().expr(expr)
    if legend:
        target.legend_format(legend)
    return target.instant() if instant else target


def graph(
    title: str,
    description: str,
    *targets: prometheus.Dataquery,
    unit: str = "short",
    span: int = 12,
    bars: bool = False,
    min_value: float | None = None,
    max_value: float | None = None,
) -> timeseries.Panel:
    """A time series panel; ``bars`` for counts of rare events (one bar per interval)."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(span)
        .height(8)
        .fill_opacity(10)
        .show_points(common_models.VisibilityMode.NEVER)
        .legend(
            common.VizLegendOptions()
            .show_legend(True)
            .display_mode(common_models.LegendDisplayMode.LIST)
            .placement(common_models.LegendPlacement.BOTTOM)
        )
        .tooltip(common.VizTooltipOptions().mode(common_models.TooltipDisplayMode.MULTI))
    )
    if bars:
        panel.draw_style(common_models.GraphDrawStyle.BARS).fill_opacity(60)
    if min_value is not None:
        panel.min(min_value)
    if max_value is not None:
        panel.max(max_value)
    return _with_targets(panel, targets)


def single(
    title: str,
    description: str,
    *targets: prometheus.Dataquery,
    unit: str = "short",
    span: int = 6,
    height: int = 5,
    steps: Sequence[tuple[float | None, str]] = ((None, "green"),),
    texts: dict[str, tuple[str, str]] | None = None,
) -> stat.Panel:
    """A stat panel: the last value of each series, coloured by ``steps`` (from, colour).

    ``texts`` maps a value to the words and colour shown instead, e.g. ``{"1": ("drift", "red")}``.
    """
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(span)
        .height(height)
        .graph_mode(common_models.BigValueGraphMode.AREA)
        .color_mode(common_models.BigValueColorMode.VALUE)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(
            dashboard.ThresholdsConfig()
            .mode(models.ThresholdsMode.ABSOLUTE)
            .steps([models.Threshold(value=value, color=color) for value, color in steps])
        )
    )
    if texts:
        options = {
            value: models.ValueMappingResult(text=text, color=color, index=i)
            for i, (value, (text, color)) in enumerate(texts.items())
        }
        panel.mappings([models.ValueMap(options=options)])
    return _with_targets(panel, targets)


def labels_table(title: str, description: str, expr: str, *, span: int = 12) -> table.Panel:
    """A table of the labels of ``expr``'s series (an info metric's value is always 1)."""
    hidden = {name: True for name in ("Time", "Value", "__name__")}
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(span)
        .height(5)
        .with_transformation(
            models.DataTransformerConfig(id_val="organize", options={"excludeByName": hidden})
        )
    )
    target = query(expr, instant=True).format(prometheus_models.PromQueryFormat.TABLE)
    return _with_targets(panel, [target])


def quantile(q: float, histogram: str, by: str = "") -> str:
    """The ``q`` quantile of a histogram over the last rate interval, per ``by`` labels."""
    labels = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({labels}) (rate({histogram}_bucket[{RATE}])))"


def _with_targets(panel, targets: Sequence[prometheus.Dataquery]):
    for i, target in enumerate(targets):
        panel.with_target(target.ref_id(chr(ord("A") + i)).datasource(DATASOURCE))
    return panel


def assemble(
    title: str,
    uid: str,
    description: str,
    sections: Sequence[Section],
    annotations: Sequence[tuple[str, str, str]] = (),
) -> dashboard.Dashboard:
    """One dashboard: a row per section; ``annotations`` are (name, colour, expr) markers."""
    board = (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .editable()
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .link(
            dashboard.DashboardLink("PariVision")
            .type(models.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .keep_time(True)
        )
    )
    for name, colour, expr in annotations:
        board.annotation(
            dashboard.AnnotationQuery()
            .name(name)
            .datasource(DATASOURCE)
            .enable(True)
            .icon_color(colour)
            .expr(expr)
        )
    ids = itertools.count(1)
    for row_title, panels in sections:
        board.with_row(dashboard.Row(row_title).id(next(ids)))
        for panel in panels:
            board.with_panel(panel.id(next(ids)))
    return board
