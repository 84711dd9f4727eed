"""Bring the real services up and down: Kafka (one broker, or a cluster of
``settings.kafka_brokers``), MongoDB, the MLflow store, and on request the local Prometheus and
Alertmanager (``up(settings, monitoring=True)``, as ``parivision up`` asks).

A service whose address is set (``PARIVISION_KAFKA_BOOTSTRAP``, ``PARIVISION_MONGODB_URI``,
``PARIVISION_MLFLOW_TRACKING_URI``) is external: it is only checked.  Any other is run locally
under ``settings.home`` and found again through its pid file, so :func:`up` can be called any
number of times and :func:`down` stops exactly what it started.

Example::

    endpoints = up(settings)          # starts or reuses; raises ServiceError with what to do
    ...                               # connect to endpoints.kafka, .mongodb, .mlflow
    down(settings)                    # ["kafka", "mongodb"]

Prometheus and Alertmanager are optional: when their Debian packages are missing, their port is
0 or taken, or they fail to start, ``up`` says why (``Endpoints.skipped``) and carries on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

from infra import kafka, mlflow_store, mongodb
from infra.monitoring import ALERTMANAGER, PROMETHEUS, Monitor
from infra.process import ServiceError, locked, redact_uri
from parivision.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Endpoints", "ServiceError", "ServiceStatus", "down", "status", "up"]

EXTERNAL_TIMEOUT_S = 10.0
# The services that run as processes, in start order (the quick one first) and their launchers.
PROCESSES: dict[str, ModuleType] = {"mongodb": mongodb, "kafka": kafka}
# Optional, in start order: Prometheus finds its Alertmanager at once.
MONITORING: dict[str, Monitor] = {"alertmanager": ALERTMANAGER, "prometheus": PROMETHEUS}
VARIABLES = {
    "kafka": "PARIVISION_KAFKA_BOOTSTRAP",
    "mongodb": "PARIVISION_MONGODB_URI",
    "mlflow": "PARIVISION_MLFLOW_TRACKING_URI",
}


@dataclass
class Endpoints:
    """Where the services are, and what :func:`up` did to each (by name: kafka, mongodb, mlflow)."""

    kafka: str
    mongodb: str = field(repr=False)  # may hold a password
    mlflow: str
    started: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    # Prometheus and Alertmanager when asked for: name -> URL of each that runs, or why not.
    monitoring: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def as_env(self) -> dict[str, str]:
        """The ``PARIVISION_*`` variables that point another process at these services."""
        return {
            VARIABLES["kafka"]: self.kafka,
            VARIABLES["mongodb"]: self.mongodb,
            VARIABLES["mlflow"]: self.mlflow,
        }


@dataclass
class ServiceStatus:
    """One service as :func:`status` found it."""

    name: str
    address: str  # passwords redacted
    mode: str  # "local" or "external"
    # local: running, stopped, unhealthy; external: reachable, unreachable;
    # the local MLflow store: ready, absent
    state: str
    pid: int | None = None
    detail: str = ""


def _external(settings: Settings) -> dict[str, str]:
    """Name -> printable address of every service whose address is given."""
    given = {}
    if settings.kafka_bootstrap:
        given["kafka"] = settings.kafka_bootstrap
    if settings.mongodb_uri:
        given["mongodb"] = redact_uri(settings.mongodb())
    if settings.mlflow_tracking_uri:
        given["mlflow"] = settings.mlflow_tracking_uri
    return given


def _probe_external(settings: Settings, name: str, timeout: float, prepare: bool) -> str | None:
    if name == "kafka":
        return kafka.probe(settings.kafka(), timeout)
    if name == "mongodb":
        return mongodb.probe(settings.mongodb(), timeout)
    # A given sqlite:/// store is still a local file: `up` creates it the way it does its own.
    uri = mlflow_store.prepare_local_store(settings) if prepare else settings.mlflow()
    return mlflow_store.probe(uri, timeout)


def _say(console: Console | None, name: str, what: str, address: str, extra: str = "") -> None:
    if console is not None:
        console.print(f"  [bold]{name:<12}[/bold] {what:<9} {address}  [dim]{extra}[/dim]")


def up(
    settings: Settings, console: Console | None = None, *, monitoring: bool = False
) -> Endpoints:
    """Make every service answer, starting the local ones that are not running yet.

    Args:
        settings: where the services are; an empty address means "run it locally".
        console: a rich console to report progress on, or None for silence.
        monitoring: also run the local Prometheus and Alertmanager, if they can run.

    Returns:
        The addresses to connect to and, by service name, what was started, reused or external.

    Raises:
        ServiceError: a service cannot be reached or started; the message says which, where
            and what to do.  Services this call started are stopped again before it raises.
    """
    endpoints = Endpoints(
        kafka=settings.kafka(), mongodb=settings.mongodb(), mlflow=settings.mlflow()
    )
    external = _external(settings)
    with locked(settings.resolved_home() / "run" / "services.lock"):
        # External services first: a wrong address fails in seconds, before anything starts.
        for name, address in external.items():
            timeout = EXTERNAL_TIMEOUT_S if name == "kafka" else EXTERNAL_TIMEOUT_S / 2
            problem = _probe_external(settings, name, timeout, prepare=True)
            if problem is not None:
                variable = VARIABLES[name]
                raise ServiceError(
                    _service_name(name),
                    address,
                    f"the service given by {variable} is not reachable: {problem}",
                    f"start it or fix {variable}; or unset {variable} so that `parivision up` "
                    "runs a local one",
                )
            endpoints.external.append(name)
            _say(console, name, "external", address, "reachable")

        local = {n: m for n, m in PROCESSES.items() if n not in external}
        pids = {name: _running_pid(settings, name, launcher) for name, launcher in local.items()}
        # Every port is checked before anything starts, so a clash never leaves half a stack.
        for name, launcher in local.items():
            if pids[name] is None:
                launcher.preflight(settings)
        try:
            for name, launcher in local.items():
                _up_process(settings, console, endpoints, name, launcher, pids[name])
            if "mlflow" not in external:
                _up_mlflow_store(settings, console, endpoints)
            if monitoring:
                _up_monitoring(settings, console, endpoints)
        except BaseException:
            _stop(settings, [n for n in endpoints.started if n in PROCESSES or n in MONITORING])
            raise
    return endpoints


def _running_pid(settings: Settings, name: str, launcher: ModuleType) -> int | None:
    if name == "kafka":  # a cluster runs when all its nodes do; another size is refused here
        return kafka.running_pid(settings)
    return launcher.local_process(settings).read_pid()


def _pids(settings: Settings, name: str, pid: int) -> str:
    if name == "kafka" and settings.kafka_brokers > 1:
        return "pids " + ", ".join(str(p) for _node, p in kafka.running_nodes(settings))
    return f"pid {pid}"


def _up_process(
    settings: Settings,
    console: Console | None,
    endpoints: Endpoints,
    name: str,
    launcher: ModuleType,
    pid: int | None,
) -> None:
    address = launcher.local_address(settings)
    if pid is None:
        t0 = time.monotonic()
        pid = launcher.start(settings, console)
        endpoints.started.append(name)
        elapsed = f"{time.monotonic() - t0:.1f} s"
        _say(console, name, "started", address, f"{_pids(settings, name, pid)}, {elapsed}")
        return
    problem = launcher.probe_local(settings, timeout=10.0)
    if problem is not None:
        raise ServiceError(
            launcher.SERVICE,
            address,
            f"a local {launcher.SERVICE} (pid {pid}) runs but does not answer: {problem}",
            "run `parivision down` and then `parivision up`; this also happens when its port "
            "setting changed since it was started",
        )
    endpoints.reused.append(name)
    _say(console, name, "running", address, _pids(settings, name, pid))


def _up_mlflow_store(settings: Settings, console: Console | None, endpoints: Endpoints) -> None:
    existed = (settings.resolved_home() / "mlflow" / "mlflow.db").is_file()
    mlflow_store.prepare_local_store(settings)
    mlflow_store.ensure_experiment(settings)
    (endpoints.reused if existed else endpoints.started).append("mlflow")
    _say(
        console,
        "mlflow",
        "ready",
        endpoints.mlflow,
        f"artifacts in {settings.mlflow_artifact_root()}",
    )


def _up_monitoring(settings: Settings, console: Console | None, endpoints: Endpoints) -> None:
    # Monitoring watches the pipeline; its absence must never keep the pipeline from running.
    for name, monitor in MONITORING.items():
        why = monitor.unavailable(settings)  # turned off, or not installed
        if why is None:
            try:
                why = _up_monitor(settings, console, endpoints, name, monitor)
            except ServiceError as error:
                why = f"{error}\n  carrying on without it"
        if why is None:
            endpoints.monitoring[name] = monitor.local_address(settings)
        else:
            endpoints.skipped[name] = why
            if console is not None:
                console.print(f"  [bold]{name:<12}[/bold] [yellow]skipped[/yellow]   {why}")


def _up_monitor(
    settings: Settings, console: Console | None, endpoints: Endpoints, name: str, monitor: Monitor
) -> str | None:
    """Start or reuse one of Prometheus and Alertmanager: None once it runs, else why not."""
    address = monitor.local_address(settings)
    pid = monitor.local_process(settings).read_pid()
    if pid is None:
        t0 = time.monotonic()
        pid = monitor.start(settings)
        endpoints.started.append(name)
        _say(console, name, "started", address, f"pid {pid}, {time.monotonic() - t0:.1f} s")
        return None
    problem = monitor.probe_local(settings, timeout=5.0)
    if problem is not None:
        return (
            f"a local {monitor.service} (pid {pid}) runs but does not answer: {problem}; "
            "`parivision down` and `parivision up` restarts it"
        )
    endpoints.reused.append(name)
    _say(console, name, "running", address, f"pid {pid}")
    return None


def _service_name(name: str) -> str:
    return mlflow_store.SERVICE if name == "mlflow" else PROCESSES[name].SERVICE


def _stop(settings: Settings, names: list[str]) -> list[str]:
    # Kafka first: while it runs, its clients (the pipeline) may still be writing to MongoDB.
    # Prometheus before that, so it does not alert on the services going away.
    launchers = {**MONITORING, **PROCESSES}
    order = [n for n in ("prometheus", "alertmanager", "kafka", "mongodb") if n in names]
    return [name for name in order if launchers[name].stop(settings)]


def down(settings: Settings) -> list[str]:
    """Stop the local services started under ``settings.home``; return the names stopped.

    Every local Kafka node under the home stops, whatever ``settings.kafka_brokers`` says.
    External services are never touched; the local MLflow store is a file and stays as it is.
    """
    with locked(settings.resolved_home() / "run" / "services.lock"):
        return _stop(settings, [*MONITORING, *PROCESSES])


def status(settings: Settings, *, monitoring: bool = False) -> list[ServiceStatus]:
    """How each service is doing now, without starting or stopping anything (with
    ``monitoring``, Prometheus and Alertmanager too)."""
    external = _external(settings)
    result = []
    for name in ("kafka", "mongodb", "mlflow"):
        if name in external:
            problem = _probe_external(settings, name, timeout=3.0, prepare=False)
            state = "reachable" if problem is None else "unreachable"
            result.append(
                ServiceStatus(name, external[name], "external", state, detail=problem or "")
            )
        elif name == "mlflow":
            db = settings.resolved_home() / "mlflow" / "mlflow.db"
            state = "ready" if db.is_file() else "absent"
            result.append(ServiceStatus(name, settings.local_mlflow_tracking_uri(), "local", state))
        elif name == "kafka":
            result.extend(_kafka_status(settings))
        else:
            launcher = PROCESSES[name]
            address = launcher.local_address(settings)
            pid = launcher.local_process(settings).read_pid()
            if pid is None:
                result.append(ServiceStatus(name, address, "local", "stopped"))
                continue
            problem = launcher.probe_local(settings, timeout=3.0)
            state = "running" if problem is None else "unhealthy"
            result.append(ServiceStatus(name, address, "local", state, pid, problem or ""))
    if monitoring:
        result.extend(_monitoring_status(settings))
    return result


def _kafka_status(settings: Settings) -> list[ServiceStatus]:
    """One line per node (``kafka`` for a single broker) of the local Kafka that runs, or of
    the one the settings ask for when none does."""
    running = kafka.running_nodes(settings)
    sizes = {node.brokers for node, _pid in running}
    size = settings.kafka_brokers
    if sizes and size not in sizes:
        size = max(sizes)
    pids = {node.node_id: pid for node, pid in running if node.brokers == size}
    note = ""
    if size != settings.kafka_brokers:
        note = f"other commands need PARIVISION_KAFKA_BROKERS={size}"
    result = []
    for node in kafka.nodes(settings.model_copy(update={"kafka_brokers": size})):
        pid = pids.get(node.node_id)
        if pid is None:
            result.append(ServiceStatus(node.name, node.address, "local", "stopped", detail=note))
            continue
        problem = kafka.probe(node.address, timeout=3.0, node_ids=[node.node_id])
        state = "running" if problem is None else "unhealthy"
        detail = "; ".join(x for x in (problem, note) if x)
        result.append(ServiceStatus(node.name, node.address, "local", state, pid, detail))
    return result


def _monitoring_status(settings: Settings) -> list[ServiceStatus]:
    result = []
    for name in ("prometheus", "alertmanager"):
        monitor = MONITORING[name]
        address = monitor.local_address(settings)
        pid = monitor.local_process(settings).read_pid()
        why = monitor.unavailable(settings)
        if pid is None:
            state = "stopped"
            if why is not None:
                state = "off" if not monitor.port(settings) else "not installed"
            result.append(ServiceStatus(name, address, "local", state, detail=why or ""))
            continue
        problem = monitor.probe_local(settings, timeout=3.0)
        state = "running" if problem is None else "unhealthy"
        result.append(ServiceStatus(name, address, "local", state, pid, problem or ""))
    return result
