"""PariVision's dashboards, one module each: its ``TITLE`` and ``build()``, which fixes its uid.

``infra.grafana.dashboards`` lists them and writes their JSON; ``infra.grafana.panels`` holds
the building blocks.  Every query goes through the panels' selectors, so it shows only the
deployments and instances picked in the dashboard's variables.
"""

from __future__ import annotations

from infra.grafana.panels import increase, per_deployment

# Marks on the time axis where the champion changed, so a jump in a curve has its cause beside it.
SWAPS = (
    "Champion swapped",
    "purple",
    f"{per_deployment('sum', increase('parivision_model_swaps_total', '1m'))} > 0",
)
