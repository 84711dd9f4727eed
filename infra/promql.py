"""What the Prometheus rules and the Grafana dashboards read: the series names in a PromQL
expression, and the recording rules ``infra/prometheus/rules/`` defines.

Tests use them to prove that every alert, recording rule and panel reads only series the code
exports (``parivision/metrics.py``), Prometheus's own ``up``, or a recording rule.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

RULES_DIR = Path(__file__).resolve().parent / "prometheus" / "rules"

# PromQL words that look like names: modifiers, set operators, numbers.
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "inf", "nan",
}  # fmt: skip


def series_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not its functions, labels or keywords).

    Example:
        >>> sorted(series_names(
        ...     'histogram_quantile(0.99, sum by (le) (rate(a_bucket{status=~"5.."}[1m])))'
        ...     ' / on (route) group_left (job) max without (instance) (b:c) > 0'
        ... ))
        ['a_bucket', 'b:c']
    """
    expr = re.sub(r'"(?:\\.|[^"\\])*"|`[^`]*`', '""', expr)  # label values may look like names
    expr = re.sub(r"\{[^}]*\}", "", expr)  # matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges and subqueries, $__rate_interval included
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", expr):
        if expr[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match[0].lower() not in KEYWORDS:
            names.add(match[0])
    return names


def rules(folder: Path = RULES_DIR) -> list[dict]:
    """Every rule (alerting and recording) of every rule file in ``folder``."""
    return [
        rule
        for path in sorted(folder.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def recording_rules(folder: Path = RULES_DIR) -> set[str]:
    """The names the recording rules define."""
    return {rule["record"] for rule in rules(folder) if "record" in rule}
