"""docker-compose.yml and infra/Dockerfile hold together, checked without Docker.

A broken reference here shows up only at `docker compose up` on someone else's machine, so each
test names the service and the entry at fault.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import yaml
from pymongo.uri_parser import parse_uri

from parivision import cli
from parivision.metrics import JOBS, metrics_port
from parivision.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "infra" / "Dockerfile"
PROMETHEUS_CONFIG = ROOT / "infra" / "prometheus" / "prometheus.yml"

# The `parivision` subcommands a compose service may run: the ones the CLI really has.
PARIVISION_COMMANDS = {command.name for command in cli.app.registered_commands}
KAFKA = ("kafka-1", "kafka-2", "kafka-3")
BACKING = (*KAFKA, "mongodb", "mlflow")
# One-shot services: they run to completion on every `up` and must not be restarted.
ONE_SHOT = ("mongodb-keyfile", "mongodb-init", "trainer")
APPS = ("producer", "stream", "sink", "api", "retrainer")
MONITORING = ("prometheus", "alertmanager", "grafana")
# Each app service Prometheus scrapes, and the job (parivision/metrics.py) whose metrics it serves.
SCRAPED = {"stream": "stream", "sink": "sink", "producer": "replay", "retrainer": "retrainer"}
# Settings' defaults, not this shell's PARIVISION_* variables: what a container starts with.
DEFAULTS = SimpleNamespace(**{key: f.default for key, f in Settings.model_fields.items()})

VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(text: str) -> str:
    """Compose's ``${VAR:-default}`` with the defaults, and a placeholder for required ones."""

    def value(match: re.Match[str]) -> str:
        op, arg = match["op"], match["arg"]
        if op in (":-", "-"):
            return arg
        return f"<{match['name']}>"

    return VARIABLE.sub(value, text).replace("$$", "$")


def strings(node, path: str = ""):
    """Every string in the document with where it is, e.g. ``services.sink.environment.X``."""
    if isinstance(node, dict):
        for key, item in node.items():
            yield from strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from strings(item, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: str(value) for key, value in env.items()}


def as_argv(value) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def dockerfile_entrypoint() -> list[str]:
    lines = [ln for ln in DOCKERFILE.read_text().splitlines() if ln.startswith("ENTRYPOINT")]
    assert lines, "infra/Dockerfile has no ENTRYPOINT"
    return as_argv(yaml.safe_load(lines[-1].removeprefix("ENTRYPOINT").strip()))


def test_every_service_the_stack_needs_is_defined(services):
    needed = set(BACKING + APPS + MONITORING + ONE_SHOT)
    assert needed <= set(services), f"missing: {needed - set(services)}"


def test_port_mappings_are_host_to_container_and_no_host_port_is_used_twice(services):
    # Keyed by port alone: 127.0.0.1:X and 0.0.0.0:X clash on the host just the same.
    seen: dict[int, str] = {}
    for name, service in services.items():
        for entry in service.get("ports", []):
            if isinstance(entry, dict):
                ip, host, container = (
                    entry.get("host_ip", "0.0.0.0"),
                    entry.get("published"),
                    entry.get("target"),
                )
            else:
                parts = interpolate(str(entry)).split(":")
                assert len(parts) in (2, 3), f"{name}: port {entry!r} is not [ip:]host:container"
                ip = parts[0] if len(parts) == 3 else "0.0.0.0"
                host, container = parts[-2], parts[-1].split("/")[0]
            assert str(host).isdigit() and str(container).isdigit(), f"{name}: port {entry!r}"
            assert ip in ("0.0.0.0", "127.0.0.1", "localhost"), f"{name}: port {entry!r}"
            key = int(host)
            assert key not in seen, f"host port {host} is mapped by both {seen[key]} and {name}"
            seen[key] = name


def test_every_named_volume_is_declared_and_every_bind_mount_exists(compose, services):
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for entry in service.get("volumes", []):
            if isinstance(entry, dict):
                kind, source = entry.get("type", "volume"), entry.get("source")
            else:
                source = interpolate(entry).split(":")[0]
                kind = "bind" if source.startswith((".", "/", "~")) else "volume"
            if kind == "volume":
                assert source in declared, f"{name}: volume {source!r} is not declared"
            elif kind == "bind":
                assert (ROOT / source).exists(), f"{name}: bind mount {source!r} does not exist"
    for name, config in (compose.get("configs") or {}).items():
        if "file" in config:
            assert (ROOT / config["file"]).exists(), f"config {name}: {config['file']!r} missing"


def test_every_build_context_and_dockerfile_exists(services):
    builds = {name: s["build"] for name, s in services.items() if "build" in s}
    assert set(APPS) <= set(builds), "the app services must be built from the repository"
    for name, build in builds.items():
        if isinstance(build, str):
            build = {"context": build}
        context = ROOT / build.get("context", ".")
        assert context.is_dir(), f"{name}: build context {context} does not exist"
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"


def test_everything_the_dockerfile_copies_exists():
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith(("COPY", "ADD")) and "--from=" not in line:
            *sources, _destination = [a for a in line.split()[1:] if not a.startswith("--")]
            for source in sources:
                if any(ch in source for ch in "*?["):
                    continue  # a glob may match nothing (README* before a README exists)
                assert (ROOT / source).exists(), f"infra/Dockerfile copies missing {source}"


@pytest.mark.parametrize("name", BACKING + MONITORING)
def test_backing_services_have_a_healthcheck(services, name):
    check = services[name].get("healthcheck") or {}
    assert not check.get("disable") and as_argv(check.get("test")), f"{name} has no healthcheck"


@pytest.mark.parametrize("name", (*APPS, "trainer"))
def test_app_services_wait_for_healthy_backing_services(services, name):
    depends = services[name].get("depends_on") or {}
    assert isinstance(depends, dict), f"{name}: depends_on needs conditions, not a list"
    for backing in BACKING:
        condition = (depends.get(backing) or {}).get("condition")
        assert condition == "service_healthy", f"{name} does not wait for {backing} to be healthy"
    # A healthy mongod is not yet a primary: the replica set is there once mongodb-init is done.
    condition = (depends.get("mongodb-init") or {}).get("condition")
    assert condition == "service_completed_successfully", (
        f"{name} does not wait for mongodb-init: it may start before the replica set has a primary"
    )


@pytest.mark.parametrize("name", APPS)
def test_app_services_run_a_real_parivision_command(services, name):
    service = services[name]
    entrypoint = as_argv(service.get("entrypoint")) or dockerfile_entrypoint()
    argv = entrypoint + as_argv(service.get("command"))
    assert argv[0] == "parivision", f"{name} runs {argv[0]!r}, not the parivision CLI"
    assert len(argv) > 1 and argv[1] in PARIVISION_COMMANDS, (
        f"{name} runs `{' '.join(argv)}`; known subcommands: {sorted(PARIVISION_COMMANDS)}"
    )


@pytest.mark.parametrize("name", APPS)
def test_app_services_reach_the_services_by_their_compose_names(services, name):
    env = {k: interpolate(v) for k, v in environment(services[name]).items()}
    for address in env["PARIVISION_KAFKA_BOOTSTRAP"].split(","):
        kafka_host = address.split(":")[0]
        assert kafka_host in services, f"{name}: Kafka host {kafka_host!r} is not a service"
        # The name the containers reach the broker by, as it advertises itself to them.
        inter_broker = environment(services[kafka_host])["KAFKA_INTER_BROKER_LISTENER_NAME"]
        assert advertised(services[kafka_host])[inter_broker] == address, (
            f"{name}: bootstrap {address} is not what {kafka_host} advertises to the containers"
        )
    for variable in ("PARIVISION_MONGODB_URI", "PARIVISION_MLFLOW_TRACKING_URI"):
        host = urlsplit(env[variable]).hostname
        assert host in services, f"{name}: {variable} points at {host!r}, not a compose service"


def test_no_password_is_written_in_the_compose_file(compose):
    for path, text in strings(compose):
        key = path.rsplit(".", 1)[-1]
        if re.search(r"PASSWORD|SECRET|TOKEN|_KEY$", key, re.IGNORECASE):
            assert VARIABLE.fullmatch(text.strip()), f"{path} holds a literal secret"
        for match in re.finditer(r"://[^/@\s:]+:([^@\s]+)@", text):
            assert VARIABLE.fullmatch(match[1]), f"{path} has a literal password in a URI"
    required = {
        m["name"]
        for _, t in strings(compose)
        for m in VARIABLE.finditer(t)
        if m["op"] in (":?", "?")
    }
    assert "MONGO_ROOT_PASSWORD" in required, "the MongoDB password must be required, not defaulted"


def test_env_example_lists_every_variable_the_compose_file_reads(compose):
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))
    used = {m["name"] for _, text in strings(compose) for m in VARIABLE.finditer(text)}
    assert used <= listed, f".env.example does not mention {sorted(used - listed)}"
    assert re.search(r"^MONGO_ROOT_PASSWORD=\s*$", example, re.MULTILINE), (
        ".env.example must leave MONGO_ROOT_PASSWORD empty, not ship a password"
    )
    for line in re.findall(r"^#?\s*MONGO_REPLICA_SET_KEY=.*$", example, re.MULTILINE):
        assert re.fullmatch(r"#?\s*MONGO_REPLICA_SET_KEY=\s*", line), (
            ".env.example must leave MONGO_REPLICA_SET_KEY empty, not ship a key"
        )


def test_the_api_listens_on_the_port_compose_publishes_and_health_checks(services):
    api = services["api"]
    argv = as_argv(api["command"])
    listens = int(argv[argv.index("--port") + 1])
    assert argv[argv.index("--host") + 1] == "0.0.0.0"  # reachable through the mapping
    published = [int(interpolate(str(p)).split(":")[-1]) for p in api["ports"]]
    assert published == [listens]
    assert f"localhost:{listens}/health" in " ".join(as_argv(api["healthcheck"]["test"]))
    # It reads the learners the stream saves: both mount the same home.
    assert set(api["volumes"]) & set(services["stream"]["volumes"])


def test_the_retrainer_runs_the_retrain_loop_on_the_shared_home(services):
    retrainer = services["retrainer"]
    argv = (as_argv(retrainer.get("entrypoint")) or dockerfile_entrypoint()) + as_argv(
        retrainer.get("command")
    )
    assert argv == ["parivision", "retrain-loop"], f"the retrainer runs `{' '.join(argv)}`"
    # `retrain-loop --request` and the reports go through the home the stream and the API mount.
    assert set(retrainer["volumes"]) & set(services["stream"]["volumes"])


def app_metrics_port(services, name: str) -> int:
    """The port a scraped app service serves /metrics on inside the compose network."""
    if name == "api":  # on its own app, at /metrics
        argv = as_argv(services["api"]["command"])
        return int(argv[argv.index("--port") + 1])
    return metrics_port(DEFAULTS, SCRAPED[name])


@pytest.mark.parametrize("name", [*SCRAPED, "api"])
def test_scraped_services_serve_metrics_beyond_their_loopback(services, name):
    env = environment(services[name])
    assert env.get("PARIVISION_METRICS_HOST") == "0.0.0.0", (
        f"{name} serves /metrics on 127.0.0.1 only: Prometheus cannot scrape it; "
        "set PARIVISION_METRICS_HOST: 0.0.0.0"
    )
    if name != "api":
        exposed = {int(str(port).split("/")[0]) for port in services[name].get("expose", [])}
        port = app_metrics_port(services, name)
        assert port in exposed, f"{name} serves /metrics on {port} but exposes {sorted(exposed)}"


def test_prometheus_scrapes_every_app_service_where_it_serves_metrics(services):
    if not PROMETHEUS_CONFIG.exists():
        pytest.skip("no infra/prometheus/prometheus.yml")
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    scraped: dict[str, str] = {}
    for job in config["scrape_configs"]:
        assert job["job_name"] in JOBS, f"scrape job {job['job_name']!r} is not one of {JOBS}"
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                assert host in services, f"job {job['job_name']} scrapes {host!r}: no such service"
                assert int(port) == app_metrics_port(services, host), (
                    f"job {job['job_name']} scrapes {target}, but {host} serves metrics on "
                    f"{app_metrics_port(services, host)}"
                )
                scraped[host] = job["job_name"]
    assert scraped == {**SCRAPED, "api": "api"}
    listens = [
        arg.rsplit(":", 1)[-1]
        for arg in as_argv(services["alertmanager"].get("command"))
        if arg.startswith("--web.listen-address=")
    ] or ["9093"]
    for manager in config["alerting"]["alertmanagers"]:
        for static in manager["static_configs"]:
            for target in static["targets"]:
                assert target == f"alertmanager:{listens[-1]}", (
                    f"Prometheus sends alerts to {target}; Alertmanager listens on "
                    f"alertmanager:{listens[-1]}"
                )


def container_mounts(service: dict) -> dict[str, str]:
    """Container path -> host source, for every short-syntax volume entry."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target, *_ = interpolate(entry).split(":")
        mounts[target] = source
    return mounts


@pytest.mark.parametrize(
    ("name", "target", "source"),
    [
        ("prometheus", "/etc/prometheus/prometheus.yml", "./infra/prometheus/prometheus.yml"),
        ("prometheus", "/etc/prometheus/rules", "./infra/prometheus/rules"),
        ("alertmanager", "/etc/alertmanager", "./infra/alertmanager"),
        ("grafana", "/etc/grafana/provisioning", "./infra/grafana/provisioning"),
        ("grafana", "/var/lib/grafana/dashboards", "./infra/grafana/dashboards"),
    ],
)
def test_monitoring_services_mount_the_repository_config_read_only(services, name, target, source):
    entries = [e for e in services[name]["volumes"] if interpolate(e).split(":")[1] == target]
    assert entries, f"{name} does not mount anything at {target}"
    assert container_mounts(services[name])[target] == source
    assert entries[0].endswith(":ro"), f"{name} mounts {source} writable"
    assert (ROOT / source).exists(), f"{name}: {source} does not exist"


@pytest.mark.parametrize("name", (*MONITORING, *BACKING, "mongodb-keyfile", "mongodb-init"))
def test_pulled_images_are_pinned_and_ports_stay_on_loopback(services, name):
    service = services[name]
    assert service.get("image"), f"{name} names no image"
    if "build" not in service:
        _image, _, tag = service["image"].partition(":")
        assert tag and tag != "latest", f"{name}: pin the image tag, not {service['image']!r}"
    for entry in service.get("ports", []):
        assert interpolate(str(entry)).startswith("127.0.0.1:"), f"{name} publishes {entry!r}"


def test_alertmanager_reads_its_webhook_url_from_the_environment(services):
    alertmanager = services["alertmanager"]
    argv = as_argv(alertmanager["entrypoint"])
    script = argv[-1]
    mounted = container_mounts(alertmanager)["/etc/alertmanager"]
    assert script.startswith("/etc/alertmanager/")
    assert (ROOT / mounted / script.removeprefix("/etc/alertmanager/")).is_file(), (
        f"alertmanager runs {script}, which is not in {mounted}"
    )
    url = environment(alertmanager)["ALERTS_WEBHOOK_URL"]
    assert (match := VARIABLE.fullmatch(url)) and match["name"] == "ALERTS_WEBHOOK_URL", (
        "the webhook URL is a secret: it comes from ${ALERTS_WEBHOOK_URL}, never the file"
    )


def test_grafana_needs_its_admin_password_and_waits_for_prometheus(compose, services):
    grafana = services["grafana"]
    password = environment(grafana)["GF_SECURITY_ADMIN_PASSWORD"]
    match = VARIABLE.fullmatch(password)
    assert match and match["op"] == ":?", "the Grafana admin password must be required"
    condition = grafana["depends_on"]["prometheus"]["condition"]
    assert condition == "service_healthy"
    example = (ROOT / ".env.example").read_text()
    assert re.search(rf"^{match['name']}=\s*$", example, re.MULTILINE), (
        f".env.example must leave {match['name']} empty, not ship a password"
    )


def test_alertmanager_default_receiver_is_the_alerts_webhook_service(services):
    url = urlsplit(interpolate(environment(services["alertmanager"])["ALERTS_WEBHOOK_URL"]))
    assert url.hostname in services, f"unset, alerts go to {url.hostname}: not a service"
    receiver = services[url.hostname]
    argv = (as_argv(receiver.get("entrypoint")) or dockerfile_entrypoint()) + as_argv(
        receiver.get("command")
    )
    assert argv[:2] == ["parivision", "alerts-webhook"] and "alerts-webhook" in PARIVISION_COMMANDS
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert int(argv[argv.index("--port") + 1]) == url.port
    assert str(url.port) in [str(port) for port in receiver.get("expose", [])]
    assert not receiver.get("depends_on"), "the receiver must not wait for the services it warns of"


def repository_file(service: dict, path: str) -> Path | None:
    """Where a path in the container comes from in the repository, if a bind mount holds it."""
    binds = {
        target.rstrip("/"): source
        for target, source in container_mounts(service).items()
        if source.startswith((".", "/", "~"))
    }
    under = [t for t in binds if path == t or path.startswith(f"{t}/")]
    if not under:
        return None
    target = max(under, key=len)
    return ROOT / binds[target] / path.removeprefix(target).lstrip("/")


def test_every_path_a_service_runs_or_reads_from_the_repository_exists(services):
    """Paths in entrypoint, command and environment that fall in a bind mount of the repository."""
    for name, service in services.items():
        values = [
            *as_argv(service.get("entrypoint")),
            *as_argv(service.get("command")),
            *environment(service).values(),
        ]
        for value in values:
            path = interpolate(value).rpartition("=")[2]  # --config.file=/etc/... too
            source = repository_file(service, path)
            assert source is None or source.exists(), (
                f"{name} uses {path}, but {source.relative_to(ROOT)} is missing"
            )


@pytest.mark.parametrize("name", ONE_SHOT)
def test_one_shot_services_are_not_restarted_once_done(services, name):
    restart = str(services[name].get("restart", "no"))
    assert restart == "no" or restart.startswith("on-failure"), (
        f"{name} runs once; restart: {restart} would run it again and again"
    )


# --- the Kafka cluster ---------------------------------------------------------------------------


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """``NAME://host:port,...`` as ``{NAME: (host, port)}``; host is empty for all addresses."""
    found = {}
    for item in interpolate(value).split(","):
        name, _, address = item.strip().partition("://")
        host, _, port = address.rpartition(":")
        found[name] = (host, int(port))
    return found


def advertised(service: dict) -> dict[str, str]:
    """The broker's advertised listeners as ``{NAME: "host:port"}``."""
    found = listeners(environment(service)["KAFKA_ADVERTISED_LISTENERS"])
    return {name: f"{host}:{port}" for name, (host, port) in found.items()}


def quorum_voters(service: dict) -> dict[int, tuple[str, int]]:
    """``KAFKA_CONTROLLER_QUORUM_VOTERS`` (``id@host:port,...``) as ``{id: (host, port)}``."""
    voters: dict[int, tuple[str, int]] = {}
    for voter in environment(service)["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","):
        node, _, address = voter.strip().partition("@")
        host, _, port = address.rpartition(":")
        assert int(node) not in voters, f"node {node} is listed twice in the quorum"
        voters[int(node)] = (host, int(port))
    return voters


def published(service: dict) -> dict[int, int]:
    """Container port -> host port, for the short-syntax ``[ip:]host:container`` entries."""
    ports = {}
    for entry in service.get("ports", []):
        *_, host, container = interpolate(str(entry)).split(":")
        ports[int(container.split("/")[0])] = int(host)
    return ports


def test_the_kafka_brokers_are_the_three_nodes(services):
    brokers = {n for n, s in services.items() if str(s.get("image", "")).startswith("apache/kafka")}
    assert brokers == set(KAFKA), f"Kafka runs as {sorted(brokers)}, not {list(KAFKA)}"


def test_the_three_nodes_form_one_kraft_cluster(services):
    envs = {name: environment(services[name]) for name in KAFKA}
    for name, env in envs.items():
        roles = {role.strip() for role in env["KAFKA_PROCESS_ROLES"].split(",")}
        assert roles == {"broker", "controller"}, f"{name} runs as {sorted(roles)}"
    cluster_ids = {name: interpolate(env["CLUSTER_ID"]) for name, env in envs.items()}
    assert len(set(cluster_ids.values())) == 1 and all(cluster_ids.values()), (
        f"the nodes must share one CLUSTER_ID: {cluster_ids}"
    )
    node_ids = {name: int(env["KAFKA_NODE_ID"]) for name, env in envs.items()}
    assert sorted(node_ids.values()) == [1, 2, 3], f"node ids must be 1..3, once each: {node_ids}"

    quorums = {name: quorum_voters(services[name]) for name in KAFKA}
    first = quorums[KAFKA[0]]
    for name, quorum in quorums.items():
        assert quorum == first, f"{name} has quorum {quorum}, {KAFKA[0]} has {first}"
    assert set(first) == set(node_ids.values()), (
        f"the quorum lists nodes {sorted(first)}, the services are {sorted(node_ids.values())}"
    )
    for name, env in envs.items():
        host, port = first[node_ids[name]]
        assert host in (name, services[name].get("hostname")), (
            f"the quorum reaches node {node_ids[name]} at {host}, but that node is {name}"
        )
        controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(",")[0]
        assert listeners(env["KAFKA_LISTENERS"])[controller][1] == port, (
            f"the quorum reaches {name}'s controller on {port}; it listens elsewhere"
        )


@pytest.mark.parametrize("name", KAFKA)
def test_each_broker_advertises_names_that_reach_it(services, name):
    env = environment(services[name])
    listening = listeners(env["KAFKA_LISTENERS"])
    inter_broker = env["KAFKA_INTER_BROKER_LISTENER_NAME"]
    ports = published(services[name])
    for listener, address in advertised(services[name]).items():
        host, port = address.rsplit(":", 1)
        if listener == inter_broker:
            # The other brokers and the app containers, inside the compose network.
            assert host in (name, services[name].get("hostname")), f"{name} advertises {address}"
            assert int(port) == listening[listener][1], f"{name}: {listener} is not on {port}"
        else:
            # Tools on the host: the advertised port must be the one published for this broker,
            # or a host client is sent to the wrong broker, or nowhere.
            assert host in ("localhost", "127.0.0.1"), f"{name}: {listener} advertises {address}"
            container_port = listening[listener][1]
            assert ports.get(container_port) == int(port), (
                f"{name} advertises {address} but publishes {container_port} as "
                f"{ports.get(container_port)}"
            )


def test_each_broker_keeps_its_log_in_its_own_volume(compose, services):
    sources = {}
    for name in KAFKA:
        log_dir = environment(services[name])["KAFKA_LOG_DIRS"]
        source = container_mounts(services[name]).get(log_dir)
        assert source, f"{name} keeps its log in {log_dir}, which no volume holds: lost on recreate"
        assert source in (compose.get("volumes") or {}), f"{name}: {source} is not a named volume"
        sources[name] = source
    assert len(set(sources.values())) == len(KAFKA), f"brokers share a log volume: {sources}"


# Three copies of everything; a write is acknowledged by two, so one broker may be down.
REPLICATION = {
    "KAFKA_DEFAULT_REPLICATION_FACTOR": 3,
    "KAFKA_MIN_INSYNC_REPLICAS": 2,
    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": 3,
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": 3,
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": 2,
}


@pytest.mark.parametrize("name", KAFKA)
def test_each_broker_keeps_three_copies_and_acknowledges_on_two(services, name):
    env = environment(services[name])
    got = {key: int(env[key]) if key in env else None for key in REPLICATION}
    assert got == REPLICATION, f"{name}: {got}"
    assert REPLICATION["KAFKA_DEFAULT_REPLICATION_FACTOR"] <= len(KAFKA)


@pytest.mark.parametrize("name", (*APPS, "trainer"))
def test_the_apps_create_topics_with_three_copies(services, name):
    # Unset (0), the cluster's default applies; set, it must be what the three brokers can hold.
    factor = int(environment(services[name]).get("PARIVISION_KAFKA_REPLICATION_FACTOR", 0))
    assert factor == len(KAFKA), f"{name} creates topics with {factor} copies, not {len(KAFKA)}"


def test_every_kafka_bootstrap_names_all_three_brokers(compose):
    bootstraps = [(p, t) for p, t in strings(compose) if p.endswith(".PARIVISION_KAFKA_BOOTSTRAP")]
    assert bootstraps, "no service is told PARIVISION_KAFKA_BOOTSTRAP"
    for path, text in bootstraps:
        hosts = [address.split(":")[0] for address in interpolate(text).split(",")]
        assert sorted(hosts) == sorted(KAFKA), (
            f"{path} = {text}: name every broker, so a client starts with any one down"
        )


@pytest.mark.parametrize("name", KAFKA)
def test_no_broker_waits_for_another(services, name):
    # A broker is healthy only once the quorum (two of three) is up: waiting would deadlock.
    waits = set(services[name].get("depends_on") or ())
    assert not waits & set(KAFKA), f"{name} waits for {sorted(waits & set(KAFKA))}"


# --- the MongoDB replica set ---------------------------------------------------------------------


def mongod_option(services, option: str) -> str | None:
    argv = as_argv(services["mongodb"].get("command"))
    for i, arg in enumerate(argv):
        if arg == option and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(f"{option}="):
            return arg.partition("=")[2]
    return None


def test_mongod_runs_a_replica_set(services):
    assert mongod_option(services, "--replSet"), "mongodb runs without --replSet"


def test_every_mongodb_uri_names_the_replica_set_mongod_runs(compose, services):
    replica_set = mongod_option(services, "--replSet")
    member = environment(services["mongodb-init"])["MONGO_REPLICA_SET_MEMBER"]
    uris = [(p, t) for p, t in strings(compose) if p.endswith(".PARIVISION_MONGODB_URI")]
    assert uris, "no service is told PARIVISION_MONGODB_URI"
    for path, text in uris:
        uri = parse_uri(interpolate(text))
        assert uri["options"].get("replicaSet") == replica_set, (
            f"{path} names replica set {uri['options'].get('replicaSet')!r}; mongod runs "
            f"{replica_set!r}"
        )
        # directConnection would pin the driver to one node and ignore the set's primary.
        assert "directConnection" not in uri["options"], f"{path} sets directConnection"
        assert [f"{host}:{port}" for host, port in uri["nodelist"]] == [member], (
            f"{path} seeds {uri['nodelist']}; the set's member is {member}"
        )
    host, port = member.rsplit(":", 1)
    assert host in services and host == "mongodb", f"the member {member} is not the mongodb service"
    assert int(port) == int(mongod_option(services, "--port") or 27017)


def test_mongodb_init_initiates_the_set_once_mongod_is_up(services):
    init = services["mongodb-init"]
    env = environment(init)
    assert env["MONGO_REPLICA_SET"] == mongod_option(services, "--replSet"), (
        f"mongodb-init initiates {env['MONGO_REPLICA_SET']!r}; mongod runs --replSet "
        f"{mongod_option(services, '--replSet')!r}"
    )
    assert init["depends_on"]["mongodb"]["condition"] == "service_healthy"
    root_password = environment(services["mongodb"])["MONGO_INITDB_ROOT_PASSWORD"]
    assert env["MONGO_ROOT_PASSWORD"] == root_password, (
        "mongodb-init must log in with the root password mongodb is created with"
    )
    argv = as_argv(init.get("entrypoint")) + as_argv(init.get("command"))
    assert argv[0] == "mongosh", f"mongodb-init runs {argv[0]!r}"
    # Before rs.initiate there is no set to discover: only a direct connection reaches mongod.
    uri = parse_uri(next(arg for arg in argv if arg.startswith("mongodb://")))
    assert uri["options"].get("directConnection") is True
    assert uri["nodelist"] == [("mongodb", 27017)]
    script = repository_file(init, argv[argv.index("--file") + 1]).read_text()
    assert "rs.initiate(" in script, "mongodb-init's script never runs rs.initiate"
    for variable in ("MONGO_REPLICA_SET", "MONGO_REPLICA_SET_MEMBER", "MONGO_ROOT_PASSWORD"):
        assert f"process.env.{variable}" in script, f"the init script does not read {variable}"
    # Idempotent: it asks whether the set exists before initiating it.
    assert "replSetGetConfig" in script or "rs.status(" in script


def test_mongod_reads_its_keyfile_from_the_volume_the_keyfile_service_fills(compose, services):
    keyfile = mongod_option(services, "--keyFile")
    assert keyfile, "a replica set with auth on needs --keyFile"
    directory, _, file_name = keyfile.rpartition("/")
    mongodb_mounts = container_mounts(services["mongodb"])
    volume = mongodb_mounts.get(directory)
    assert volume in (compose.get("volumes") or {}), f"{directory} is not a named volume in mongodb"
    ro = [e for e in services["mongodb"]["volumes"] if interpolate(e).split(":")[1] == directory]
    assert ro[0].endswith(":ro"), "mongodb only reads the keyfile"
    depends = services["mongodb"]["depends_on"]["mongodb-keyfile"]["condition"]
    assert depends == "service_completed_successfully"

    writer = services["mongodb-keyfile"]
    written_at = {source: target for target, source in container_mounts(writer).items()}
    assert volume in written_at, f"mongodb-keyfile does not mount {volume}"
    script = repository_file(writer, as_argv(writer["entrypoint"])[-1]).read_text()
    assert f"{written_at[volume]}/{file_name}" in script, (
        f"mongodb-keyfile does not write {written_at[volume]}/{file_name}, which mongod reads"
    )
    key = environment(writer)["MONGO_REPLICA_SET_KEY"]
    assert (match := VARIABLE.fullmatch(key)) and match["name"] == "MONGO_REPLICA_SET_KEY", (
        "the replica-set key comes from ${MONGO_REPLICA_SET_KEY} (or is generated), never the file"
    )
