"""Where each local Kafka node lives and what it is told: folders, pid and log files, its
``server.properties``, JVM flags and formatted storage.

One broker (``settings.kafka_brokers == 1``) keeps its state in ``{home}/kafka``, its pid in
``{home}/run/kafka.pid`` and its log in ``{home}/logs/kafka.log``.  A cluster of N keeps each
node's state in ``{home}/kafka-N-brokers/node-I`` (one folder per cluster size, so that switching
sizes never mixes storage), its pid in ``{home}/run/kafka-I.pid`` and its log in
``{home}/logs/kafka-I.log``.  Every node is a broker and a KRaft controller.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from infra.kafka_jars import SERVICE
from infra.process import LocalProcess, ServiceError
from parivision.settings import Settings

# Settings.kafka_brokers' upper bound: the sizes a running node may belong to.
MAX_BROKERS = 9

LOG4J2 = """\
# Written by parivision (infra/kafka_nodes.py); rewritten on every start.
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
# One INFO line that says the broker is up, for people reading the log.
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
"""

# The broker's JVM flags.  The demo's broker serves a few hundred small requests a second on a
# 2-core machine shared with every other process, and is restarted often; measured with
# bench/kafka_cpu.py, most of its CPU went to the C2 JIT compiler (still compiling a minute
# after start), not to requests.  So: compile with C1 only (its code is slower at peak, but
# the peak is never reached here), in one compiler thread; a serial collector (no concurrent
# G1 threads; young pauses of a few ms on this small heap); and no perf-data file.
JVM_FLAGS = (
    "-XX:TieredStopAtLevel=1",
    "-XX:CICompilerCount=1",
    "-XX:+UseSerialGC",
    "-XX:-UsePerfData",
)


@dataclass(frozen=True)
class KafkaNode:
    """One local Kafka node (broker and controller) of a cluster of ``brokers`` nodes."""

    node_id: int
    brokers: int
    port: int
    controller_port: int
    directory: Path
    process: LocalProcess

    @property
    def name(self) -> str:
        """``kafka`` for a single broker, ``kafka-I`` for node I of a cluster."""
        return self.process.name

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def cluster_dir(settings: Settings) -> Path:
    """The folder of the local Kafka of ``settings.kafka_brokers`` nodes (it holds the cluster
    id; a single broker's is also the broker's own folder)."""
    home, brokers = settings.resolved_home(), settings.kafka_brokers
    return home / "kafka" if brokers == 1 else home / f"kafka-{brokers}-brokers"


def nodes(settings: Settings) -> list[KafkaNode]:
    """Every node of the local Kafka of ``settings.kafka_brokers`` nodes, node 1 first."""
    home, brokers, root = settings.resolved_home(), settings.kafka_brokers, cluster_dir(settings)
    result = []
    for node_id, port, controller_port in settings.local_kafka_nodes():
        directory = root if brokers == 1 else root / f"node-{node_id}"
        name = "kafka" if brokers == 1 else f"kafka-{node_id}"
        process = LocalProcess(
            name=name,
            pid_file=home / "run" / f"{name}.pid",
            log_file=home / "logs" / f"{name}.log",
            marker=str(directory / "server.properties"),
        )
        result.append(KafkaNode(node_id, brokers, port, controller_port, directory, process))
    return result


def node(settings: Settings, node_id: int) -> KafkaNode:
    """Node ``node_id`` of the local Kafka; ValueError if the cluster has no such node."""
    for candidate in nodes(settings):
        if candidate.node_id == node_id:
            return candidate
    raise ValueError(
        f"the local Kafka has {settings.kafka_brokers} node(s), numbered from 1: no node {node_id}"
    )


def every_size(settings: Settings) -> list[KafkaNode]:
    """The nodes of every cluster size a home can hold: what a running node may be."""
    return [
        candidate
        for size in range(1, MAX_BROKERS + 1)
        for candidate in nodes(settings.model_copy(update={"kafka_brokers": size}))
    ]


def server_properties(settings: Settings, node_id: int = 1) -> str:
    """The ``server.properties`` of node ``node_id`` of the local Kafka."""
    this = node(settings, node_id)
    brokers = settings.kafka_brokers
    voters = ",".join(
        f"{voter}@127.0.0.1:{controller_port}"
        for voter, _port, controller_port in settings.local_kafka_nodes()
    )
    replicas = min(3, brokers)
    in_sync = 2 if brokers >= 3 else 1
    return f"""\
# Written by parivision (infra/kafka_nodes.py) on every start; edit the settings, not this file.
process.roles=broker,controller
node.id={node_id}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{this.port},CONTROLLER://127.0.0.1:{this.controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{this.port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={this.directory / "data"}
num.partitions={settings.partitions}
auto.create.topics.enable=true
# Internal topics and new topics get up to three replicas (one per node of a smaller cluster);
# with three or more, a write needs two in sync, so one node may fail without losing any.
offsets.topic.replication.factor={replicas}
transaction.state.log.replication.factor={replicas}
transaction.state.log.min.isr={in_sync}
share.coordinator.state.topic.replication.factor={replicas}
share.coordinator.state.topic.min.isr={in_sync}
default.replication.factor={replicas}
min.insync.replicas={in_sync}
# Consumer groups start at once instead of waiting for more members.
group.initial.rebalance.delay.ms=0
# Few threads for a few hundred small requests a second on a small machine: each thread that
# wakes per request is CPU spent on hand-offs (bench/kafka_cpu.py).
num.network.threads=1
num.io.threads=2
background.threads=2
group.coordinator.threads=1
share.coordinator.threads=1
"""


def cluster_id(settings: Settings) -> str:
    """The cluster id, made once per cluster size and kept, so every node's storage matches it."""
    path = cluster_dir(settings) / "cluster.id"
    if path.is_file():
        return path.read_text().strip()
    while True:  # Kafka's Uuid.randomUuid(): url-safe base64, never starting with "-"
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(cid + "\n")
    return cid


def prepare(settings: Settings, java: str, libs: Path, todo: list[KafkaNode]) -> None:
    """Write each node's configuration, and format the storage of those new to it."""
    for this in todo:
        (this.directory / "data").mkdir(parents=True, exist_ok=True)
        (this.directory / "server.properties").write_text(server_properties(settings, this.node_id))
        (this.directory / "log4j2.properties").write_text(LOG4J2)
    _format_storage(settings, java, libs, todo)


def _format_storage(settings: Settings, java: str, libs: Path, todo: list[KafkaNode]) -> None:
    """Format the storage of each node of ``todo`` not formatted yet, all at once."""
    blank = [n for n in todo if not (n.directory / "data" / "meta.properties").is_file()]
    if not blank:
        return
    cid = cluster_id(settings)
    formats = []
    for this in blank:
        argv = [
            java,
            *JVM_FLAGS,  # a short run: C1 alone also starts faster (1.0 s of CPU, not 1.6)
            f"-Dlog4j2.configurationFile={this.directory / 'log4j2.properties'}",
            "-cp",
            f"{libs}/*",
            "kafka.tools.StorageTool",
            "format",
            "--ignore-formatted",
            "-t",
            cid,
            "-c",
            str(this.directory / "server.properties"),
        ]
        pipe = subprocess.PIPE
        proc = subprocess.Popen(argv, cwd=this.directory, stdout=pipe, stderr=pipe, text=True)
        formats.append((this, proc))
    failed = []
    for this, proc in formats:
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += "\n(gave up after 120 s)"
        if proc.returncode != 0:
            failed.append((this, (out + err).strip().splitlines()[-15:]))
    if failed:
        this, output = failed[0]
        whose = "the broker's" if this.brokers == 1 else f"node {this.node_id}'s"
        raise ServiceError(
            SERVICE,
            settings.local_kafka_bootstrap(),
            f"formatting {whose} storage failed:\n" + "\n".join("    " + x for x in output),
            f"delete {cluster_dir(settings)} to start from empty storage, then run "
            "`parivision up` again",
        )


def java_argv(settings: Settings, java: str, libs: Path, this: KafkaNode) -> list[str]:
    """The command line that runs node ``this``."""
    return [
        java,
        f"-Xmx{settings.kafka_heap}",
        *JVM_FLAGS,
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={this.directory / 'log4j2.properties'}",
        "-cp",
        f"{libs}/*",
        "kafka.Kafka",
        str(this.directory / "server.properties"),
    ]
