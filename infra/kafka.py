"""The local Apache Kafka: ``settings.kafka_brokers`` KRaft nodes (each a broker and a controller)
on loopback, run as detached ``java`` processes from jars fetched once (infra/kafka_jars.py).

Where each node keeps its state, pid and log, and what it is told, is in infra/kafka_nodes.py:
one broker lives in ``{home}/kafka`` as it always did; a cluster of N in
``{home}/kafka-N-brokers/node-I``, with ``run/kafka-I.pid`` and ``logs/kafka-I.log``.

Example::

    start(settings)                       # every node, once the cluster lists them all
    pid = node_process(settings, 2).read_pid()
    os.kill(pid, signal.SIGKILL)          # node 2 crashes ...
    start_node(settings, 2)               # ... and comes back on its own storage
    stop(settings)                        # every node under the home, whatever its size
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING

from infra.kafka_jars import SERVICE, ensure_jars, jar_dir
from infra.kafka_nodes import (
    KafkaNode,
    cluster_dir,
    every_size,
    java_argv,
    node,
    nodes,
    prepare,
    server_properties,
)
from infra.process import (
    LocalProcess,
    ServiceError,
    cmdline_has,
    pid_alive,
    port_free,
    split_host_port,
    tcp_reachable,
    terminate,
    who_listens,
)
from parivision.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "SERVICE",
    "KafkaNode",
    "ensure_jars",
    "jar_dir",
    "kafka_dir",
    "local_process",
    "node_process",
    "nodes",
    "preflight",
    "probe",
    "probe_local",
    "running_nodes",
    "running_pid",
    "server_properties",
    "start",
    "start_node",
    "stop",
    "wait_ready",
]

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


def _quiet_logger() -> logging.Logger:
    # librdkafka reports every refused connection; keep that out of the user's terminal.
    logger = logging.getLogger("parivision.infra.kafka.client")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    return logger


def kafka_dir(settings: Settings) -> Path:
    """Node 1's folder: ``{home}/kafka`` for a single broker."""
    return node(settings, 1).directory


def node_process(settings: Settings, node_id: int) -> LocalProcess:
    """The pid and log files of node ``node_id`` (1 for a single broker)."""
    return node(settings, node_id).process


def local_process(settings: Settings) -> LocalProcess:
    """The single broker's pid and log files (node 1's, for a cluster)."""
    return node_process(settings, 1)


def local_address(settings: Settings) -> str:
    return settings.local_kafka_bootstrap()


def running_nodes(settings: Settings) -> list[tuple[KafkaNode, int]]:
    """Every local Kafka node that runs under the home, with its pid, whatever the size of its
    cluster (``settings.kafka_brokers`` is not asked); pid files of processes gone are removed."""
    candidates: dict[Path, list[KafkaNode]] = {}
    for candidate in every_size(settings):
        candidates.setdefault(candidate.process.pid_file, []).append(candidate)
    found = []
    for pid_file, options in candidates.items():
        try:
            pid = int(pid_file.read_text().strip())
        except FileNotFoundError:
            continue
        except ValueError:
            pid_file.unlink(missing_ok=True)
            continue
        alive = pid_alive(pid)
        match = next((n for n in options if alive and cmdline_has(pid, n.process.marker)), None)
        if match is None:  # the node is gone, or its pid now belongs to another process
            pid_file.unlink(missing_ok=True)
        else:
            found.append((match, pid))
    return sorted(found, key=lambda item: (item[0].brokers, item[0].node_id))


def _refuse_other_size(settings: Settings) -> None:
    """Raise if a local Kafka of another size than ``settings.kafka_brokers`` runs: its pid files
    and ports overlap this one's."""
    others = [(n, pid) for n, pid in running_nodes(settings) if n.brokers != settings.kafka_brokers]
    if not others:
        return

    def size(brokers: int) -> str:
        return "a single broker" if brokers == 1 else f"a cluster of {brokers} brokers"

    running = others[0][0].brokers
    pids = ", ".join(str(pid) for n, pid in others if n.brokers == running)
    raise ServiceError(
        SERVICE,
        settings.local_kafka_bootstrap(),
        f"{size(running)} already runs under {settings.resolved_home()} (pid {pids}), and this "
        f"command wants {size(settings.kafka_brokers)} (PARIVISION_KAFKA_BROKERS="
        f"{settings.kafka_brokers})",
        f"use the running one with `export PARIVISION_KAFKA_BROKERS={running}`; or stop it with "
        f"`parivision down` first, then `parivision up --brokers {settings.kafka_brokers}`",
    )


def running_pid(settings: Settings) -> int | None:
    """Node 1's pid if every node of the local Kafka runs, else None.

    Raises:
        ServiceError: a local Kafka of another size runs under the home.
    """
    _refuse_other_size(settings)
    pids = [this.process.read_pid() for this in nodes(settings)]
    return pids[0] if all(pid is not None for pid in pids) else None


def preflight(settings: Settings, node_ids: Collection[int] | None = None) -> None:
    """Raise if a local Kafka of another size runs, or a port of a node (of ``node_ids``, or
    any) that is not running is taken by another process; the error names the port's knob."""
    _refuse_other_size(settings)
    for this in nodes(settings):
        if node_ids is not None and this.node_id not in node_ids:
            continue
        if this.process.read_pid() is not None:
            continue
        for port, what, knob in (
            (this.port, "client", "PARIVISION_KAFKA_PORT"),
            (this.controller_port, "controller", "PARIVISION_KAFKA_CONTROLLER_PORT"),
        ):
            if port_free(port):
                continue
            owner = who_listens(port)
            whose, move = "", f"choose a free port with {knob}"
            if this.brokers > 1:
                whose = f" of node {this.node_id} ({this.name})"
            if this.node_id > 1:
                offset = 100 * (this.node_id - 1)
                move = (
                    f"move the cluster's ports with {knob} (node {this.node_id} uses it + {offset})"
                )
            raise ServiceError(
                SERVICE,
                settings.local_kafka_bootstrap(),
                f"the {what} port 127.0.0.1:{port}{whose} is already in use by "
                f"{owner or 'another process'}, not by a broker PariVision started under "
                f"{settings.resolved_home()}",
                f"stop that process, or {move}; if it is a Kafka broker you want to use, set "
                "PARIVISION_KAFKA_BOOTSTRAP to its address instead",
            )


def _java(address: str) -> str:
    java = shutil.which("java")
    if java is None:
        raise ServiceError(
            SERVICE,
            address,
            "Java is not installed (`java` is not on PATH)",
            "install Java 17 or newer (Debian/Ubuntu: apt-get install "
            "openjdk-17-jre), or set PARIVISION_KAFKA_BOOTSTRAP to a running broker",
        )
    return java


def start(settings: Settings, console: Console | None = None) -> int:
    """Start every node of the local Kafka that is not running, wait until the cluster's
    metadata lists them all, and return node 1's pid."""
    return _start(settings, nodes(settings), console)[1]


def start_node(settings: Settings, node_id: int, console: Console | None = None) -> int:
    """Start node ``node_id`` unless it runs, wait until the cluster lists it; return its pid."""
    return _start(settings, [node(settings, node_id)], console)[node_id]


def _start(settings: Settings, wanted: list[KafkaNode], console: Console | None) -> dict[int, int]:
    address = settings.local_kafka_bootstrap()
    preflight(settings, [n.node_id for n in wanted])
    java = _java(address)
    libs = ensure_jars(settings, console)
    pids = {n.node_id: pid for n in wanted if (pid := n.process.read_pid()) is not None}
    todo = [n for n in wanted if n.node_id not in pids]
    prepare(settings, java, libs, todo)
    since = {n.node_id: n.process.log_offset() for n in todo}
    # Every node first, then the wait: a KRaft quorum needs most of its voters up to elect a
    # controller, so no node is ready before the others run.
    spawned = {
        n.node_id: n.process.spawn(java_argv(settings, java, libs, n), cwd=n.directory)
        for n in todo
    }
    problem = wait_ready(
        address,
        READY_TIMEOUT_S,
        alive=lambda: all(pid_alive(pid) for pid in spawned.values()),
        node_ids=[n.node_id for n in wanted],
    )
    if problem is not None:
        lines = 25 if len(todo) == 1 else 12
        tails = "".join(
            f"\n  last lines of {n.process.log_file}:\n"
            + n.process.log_tail(since[n.node_id], lines)
            for n in todo
        )
        _terminate([(n, spawned[n.node_id]) for n in todo], timeout=10)
        which = (
            "the local broker"
            if settings.kafka_brokers == 1
            else "node " + ", ".join(str(n.node_id) for n in todo)
        )
        started = ", ".join(str(pid) for pid in spawned.values())
        raise ServiceError(
            SERVICE,
            address,
            f"{which} (pid {started}) did not become ready: {problem}.{tails}",
            "read the log above; `parivision down` and `parivision up` retries; deleting "
            f"{cluster_dir(settings)} starts from empty storage",
        )
    return {**pids, **spawned}


def _terminate(found: list[tuple[KafkaNode, int]], timeout: float) -> None:
    # Every node is told at once: stopped one by one, the last ones would wait in vain for a
    # controller quorum to approve their controlled shutdown.
    for _node, pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for this, pid in found:
        terminate(pid, timeout)
        this.process.pid_file.unlink(missing_ok=True)


def stop(settings: Settings) -> bool:
    """Stop every local Kafka node under the home, whatever the size of its cluster (so a
    cluster stops even when PARIVISION_KAFKA_BROKERS is unset); True if one ran."""
    found = running_nodes(settings)
    _terminate(found, STOP_TIMEOUT_S)
    return bool(found)


def probe_local(settings: Settings, timeout: float = 5.0) -> str | None:
    """None if the local Kafka answers and its metadata lists every node, else what is wrong."""
    ids = [this.node_id for this in nodes(settings)]
    return probe(settings.local_kafka_bootstrap(), timeout, node_ids=ids)


def probe(bootstrap: str, timeout: float = 5.0, node_ids: Collection[int] = ()) -> str | None:
    """None if a broker at ``bootstrap`` answers a metadata request that lists every broker of
    ``node_ids``, else what went wrong."""
    hosts = [split_host_port(a, 9092) for a in bootstrap.split(",") if a.strip()]
    if not any(tcp_reachable(h, p, timeout=min(2.0, timeout)) for h, p in hosts):
        return "nothing accepts connections there"
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": _quiet_logger()})
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        return f"no answer to a metadata request ({exc.args[0]})"
    if not metadata.brokers:
        return "the metadata answer lists no broker"
    missing = sorted(set(node_ids) - set(metadata.brokers))
    if missing:
        plural = "s" if len(missing) > 1 else ""
        return f"the metadata answer does not list broker{plural} {', '.join(map(str, missing))}"
    return None


def wait_ready(
    bootstrap: str,
    timeout: float,
    alive: Callable[[], bool] = lambda: True,
    node_ids: Collection[int] = (),
) -> str | None:
    """Poll :func:`probe` until it passes (None) or ``timeout`` runs out (the last problem)."""
    hosts = [split_host_port(a, 9092) for a in bootstrap.split(",") if a.strip()]
    deadline = time.monotonic() + timeout
    problem = "not checked"
    while time.monotonic() < deadline:
        if not alive():
            return "the broker process exited"
        if any(tcp_reachable(h, p, timeout=0.5) for h, p in hosts):
            remaining = max(0.5, deadline - time.monotonic())
            answer = probe(bootstrap, timeout=min(5.0, remaining), node_ids=node_ids)
            if answer is None:
                return None
            problem = answer
        else:
            problem = "the broker does not accept connections yet"
        time.sleep(0.2)
    return f"{problem} after {timeout:.0f} s"
