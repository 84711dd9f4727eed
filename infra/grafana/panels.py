"""Building blocks of PariVision's Grafana dashboards, over grafana-foundation-sdk's builders.

Every panel and query names the Prometheus data source by the uid that
``provisioning/datasources/prometheus.yml`` gives it, so the dashboards work as soon as Grafana
has loaded them.

One Prometheus may scrape several deployments, each series labelled with its ``deployment`` and
``instance`` (host:port).  Every dashboard has a variable for each, and every query filters on
them through :func:`series` (what a process exports: deployment and instance) or
:func:`recorded` (a recording rule, one series per deployment: deployment only), and aggregates
:func:`per_deployment`, so two deployments selected are two lines, each named.

Example:
    >>> print(series("parivision_shots_held", 'job="stream"'))
    parivision_shots_held{deployment=~"$deployment", instance=~"$instance", job="stream"}
    >>> print(per_deployment("sum", recorded("parivision:consumer_lag:sum"), "group"))
    sum by (deployment, group) (parivision:consumer_lag:sum{deployment=~"$deployment"})
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

# The dashboards' variables, in the order Grafana shows them; the instances offered are those of
# the deployments selected.  "All" is the regex .* rather than every value listed, so a query
# stays short and series scraped without a deployment label still show.
VARIABLES = {
    "deployment": ("Deployment", "label_values(up, deployment)"),
    "instance": ("Instance", 'label_values(up{deployment=~"$deployment"}, instance)'),
}
ALL = ".*"
DEPLOYMENT = 'deployment=~"$deployment"'
PROCESS = f'{DEPLOYMENT}, instance=~"$instance"'

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


def series(metric: str, matchers: str = "") -> str:
    """A series processes export, of the selected deployments and instances (and ``matchers``)."""
    return f"{metric}{{{', '.join(m for m in (PROCESS, matchers) if m)}}}"


def recorded(rule: str) -> str:
    """A recording rule's series, of the selected deployments.

    The rules aggregate over processes, so their series have no instance: filtering on it would
    hide them as soon as one instance is picked.
    """
    return f"{rule}{{{DEPLOYMENT}}}"


def rate(counter: str, matchers: str = "") -> str:
    """Per-second rate of a counter's selected series over Grafana's rate interval."""
    return f"rate({series(counter, matchers)}[{RATE}])"


def increase(counter: str, window: str = RANGE, matchers: str = "") -> str:
    """What a counter's selected series counted over ``window`` (the dashboard's range)."""
    return f"increase({series(counter, matchers)}[{window}])"


def per_deployment(aggregation: str, expr: str, labels: str = "") -> str:
    """``expr`` aggregated over processes: one series per deployment (and per ``labels``)."""
    by = ", ".join(label for label in ("deployment", labels) if label)
    return f"{aggregation} by ({by}) ({expr})"


def quantile(q: float, histogram: str, by: str = "") -> str:
    """The ``q`` quantile of a histogram over the last rate interval, per deployment and ``by``."""
    labels = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, {per_deployment('sum', rate(f'{histogram}_bucket'), labels)})"


def zero_when_none(expr: str, *labels: str) -> str:
    """``expr``, and 0 for each selected deployment it has no series for.

    A counter with labels has no series before its first increment, so a panel of it says
    "No data" where nothing happened.  Each selected deployment with a target up and no series
    of ``expr`` gets a 0 of its own, named by its deployment (and ``labels``, which read "none").
    ``or on () vector(0)`` would give one 0 without a deployment, and none at all for a quiet
    deployment beside one that has series; Grafana's ``noValue`` writes "0" but draws no line.
    """
    zero = f"0 * group by (deployment) (up{{{PROCESS}}})"
    for label in labels:
        zero = f'label_replace({zero}, "{label}", "none", "", "")'
    return f"{expr} or on (deployment) {zero}"


def _with_targets(panel, targets: Sequence[prometheus.Dataquery]):
    for i, target in enumerate(targets):
        panel.with_target(target.ref_id(chr(ord("A") + i)).datasource(DATASOURCE))
    return panel


def variable(name: str) -> dashboard.QueryVariable:
    """One of :data:`VARIABLES`: several values or All (the default), from Prometheus's targets."""
    label, values = VARIABLES[name]
    return (
        dashboard.QueryVariable(name)
        .id(name)  # the builder's default id is the same for every variable
        .label(label)
        .datasource(DATASOURCE)
        .query(values)
        .multi(True)
        .include_all(True)
        .all_value(ALL)
        .current(models.VariableOption(selected=True, text=["All"], value=["$__all"]))
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)  # a deployment started since
        .sort(models.VariableSort.ALPHABETICAL_ASC)
    )


def assemble(
    title: str,
    uid: str,
    description: str,
    sections: Sequence[Section],
    annotations: Sequence[tuple[str, str, str]] = (),
) -> dashboard.Dashboard:
    """One dashboard: a row per section; ``annotations`` are (name, colour, expr) markers.

    The links menu keeps the time range and the variables: the deployments picked stay picked.
    """
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
            .include_vars(True)
        )
    )
    for name in VARIABLES:
        board.with_variable(variable(name))
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
