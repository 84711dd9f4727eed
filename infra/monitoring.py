"""The local Prometheus and Alertmanager: Debian's ``prometheus`` and ``prometheus-alertmanager``.

``parivision up`` runs them on loopback when their packages are installed (and says which to
install when they are not), with their configs rendered under ``{home}/prometheus`` and
``{home}/alertmanager`` from the committed ones: the same rules (``infra/prometheus/rules``, read
in place), the targets the processes register (``infra/targets.py``), the webhook from
``PARIVISION_ALERTS_WEBHOOK_URL`` or else the local ``parivision alerts-webhook``.  Logs go to
``{home}/logs``, pids to ``{home}/run``, as for Kafka and MongoDB.

Tests point Prometheus at processes of their own and make it quick::

    start_alertmanager(settings, group_wait_s=1)
    start_prometheus(settings, {"stream": ["127.0.0.1:40123"]}, scrape_interval_s=1)
    ...
    stop_prometheus(settings), stop_alertmanager(settings)
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from infra.process import LocalProcess, ServiceError, pid_alive, port_free, who_listens
from infra.targets import targets_dir
from parivision.metrics import API, JOBS
from parivision.settings import Settings

__all__ = [
    "ALERTMANAGER",
    "PROMETHEUS",
    "Monitor",
    "alertmanager_config",
    "prometheus_config",
    "start_alertmanager",
    "start_prometheus",
    "stop_alertmanager",
    "stop_prometheus",
    "webhook_url",
    "write_alertmanager_config",
    "write_prometheus_config",
]

RULES_DIR = Path(__file__).with_name("prometheus") / "rules"
ALERTMANAGER_TEMPLATE = Path(__file__).with_name("alertmanager") / "alertmanager.yml"
# The committed alertmanager.yml's URL, replaced when rendered (here, or by entrypoint.sh).
PLACEHOLDER_URL = "http://alerts-webhook-url.invalid/set-ALERTS_WEBHOOK_URL"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


def _duration(seconds: float) -> str:
    """Prometheus's duration syntax: ``5s``, ``1500ms``."""
    ms = round(seconds * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def prometheus_config(
    settings: Settings,
    targets: Mapping[str, Sequence[str]] | None = None,
    *,
    scrape_interval_s: float = 5.0,
    evaluation_interval_s: float | None = None,
) -> dict:
    """The local Prometheus config: one job per process kind, whose targets are what the
    processes of every deployment in the home register (``infra/targets.py``; Prometheus
    follows the files as they come and go), the committed rules, the local Alertmanager.
    ``targets`` (job -> ``host:port`` list) scrapes those instead, labelled with the settings'
    deployment.

    Rules are evaluated as often as targets are scraped unless ``evaluation_interval_s`` says
    otherwise, so an alert without ``for`` fires within two intervals of its metric.
    """
    interval = _duration(scrape_interval_s)
    jobs = []
    for job in JOBS if targets is None else targets:
        config: dict = {"job_name": job}
        if targets is None:
            found = targets_dir(settings) / job / "*.json"
            config["file_sd_configs"] = [{"files": [str(found)], "refresh_interval": "5s"}]
        else:
            labels = {"deployment": settings.deployment_name()}
            config["static_configs"] = [{"targets": list(targets[job]), "labels": labels}]
        if job == API:
            config["metrics_path"] = "/metrics"
        jobs.append(config)
    return {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": _duration(min(scrape_interval_s, 4.0)),
            "evaluation_interval": _duration(evaluation_interval_s or scrape_interval_s),
        },
        "rule_files": [str(RULES_DIR.resolve() / "*.yml")],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"127.0.0.1:{settings.alertmanager_port}"]}]}
            ]
        },
        "scrape_configs": jobs,
    }


def webhook_url(settings: Settings) -> str:
    """Where the local Alertmanager sends alerts (a secret when it is set: never print it)."""
    if settings.alerts_webhook_url is not None:
        return settings.alerts_webhook_url.get_secret_value()
    return f"http://127.0.0.1:{settings.alerts_webhook_port}/alerts"


def alertmanager_config(settings: Settings, *, group_wait_s: float | None = None) -> dict:
    """The committed Alertmanager config with its webhook URL filled in; ``group_wait_s``
    replaces every route's wait before a new group's first notification (tests: 1 s)."""
    config = yaml.safe_load(ALERTMANAGER_TEMPLATE.read_text())
    url = webhook_url(settings)
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = url
    if group_wait_s is not None:
        routes = [config["route"]]
        while routes:
            route = routes.pop()
            route["group_wait"] = _duration(group_wait_s)
            routes.extend(route.get("routes", []))
    return config


def _write_private(path: Path, config: dict, header: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # Owner-only from the start: the Alertmanager config may hold the webhook's token.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(header + yaml.safe_dump(config, sort_keys=False))
    tmp.replace(path)
    return path


def write_prometheus_config(
    settings: Settings, targets: Mapping[str, Sequence[str]] | None = None, **intervals: float
) -> Path:
    """Render :func:`prometheus_config` to ``{home}/prometheus/prometheus.yml``."""
    return _write_private(
        PROMETHEUS.config_file(settings),
        prometheus_config(settings, targets, **intervals),
        "# Written by parivision (infra/monitoring.py) on every start; edit the source instead.\n",
    )


def write_alertmanager_config(settings: Settings, *, group_wait_s: float | None = None) -> Path:
    """Render :func:`alertmanager_config` to ``{home}/alertmanager/alertmanager.yml`` (mode 600)."""
    return _write_private(
        ALERTMANAGER.config_file(settings),
        alertmanager_config(settings, group_wait_s=group_wait_s),
        f"# Written by parivision (infra/monitoring.py) from {ALERTMANAGER_TEMPLATE}.\n",
    )


def probe(url: str, timeout: float = 5.0) -> str | None:
    """None if ``url`` (a ``/-/ready`` endpoint) answers 200, else what went wrong."""
    import httpx

    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as error:
        return f"{url} does not answer ({error.__class__.__name__}: {error})"
    if response.status_code != 200:
        return f"{url} answers {response.status_code} {response.text.strip()[:200]}"
    return None


@dataclass(frozen=True)
class Monitor:
    """Prometheus or Alertmanager as ``infra/services.py`` drives it (like a launcher module)."""

    name: str
    service: str
    package: str  # the Debian package with the binary
    executables: tuple[str, ...]  # Debian's name first, then upstream's
    port_setting: str
    launch: Callable[[Settings], int]  # start with the default configuration, return the pid

    def port(self, settings: Settings) -> int:
        return getattr(settings, self.port_setting)

    def directory(self, settings: Settings) -> Path:
        return settings.resolved_home() / self.name

    def config_file(self, settings: Settings) -> Path:
        return self.directory(settings) / f"{self.name}.yml"

    def local_address(self, settings: Settings) -> str:
        return f"http://127.0.0.1:{self.port(settings)}"

    def local_process(self, settings: Settings) -> LocalProcess:
        home = settings.resolved_home()
        return LocalProcess(
            name=self.name,
            pid_file=home / "run" / f"{self.name}.pid",
            log_file=home / "logs" / f"{self.name}.log",
            marker=str(self.config_file(settings)),
        )

    def executable(self) -> str | None:
        return next(filter(None, map(shutil.which, self.executables)), None)

    def unavailable(self, settings: Settings) -> str | None:
        """Why ``up`` does not run it (turned off, not installed), or None."""
        if not self.port(settings):
            return f"off (PARIVISION_{self.port_setting.upper()}=0)"
        if self.executable() is None:
            return (
                f"not installed: `sudo apt-get install {self.package}` (Debian or Ubuntu) gives "
                f"`{self.executables[0]}`; carrying on without it"
            )
        return None

    def preflight(self, settings: Settings) -> None:
        """Raise if the port is taken by a process that is not ours."""
        port = self.port(settings)
        if not port_free(port):
            raise ServiceError(
                self.service,
                self.local_address(settings),
                f"the port is already in use by {who_listens(port) or 'another process'}",
                f"stop that process, or choose a free port with "
                f"PARIVISION_{self.port_setting.upper()} (0 turns it off)",
            )

    def probe_local(self, settings: Settings, timeout: float = 5.0) -> str | None:
        return probe(f"{self.local_address(settings)}/-/ready", timeout)

    def start(self, settings: Settings) -> int:
        """Start it with the default configuration (what ``parivision up`` runs)."""
        return self.launch(settings)

    def stop(self, settings: Settings) -> bool:
        return self.local_process(settings).stop(timeout=STOP_TIMEOUT_S)

    def spawn(self, settings: Settings, arguments: list[str]) -> int:
        """Run the binary with ``arguments``, wait until ``/-/ready``; raise with its log if not."""
        address = self.local_address(settings)
        executable = self.executable()
        if executable is None:
            raise ServiceError(
                self.service,
                address,
                f"`{self.executables[0]}` is not installed",
                f"sudo apt-get install {self.package}",
            )
        # One per home: its pid file names one process, and a second started beside the first
        # would leave the first where `parivision down` cannot find it.
        self.stop(settings)
        self.preflight(settings)
        proc = self.local_process(settings)
        since = proc.log_offset()
        pid = proc.spawn([executable, *arguments], cwd=self.directory(settings))
        problem = _wait_ready(f"{address}/-/ready", READY_TIMEOUT_S, lambda: pid_alive(pid))
        if problem is not None:
            tail = proc.log_tail(since)
            proc.stop(timeout=5)
            raise ServiceError(
                self.service,
                address,
                f"the local {self.service} (pid {pid}) did not become ready: {problem}.\n"
                f"  last lines of {proc.log_file}:\n{tail}",
                "read the log above; `parivision down` and `parivision up` retries",
            )
        return pid


def _wait_ready(url: str, timeout: float, alive: Callable[[], bool]) -> str | None:
    deadline = time.monotonic() + timeout
    problem = "not checked"
    while time.monotonic() < deadline:
        if not alive():
            return "the process exited"
        problem = probe(url, timeout=2.0)
        if problem is None:
            return None
        time.sleep(0.1)
    return f"{problem} after {timeout:.0f} s"


def start_prometheus(
    settings: Settings,
    targets: Mapping[str, Sequence[str]] | None = None,
    *,
    scrape_interval_s: float = 5.0,
    evaluation_interval_s: float | None = None,
) -> int:
    """Start the local Prometheus scraping ``targets`` (job -> ``host:port`` list; default: what
    the home's processes register, :mod:`infra.targets`); return its pid once it is ready.

    Raises:
        ServiceError: not installed, its port is taken, or it did not become ready (with its log).
    """
    config = write_prometheus_config(
        settings,
        targets,
        scrape_interval_s=scrape_interval_s,
        evaluation_interval_s=evaluation_interval_s or scrape_interval_s,
    )
    data = PROMETHEUS.directory(settings) / "data"
    data.mkdir(parents=True, exist_ok=True)
    return PROMETHEUS.spawn(
        settings,
        [
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{settings.prometheus_port}",
            "--web.enable-lifecycle",  # POST /-/reload picks up a changed config or rules
        ],
    )


def start_alertmanager(settings: Settings, *, group_wait_s: float | None = None) -> int:
    """Start the local Alertmanager (one node, no cluster); return its pid once it is ready.

    Raises:
        ServiceError: not installed, its port is taken, or it did not become ready (with its log).
    """
    config = write_alertmanager_config(settings, group_wait_s=group_wait_s)
    data = ALERTMANAGER.directory(settings) / "data"
    data.mkdir(parents=True, exist_ok=True)
    return ALERTMANAGER.spawn(
        settings,
        [
            f"--config.file={config}",
            f"--storage.path={data}",
            f"--web.listen-address=127.0.0.1:{settings.alertmanager_port}",
            "--cluster.listen-address=",  # one node: no gossip port to clash with
        ],
    )


def stop_prometheus(settings: Settings) -> bool:
    """Stop the local Prometheus if it runs; True if it did."""
    return PROMETHEUS.stop(settings)


def stop_alertmanager(settings: Settings) -> bool:
    """Stop the local Alertmanager if it runs; True if it did."""
    return ALERTMANAGER.stop(settings)


PROMETHEUS = Monitor(
    "prometheus", "Prometheus", "prometheus", ("prometheus",), "prometheus_port", start_prometheus
)
ALERTMANAGER = Monitor(
    "alertmanager",
    "Alertmanager",
    "prometheus-alertmanager",
    ("prometheus-alertmanager", "alertmanager"),
    "alertmanager_port",
    start_alertmanager,
)
