"""Prometheus and Alertmanager as code, checked with the real promtool and amtool.

Each config is checked as the binary reads it: the compose ``prometheus.yml`` with its rules, the
one ``parivision up`` renders, every rule file and its promtool unit tests, the committed
``alertmanager.yml`` and what its entrypoint renders from the environment.  Without the binaries
(Debian's ``prometheus`` and ``prometheus-alertmanager``) these skip, except in CI, where they
fail.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from infra import monitoring
from infra.promql import recording_rules, rules, series_names
from parivision.metrics import SPECS, exported_names
from parivision.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS_DIR = ROOT / "infra" / "prometheus"
COMPOSE_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
ALERTMANAGER_DIR = ROOT / "infra" / "alertmanager"
ALERTMANAGER_CONFIG = ALERTMANAGER_DIR / "alertmanager.yml"
ENTRYPOINT = ALERTMANAGER_DIR / "entrypoint.sh"

ALERTS = {
    "PariVisionStreamStalled",
    "PariVisionConsumerLagGrowing",
    "PariVisionDeadLetterRateHigh",
    "PariVisionChampionDecayed",
    "PariVisionDataDrift",
    "PariVisionProcessDown",
    "PariVisionMongoWriteErrors",
    "PariVisionChampionRolledBack",
}


def tool(name: str) -> str:
    """The binary's path; skip without it, but fail in CI, which installs it (.ci/run)."""
    path = shutil.which(name)
    if path is None:
        package = "prometheus" if name in ("promtool", "prometheus") else "prometheus-alertmanager"
        message = f"`{name}` is not installed (sudo apt-get install {package})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def run(*argv: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=120, env=env
    )


def alerts() -> dict[str, dict]:
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def settings_in(home: Path, **overrides) -> Settings:
    return Settings(_env_file=None, home=home, alerts_webhook_url=None, **overrides)


def annotation_queries(text: str) -> list[str]:
    """The PromQL an annotation template runs: ``query "..."``, and ``printf "..." ... | query``
    (a query with the alert's own labels, such as its deployment, filled in)."""
    return re.findall(r'\bquery\s+"((?:[^"\\]|\\.)*)"', text) + re.findall(
        r'\bprintf\s+"((?:[^"\\]|\\.)*)"[^}|]*\|\s*query\b', text
    )


# --- one deployment never merges with another -----------------------------------------------------

# PromQL's aggregation operators (Prometheus 2.42); each groups by what its `by` keeps.
AGGREGATIONS = (
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile",
)  # fmt: skip
# Functions whose result has no deployment label whatever their argument has.
LABEL_DROPPING = ("scalar", "vector", "absent", "absent_over_time")
CLAUSE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def deployment_merges(expr: str) -> list[str]:
    """Where a PromQL expression merges or matches series of different deployments: an
    aggregation that does not keep ``deployment`` (no ``by``, a ``by`` without it, a ``without``
    with it), a vector match ``on (...)`` without it or ``ignoring (...)`` it, and a function
    whose result has no labels.  Empty when every part stays within one deployment.

    Example:
        >>> deployment_merges("sum by (deployment, le) (rate(x[1m])) unless on (deployment) y")
        []
        >>> deployment_merges("max(x) - max by (group) (y) and on () z")
        ['max(...) not by (deployment)', 'max by (group)', 'on ()']
    """
    expr = re.sub(r'"(?:\\.|[^"\\])*"|`[^`]*`|\'(?:\\.|[^\'\\])*\'', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # matchers, deployment="a" included
    clauses = list(CLAUSE.finditer(expr))
    # Label names in a clause are not operators (`by (group)` is no `group` aggregation).
    in_clause: set[int] = set()
    for clause in clauses:
        in_clause.update(range(clause.start(2), clause.end(2)))

    merges = []
    operators = "|".join(AGGREGATIONS)
    for match in re.finditer(rf"(?<![\w:])({operators})\s*(?=\(|by\b|without\b)", expr):
        if match.start() in in_clause:
            continue
        # `sum by (...) (...)`, or `sum (...) by (...)` with the clause after the argument.
        grouping = CLAUSE.match(expr, match.end()) or CLAUSE.match(
            expr, _after_parentheses(expr, match.end())
        )
        if grouping is None or grouping[1] not in ("by", "without"):
            merges.append(f"{match[1]}(...) not by (deployment)")
        elif not _keeps_deployment(grouping):
            merges.append(f"{match[1]} {grouping[1]} ({grouping[2]})")
    for clause in clauses:
        if clause[1] in ("on", "ignoring") and not _keeps_deployment(clause):
            merges.append(f"{clause[1]} ({clause[2]})")
    for match in re.finditer(rf"(?<![\w:])({'|'.join(LABEL_DROPPING)})\s*\(", expr):
        merges.append(f"{match[1]}(...)")
    return merges


def _keeps_deployment(clause: re.Match) -> bool:
    """`by`/`on` name deployment; `without`/`ignoring` do not."""
    named = "deployment" in {label.strip() for label in clause[2].split(",")}
    return named == (clause[1] in ("by", "on"))


def _after_parentheses(expr: str, start: int) -> int:
    """The index of what follows the parenthesised group at ``start``, spaces skipped."""
    depth = 0
    for index in range(start, len(expr)):
        depth += {"(": 1, ")": -1}.get(expr[index], 0)
        if depth == 0:
            rest = expr[index + 1 :]
            return len(expr) - len(rest.lstrip())
    return len(expr)


# --- what the rules say ---------------------------------------------------------------------------


def test_every_alert_says_how_bad_it_is_and_what_to_check():
    assert set(alerts()) == ALERTS
    for name, rule in alerts().items():
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), f"{name} has no summary"
        assert len(annotations["description"].split()) >= 15, f"{name}: say what to check"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("sum by (le) (rate(parivision_x_bucket[1m]))", {"parivision_x_bucket"}),
        ('up{job=~"stream|sink"} == 0', {"up"}),
        (
            "deriv(sum by (group) (lag)[10m:30s]) > 0 and on () parivision:y",
            {"lag", "parivision:y"},
        ),
        ('max(a{model="champion"}) - max(b) unless on (group) c[5m]', {"a", "b", "c"}),
        ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[1m])))", {"h_bucket"}),
    ],
)
def test_series_names_finds_the_series_an_expression_reads(expr, names):
    assert series_names(expr) == names


def test_rules_name_only_exported_series_up_and_recording_rules():
    allowed = exported_names() | {"up"} | recording_rules()
    for rule in rules():
        name = rule.get("alert") or rule["record"]
        unknown = series_names(rule["expr"]) - allowed
        assert not unknown, f"{name} reads {sorted(unknown)}: not in parivision/metrics.py"
        # Queries in annotation templates too, and metric names the text tells people to look at.
        for text in rule.get("annotations", {}).values():
            for query in annotation_queries(text):
                assert not series_names(query) - allowed, f"{name}: annotation query {query}"
            mentioned = set(re.findall(r"parivision[_:][a-zA-Z0-9_:]*", text))
            unknown = mentioned - allowed - {spec.name for spec in SPECS}
            assert not unknown, f"{name}'s annotations name {sorted(unknown)}"


def test_no_rule_merges_or_matches_series_of_different_deployments():
    # One Prometheus may scrape several deployments: an alert that sums over them lets one
    # deployment raise or hide another's, and its labels cannot say which deployment to fix.
    for rule in rules():
        name = rule.get("alert") or rule["record"]
        assert not deployment_merges(rule["expr"]), f"{name}: {deployment_merges(rule['expr'])}"
        for text in rule.get("annotations", {}).values():
            for query in annotation_queries(text):
                assert not deployment_merges(query), f"{name}'s annotation query {query}"


@pytest.mark.parametrize(
    "expr",
    [
        "sum(rate(parivision_shots_scored_total[2m])) > 0",
        "sum by (group) (parivision_consumer_lag) > 1000",
        'max(parivision_live_window_shots{model="champion", deployment="a"}) >= 500',
        "count(up) by (job)",
        "sum without (deployment, instance) (x)",
        "histogram_quantile(0.99, sum by (le) (rate(h_bucket[1m])))",
        "lag > 0 unless on () sum by (deployment) (rate(s[2m])) > 0",
        "a and on (group) b",
        "a / ignoring (deployment) b",
        "topk(1, x)",
        "a or vector(0)",
        "absent(up)",
        # One bad part among good ones is enough.
        "sum by (deployment) (a) and on (deployment) max(b)",
    ],
)
def test_an_expression_that_merges_deployments_is_caught(expr):
    assert deployment_merges(expr)


@pytest.mark.parametrize(
    "expr",
    [
        "sum by (deployment) (rate(x[1m]))",
        "sum(rate(x[1m])) by (deployment, job)",
        "histogram_quantile(0.5, sum by (deployment, le) (rate(h_bucket[1m])))",
        "sum without (instance) (x)",
        "a unless on (group, deployment) b",
        "a / ignoring (instance) group_left (job) b",
        "deriv(sum by (deployment, group) (lag)[10m:30s]) > 0",
        'max_over_time(x{model="sum(y)"}[5m]) and parivision:max',
        'up{job=~"stream|sink"} == 0',
    ],
)
def test_an_expression_that_keeps_deployments_apart_passes(expr):
    assert deployment_merges(expr) == []


def test_every_promtool_test_series_and_expected_alert_names_its_deployment():
    # As Prometheus scrapes them: every series has the target label, and every alert keeps it.
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for series in case["input_series"]:
                assert 'deployment="' in series["series"], f"{path.name}: {series['series']}"
            for check in case.get("alert_rule_test", []):
                for alert in check.get("exp_alerts", []):
                    assert alert["exp_labels"].get("deployment"), f"{path.name}: {check}"
            for check in case.get("promql_expr_test", []):
                for sample in check.get("exp_samples", []):
                    assert 'deployment="' in sample["labels"], f"{path.name}: {check['expr']}"


def test_every_alert_is_shown_firing_and_quiet_by_a_promtool_test():
    firing, quiet = set(), set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert not ALERTS - firing, f"never shown firing: {sorted(ALERTS - firing)}"
    assert not ALERTS - quiet, f"never shown quiet: {sorted(ALERTS - quiet)}"


def test_process_down_leaves_out_the_short_lived_replay():
    expr = alerts()["PariVisionProcessDown"]["expr"]
    jobs = set(re.search(r'job=~"([^"]+)"', expr).group(1).split("|"))
    assert jobs == {"stream", "sink", "api", "retrainer"}


def test_the_drift_alert_fires_within_half_a_minute_of_its_metric():
    # A scrape, an evaluation and `for`: an integration test waits for it.
    config = yaml.safe_load(COMPOSE_CONFIG.read_text())["global"]
    local = monitoring.prometheus_config(settings_in(Path("/nonexistent")))["global"]
    for interval in (config, local):
        seconds = [_seconds(interval[k]) for k in ("scrape_interval", "evaluation_interval")]
        wait = sum(seconds) + _seconds(alerts()["PariVisionDataDrift"].get("for", "0s"))
        assert wait <= 30, f"the drift alert may take {wait:.0f} s"


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration))


# --- promtool -------------------------------------------------------------------------------------


def test_the_compose_config_loads_every_rule_file():
    result = run(tool("promtool"), "check", "config", COMPOSE_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    # rule_files is relative, so promtool (like the container) finds them next to the config.
    assert f"SUCCESS: {len(RULES)} rule files found" in result.stdout + result.stderr


def test_the_compose_config_scrapes_every_job_and_sends_to_alertmanager():
    config = yaml.safe_load(COMPOSE_CONFIG.read_text())
    targets = {
        job["job_name"]: [t for s in job["static_configs"] for t in s["targets"]]
        for job in config["scrape_configs"]
    }
    assert targets == {
        "stream": ["stream:9101"],
        "sink": ["sink:9102"],
        "api": ["api:8080"],
        "replay": ["producer:9103"],
        "retrainer": ["retrainer:9104"],
    }
    # The compose stack is one deployment: its series carry the label every rule keeps.
    labels = [s.get("labels") for job in config["scrape_configs"] for s in job["static_configs"]]
    assert labels == [{"deployment": "default"}] * len(labels)
    assert config["rule_files"] == ["rules/*.yml"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"
    ]


def test_the_local_config_loads_the_same_rules_and_finds_the_processes_targets(tmp_path):
    settings = settings_in(tmp_path / "home")
    path = monitoring.write_prometheus_config(settings)

    result = run(tool("promtool"), "check", "config", path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULES)} rule files found" in result.stdout + result.stderr
    config = yaml.safe_load(path.read_text())
    found = {
        job["job_name"]: job["file_sd_configs"][0]["files"] for job in config["scrape_configs"]
    }
    home = settings.resolved_home()
    assert found == {
        job: [str(home / "prometheus" / "targets" / job / "*.json")]
        for job in ("stream", "sink", "api", "replay", "retrainer")
    }  # what each process writes when it serves its metrics (infra/targets.py)
    alertmanagers = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanagers == [f"127.0.0.1:{settings.alertmanager_port}"]


def test_a_test_config_scrapes_given_targets_every_second(tmp_path):
    settings = settings_in(tmp_path / "home")
    path = monitoring.write_prometheus_config(
        settings, {"stream": ["127.0.0.1:40001", "127.0.0.1:40002"]}, scrape_interval_s=1
    )

    result = run(tool("promtool"), "check", "config", path)

    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(path.read_text())
    assert config["global"]["scrape_interval"] == config["global"]["evaluation_interval"] == "1s"
    assert [job["job_name"] for job in config["scrape_configs"]] == ["stream"]


@pytest.mark.parametrize("path", RULES, ids=lambda p: p.name)
def test_rule_files_pass_promtool_check(path):
    result = run(tool("promtool"), "check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_pass_their_promtool_unit_tests():
    assert RULE_TESTS, "no promtool tests in infra/prometheus/tests"
    result = run(tool("promtool"), "test", "rules", *RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


# --- Alertmanager ---------------------------------------------------------------------------------


def test_the_committed_alertmanager_config_is_valid_and_holds_no_webhook_url():
    result = run(tool("amtool"), "check-config", ALERTMANAGER_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    urls = [w["url"] for r in config["receivers"] for w in r.get("webhook_configs", [])]
    assert urls and set(urls) == {monitoring.PLACEHOLDER_URL}
    assert f'placeholder="{monitoring.PLACEHOLDER_URL}"' in ENTRYPOINT.read_text()


def test_alerts_are_grouped_by_name_and_routed_by_severity():
    route = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())["route"]
    assert route["group_by"] == ["alertname"]
    routed = {m for sub in route["routes"] for m in sub["matchers"]}
    assert routed == {'severity="critical"', 'severity="warning"'}
    severities = {rule["labels"]["severity"] for rule in alerts().values()}
    assert {f'severity="{s}"' for s in severities} <= routed


def entrypoint(tmp_path: Path, url: str | None) -> tuple[subprocess.CompletedProcess, Path]:
    """Run entrypoint.sh with a stand-in for Alertmanager that prints its arguments."""
    rendered = tmp_path / "rendered" / "alertmanager.yml"
    rendered.parent.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ["PATH"],
        "ALERTMANAGER_TEMPLATE": str(ALERTMANAGER_CONFIG),
        "ALERTMANAGER_RENDERED_CONFIG": str(rendered),
        "ALERTMANAGER_BIN": shutil.which("echo") or "/bin/echo",
    }
    if url is not None:
        env["ALERTS_WEBHOOK_URL"] = url
    return run("sh", ENTRYPOINT, "--storage.path=/alertmanager", env=env), rendered


def test_the_entrypoint_puts_the_url_from_the_environment_in_a_private_copy(tmp_path):
    url = "https://hooks.example.com/services/T0/B1/s3cr3t?a=1&b=2|c"  # & and | stay literal

    result, rendered = entrypoint(tmp_path, url)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [f"--config.file={rendered}", "--storage.path=/alertmanager"]
    assert url not in result.stdout + result.stderr  # a token in the URL is never printed
    assert stat.S_IMODE(rendered.stat().st_mode) == 0o600
    config = yaml.safe_load(rendered.read_text())
    assert [w["url"] for w in config["receivers"][0]["webhook_configs"]] == [url]
    check = run(tool("amtool"), "check-config", rendered)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_entrypoint_defaults_to_the_compose_receiver(tmp_path):
    result, rendered = entrypoint(tmp_path, None)
    assert result.returncode == 0, result.stderr
    assert '"http://alerts-webhook:9105/alerts"' in rendered.read_text()


@pytest.mark.parametrize("url", ["hooks.example.com/x", 'http://x/"y', "http://x/a b"])
def test_the_entrypoint_refuses_a_url_that_would_break_the_config(tmp_path, url):
    result, rendered = entrypoint(tmp_path, url)
    assert result.returncode == 64 and "ALERTS_WEBHOOK_URL" in result.stderr
    assert url not in result.stderr and not rendered.exists()


def test_the_local_alertmanager_config_is_valid_and_private(tmp_path):
    settings = settings_in(tmp_path / "home", alerts_webhook_port=19105)
    path = monitoring.write_alertmanager_config(settings, group_wait_s=1)

    result = run(tool("amtool"), "check-config", path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = yaml.safe_load(path.read_text())
    assert config["receivers"][0]["webhook_configs"][0]["url"] == "http://127.0.0.1:19105/alerts"
    waits = [config["route"]["group_wait"]] + [r["group_wait"] for r in config["route"]["routes"]]
    assert waits == ["1s", "1s", "1s"]


def test_the_local_alertmanager_sends_to_the_configured_webhook(tmp_path):
    url = "https://hooks.example.com/services/s3cr3t"
    settings = Settings(_env_file=None, home=tmp_path / "home", alerts_webhook_url=url)
    config = monitoring.alertmanager_config(settings)
    assert config["receivers"][0]["webhook_configs"][0]["url"] == url
    assert monitoring.PLACEHOLDER_URL not in yaml.safe_dump(config)
