"""PariVision's Grafana dashboards, as code.

``python -m infra.grafana.dashboards`` writes one JSON file per dashboard under
``infra/grafana/dashboards/``, which Grafana's file provider loads (see ``provisioning/``);
``--check`` writes nothing and exits 1 when the committed files differ from what this module
generates, so an edit here cannot ship without its JSON.  Edit the dashboards' modules
(``boards/``, one per dashboard) and their building blocks (``panels.py``), never the JSON.

Panels query the Prometheus data source provisioned with uid ``prometheus`` and name only the
series of :mod:`parivision.metrics`, Prometheus's ``up`` and the recording rules of
``infra/prometheus/rules/recording.yml`` (a test checks), each filtered on the dashboard's
``deployment`` and ``instance`` variables.  :func:`all_queries` lists every expression, so a
test can run each against a real Prometheus.

Example:
    >>> [title for title, _ in DASHBOARDS.values()][:2]
    ['PariVision — live pipeline', 'PariVision — model quality']
    >>> ("PariVision — errors", "Targets up, by job",
    ...  'min by (deployment, job) (up{deployment=~".*", instance=~".*"})') in all_queries()
    True
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from infra.grafana.boards import drift_and_data, errors, live_pipeline, model_quality
from infra.grafana.panels import ALL, DATASOURCE_UID, RANGE, RATE, VARIABLES
from parivision import generated

__all__ = ["DASHBOARDS", "DATASOURCE_UID", "OUT_DIR", "all_queries", "differences", "generate"]

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
# all_queries(resolve=True) gives Grafana's per-query variables these values, and the
# dashboards' own variables the value Grafana sends for All.
GRAFANA_VARIABLES = {RATE: "1m", RANGE: "1h", "$__interval": "1m"} | {
    f"${name}": ALL for name in VARIABLES
}

# File name (without .json) -> (title, builder); the uid of each is fixed in its builder.
DASHBOARDS: dict[str, tuple[str, Callable[[], dashboard.Dashboard]]] = {
    "live-pipeline": (live_pipeline.TITLE, live_pipeline.build),
    "model-quality": (model_quality.TITLE, model_quality.build),
    "drift-and-data": (drift_and_data.TITLE, drift_and_data.build),
    "errors": (errors.TITLE, errors.build),
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
    1m, 1h) and ``$deployment`` and ``$instance`` the regex Grafana sends for All (``.*``), so
    that each expression runs as it is on Prometheus's ``/api/v1/query``; without it, the
    expressions are as the dashboards hold them.
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
