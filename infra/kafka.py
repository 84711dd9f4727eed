"""The local Apache Kafka broker: one KRaft node (broker and controller) on loopback.

Its jars come from Maven Central once (``infra/kafka/pom.xml``, fetched with ``mvn``) and are
cached per version; the broker runs as a detached ``java`` process whose state lives under
``{home}/kafka``, its log in ``{home}/logs/kafka.log`` and its pid in ``{home}/run/kafka.pid``.
"""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from infra.process import (
    LocalProcess,
    ServiceError,
    pid_alive,
    port_free,
    split_host_port,
    tcp_reachable,
    who_listens,
)
from parivision.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

SERVICE = "Kafka"
POM = Path(__file__).with_name("kafka") / "pom.xml"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0

LOG4J2 = """\
# Written by parivision (infra/kafka.py); rewritten on every start.
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


def _quiet_logger() -> logging.Logger:
    # librdkafka reports every refused connection; keep that out of the user's terminal.
    logger = logging.getLogger("parivision.infra.kafka.client")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    return logger


def jar_dir(settings: Settings) -> Path:
    """Where the jars of ``settings.kafka_version`` are cached."""
    root = settings.kafka_cache or Path.home() / ".cache" / "parivision"
    return root.expanduser() / f"kafka-{settings.kafka_version}" / "libs"


def _has_jars(libs: Path, version: str) -> bool:
    return (libs / f"kafka_2.13-{version}.jar").is_file() and (
        libs / f"kafka-tools-{version}.jar"
    ).is_file()


def ensure_jars(settings: Settings, console: Console | None = None) -> Path:
    """Fetch the broker's jars with Maven unless they are cached; return the jar folder.

    The jars land in a temporary folder that is renamed into place only once Maven succeeded,
    so an interrupted fetch is never mistaken for a complete one.
    """
    version, libs = settings.kafka_version, jar_dir(settings)
    if _has_jars(libs, version):
        return libs
    address = settings.local_kafka_bootstrap()
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceError(
            SERVICE,
            address,
            f"the broker's jars are not cached in {libs} and Maven (`mvn`) is not installed "
            "to fetch them",
            "install Maven and Java 17 (Debian/Ubuntu: apt-get install maven openjdk-17-jre), "
            "or set PARIVISION_KAFKA_BOOTSTRAP to a Kafka broker you already run",
        )
    if not POM.is_file():
        raise ServiceError(
            SERVICE,
            address,
            f"{POM} is missing from this installation",
            "reinstall parivision from its source tree",
        )
    libs.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=libs.parent))
    try:
        shutil.copyfile(POM, work / "pom.xml")  # Maven writes next to its pom: not in the repo
        fetched = work / "libs"
        argv = [
            mvn,
            "-q",
            "-B",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={fetched}",
            "-DincludeScope=runtime",
            f"-Dkafka.version={version}",
        ]
        if console is not None:
            console.print(
                f"[dim]Fetching Apache Kafka {version} jars with Maven (once) into {libs} …[/dim]"
            )
        try:
            done = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            raise ServiceError(
                SERVICE,
                address,
                "fetching the broker's jars with Maven took more than 15 minutes",
                _MAVEN_HINT,
            ) from None
        if done.returncode != 0 or not _has_jars(fetched, version):
            output = (done.stdout + done.stderr).strip().splitlines()[-15:]
            raise ServiceError(
                SERVICE,
                address,
                f"`{' '.join(argv[1:4])}` failed (exit {done.returncode}) while fetching Apache "
                f"Kafka {version}:\n" + "\n".join("    " + line for line in output),
                _MAVEN_HINT,
            )
        try:
            fetched.rename(libs)
        except OSError:
            if not _has_jars(libs, version):  # lost a race to another fetch: theirs is fine
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return libs


_MAVEN_HINT = (
    "check that Maven Central (repo.maven.apache.org) is reachable, or configure a mirror or proxy "
    "in ~/.m2/settings.xml; check that PARIVISION_KAFKA_VERSION names a released version; "
    "or set PARIVISION_KAFKA_BOOTSTRAP to a broker you already run"
)


def kafka_dir(settings: Settings) -> Path:
    return settings.resolved_home() / "kafka"


def local_process(settings: Settings) -> LocalProcess:
    home = settings.resolved_home()
    return LocalProcess(
        name="kafka",
        pid_file=home / "run" / "kafka.pid",
        log_file=home / "logs" / "kafka.log",
        marker=str(kafka_dir(settings) / "server.properties"),
    )


def server_properties(settings: Settings) -> str:
    port, cport = settings.kafka_port, settings.kafka_controller_port
    data = kafka_dir(settings) / "data"
    return f"""\
# Written by parivision (infra/kafka.py) on every start; edit the settings, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cport}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions={settings.partitions}
auto.create.topics.enable=true
# A single node: every internal topic has one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
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


def _cluster_id(settings: Settings) -> str:
    """The cluster id, made once and kept so the storage keeps matching it."""
    path = kafka_dir(settings) / "cluster.id"
    if path.is_file():
        return path.read_text().strip()
    while True:  # Kafka's Uuid.randomUuid(): url-safe base64, never starting with "-"
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            break
    path.write_text(cid + "\n")
    return cid


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


def _format_storage(settings: Settings, java: str, libs: Path) -> None:
    directory = kafka_dir(settings)
    if (directory / "data" / "meta.properties").is_file():
        return
    argv = [
        java,
        f"-Dlog4j2.configurationFile={directory / 'log4j2.properties'}",
        "-cp",
        f"{libs}/*",
        "kafka.tools.StorageTool",
        "format",
        "--ignore-formatted",
        "-t",
        _cluster_id(settings),
        "-c",
        str(directory / "server.properties"),
    ]
    done = subprocess.run(argv, cwd=directory, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise ServiceError(
            SERVICE,
            settings.local_kafka_bootstrap(),
            "formatting the broker's storage failed:\n" + "\n".join("    " + x for x in output),
            f"delete {directory} to start from empty storage, then run `parivision up` again",
        )


def preflight(settings: Settings) -> None:
    """Raise if the broker's ports are taken by a process that is not our broker."""
    for port, what, knob in (
        (settings.kafka_port, "client", "PARIVISION_KAFKA_PORT"),
        (settings.kafka_controller_port, "controller", "PARIVISION_KAFKA_CONTROLLER_PORT"),
    ):
        if not port_free(port):
            owner = who_listens(port)
            raise ServiceError(
                SERVICE,
                settings.local_kafka_bootstrap(),
                f"the {what} port 127.0.0.1:{port} is already in use by "
                f"{owner or 'another process'}, not by a broker PariVision started under "
                f"{settings.resolved_home()}",
                f"stop that process, or choose a free port with {knob}; if it is a Kafka broker "
                "you want to use, set PARIVISION_KAFKA_BOOTSTRAP to its address instead",
            )


def local_address(settings: Settings) -> str:
    return settings.local_kafka_bootstrap()


def probe_local(settings: Settings, timeout: float = 5.0) -> str | None:
    return probe(settings.local_kafka_bootstrap(), timeout, node_id=1)


def start(settings: Settings, console: Console | None = None) -> int:
    """Start the local broker, wait until it serves metadata, and return its pid."""
    address = settings.local_kafka_bootstrap()
    preflight(settings)
    java = _java(address)
    libs = ensure_jars(settings, console)
    directory = kafka_dir(settings)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    (directory / "server.properties").write_text(server_properties(settings))
    (directory / "log4j2.properties").write_text(LOG4J2)
    _format_storage(settings, java, libs)
    proc = local_process(settings)
    since = proc.log_offset()
    pid = proc.spawn(
        [
            java,
            f"-Xmx{settings.kafka_heap}",
            *JVM_FLAGS,
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={directory / 'log4j2.properties'}",
            "-cp",
            f"{libs}/*",
            "kafka.Kafka",
            str(directory / "server.properties"),
        ],
        cwd=directory,
    )
    problem = wait_ready(address, READY_TIMEOUT_S, alive=lambda: pid_alive(pid), node_id=1)
    if problem is not None:
        tail = proc.log_tail(since)
        proc.stop(timeout=10)
        raise ServiceError(
            SERVICE,
            address,
            f"the local broker (pid {pid}) did not become ready: {problem}.\n"
            f"  last lines of {proc.log_file}:\n{tail}",
            "read the log above; `parivision down` and `parivision up` retries; deleting "
            f"{directory} starts from empty storage",
        )
    return pid


def stop(settings: Settings) -> bool:
    """Stop the local broker if it runs; True if it did."""
    return local_process(settings).stop(timeout=STOP_TIMEOUT_S)


def probe(bootstrap: str, timeout: float = 5.0, node_id: int | None = None) -> str | None:
    """None if a broker at ``bootstrap`` answers a metadata request, else what went wrong."""
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
    if node_id is not None and node_id not in metadata.brokers:
        return f"the metadata answer does not list broker {node_id}"
    return None


def wait_ready(
    bootstrap: str,
    timeout: float,
    alive: Callable[[], bool] = lambda: True,
    node_id: int | None = None,
) -> str | None:
    """Poll :func:`probe` until it passes (None) or ``timeout`` runs out (the last problem)."""
    deadline = time.monotonic() + timeout
    problem = "not checked"
    while time.monotonic() < deadline:
        if not alive():
            return "the broker process exited"
        if tcp_reachable(*split_host_port(bootstrap, 9092), timeout=0.5):
            remaining = max(0.5, deadline - time.monotonic())
            problem = probe(bootstrap, timeout=min(5.0, remaining), node_id=node_id)
            if problem is None:
                return None
        else:
            problem = "the broker does not accept connections yet"
        time.sleep(0.2)
    return f"{problem} after {timeout:.0f} s"
