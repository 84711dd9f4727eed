"""Where the local Kafka broker's CPU goes while a command runs (or while it idles).

The broker's CPU is read per thread (``jcmd <pid> Thread.print`` reports each thread's CPU,
the JVM's own threads included: JIT compilers, GC workers), before and after, and grouped by
thread kind: network threads, request handlers, JIT, GC, the KRaft controller, and so on.
With ``--requests`` the broker's request logger is turned on at DEBUG for the run (through
Kafka's own ``ConfigCommand``, a dynamic broker-logger config that lasts until the broker
restarts) and the requests it completed are counted by API and client, then it is turned off.
The request log costs the broker CPU of its own: measure CPU and requests in separate runs.

    # the demo at 250 shots/s, broker CPU per shot by thread kind:
    python bench/kafka_cpu.py -- parivision demo --data ../shared/data/nba_shots.csv \
        --since 20181016 --limit 5000 --rate 250 --until-done
    # requests by API while the demo runs:
    python bench/kafka_cpu.py --requests -- parivision demo ...
    # the broker idling, for 30 s:
    python bench/kafka_cpu.py --idle 30

The broker is the one ``parivision up`` started under ``PARIVISION_HOME``; the demo's shots
are read from the last line of its output (its JSON summary), or given with ``--shots``.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from infra import kafka
from parivision.settings import Settings

THREAD = re.compile(r'^"(?P<name>[^"]+)".*?\bcpu=(?P<cpu>[0-9.]+)ms', re.MULTILINE)
GROUPS = (
    ("network (PLAINTEXT)", r"^data-plane-kafka-network-thread"),
    ("request handlers", r"^data-plane-kafka-request-handler"),
    ("controller listener", r"CONTROLLER|controller-kafka|kafka-1-raft|quorum-controller"),
    ("JIT compiler", r"CompilerThread|^C[12] "),
    ("GC", r"^G1|^GC |^GC Thread|^Parallel GC|^VM Periodic|Sweeper|^PSYoung|^ParGC"),
    ("VM thread", r"^VM Thread"),
    ("group coordinator", r"group-coordinator"),
    ("log cleaner / flusher", r"log-cleaner|kafka-scheduler|LogDirFailure"),
    ("metadata loader", r"metadata-loader|broker-1-|kafka-1-metadata"),
    ("purgatory reapers", r"ExpirationReaper|executor-"),
    ("JFR / attach", r"^JFR|Attach Listener"),
)


def group_of(name: str) -> str:
    for group, pattern in GROUPS:
        if re.search(pattern, name):
            return group
    return "other: " + re.sub(r"[0-9]+", "#", name)


def broker_pid(settings: Settings) -> int:
    pid_file = settings.resolved_home() / "run" / "kafka.pid"
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        sys.exit(f"no broker pid in {pid_file}: is `parivision up` running with this home?")


def threads_cpu_ms(pid: int) -> dict[str, float]:
    """CPU milliseconds of every live thread of the JVM ``pid``, by thread name."""
    text = subprocess.run(
        ["jcmd", str(pid), "Thread.print"], capture_output=True, text=True, check=True
    ).stdout
    cpu: dict[str, float] = collections.defaultdict(float)
    for match in THREAD.finditer(text):
        cpu[match["name"]] += float(match["cpu"])
    return dict(cpu)


def process_cpu_ms(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 10.0  # utime + stime, in 10 ms ticks


def request_logger(settings: Settings, level: str) -> None:
    """Set the broker's ``kafka.request.logger`` level at run time (DEBUG logs every request)."""
    libs = kafka.jar_dir(settings)
    argv = [
        "java",
        "-XX:TieredStopAtLevel=1",
        f"-Dlog4j2.configurationFile={kafka.kafka_dir(settings) / 'log4j2.properties'}",
        "-cp",
        f"{libs}/*",
        "kafka.admin.ConfigCommand",
        "--bootstrap-server",
        settings.local_kafka_bootstrap(),
        "--alter",
        "--entity-type",
        "broker-loggers",
        "--entity-name",
        "1",
        "--add-config",
        f"kafka.request.logger={level}",
    ]
    subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)


def count_requests(log_file: Path, offset: int) -> dict[str, collections.Counter]:
    """Requests the broker logged since ``offset`` of its log, by API and by API and client."""
    by_api: collections.Counter = collections.Counter()
    by_client: collections.Counter = collections.Counter()
    with log_file.open("rb") as handle:
        handle.seek(offset)
        for raw in handle:
            line = raw.decode("utf-8", "replace")
            start = line.find("Completed request:")
            if start < 0:
                continue
            body = line[start + len("Completed request:") :].rsplit(" (kafka.request", 1)[0]
            try:
                record = json.loads(body)
            except json.JSONDecodeError:
                continue
            header = record.get("requestHeader", {})
            api = header.get("requestApiKeyName", "?")
            if record.get("listener") == "CONTROLLER":
                api = "controller:" + api
            software = record.get("clientInformation", {}).get("softwareName", "?")
            by_api[api] += 1
            by_client[f"{api} {header.get('clientId', '?')} ({software})"] += 1
    return {"api": by_api, "client": by_client}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=float, help="measure the broker idling for this many s")
    parser.add_argument("--shots", type=int, help="shots the command produces (else: its JSON)")
    parser.add_argument("--requests", action="store_true", help="count requests by API")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = [c for c in args.command if c != "--"] if args.command else []
    if not command and args.idle is None:
        parser.error("give a command after --, or --idle SECONDS")

    settings = Settings()
    log_file = settings.resolved_home() / "logs" / "kafka.log"
    pid = None if command else broker_pid(settings)
    output = ""
    if args.requests:
        request_logger(settings, "DEBUG")
    log_offset = log_file.stat().st_size if log_file.is_file() else 0
    if command:
        # The command may start the broker itself (`parivision demo` runs `up`): the snapshot
        # is taken once its pid file names a live broker.
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        pid_file = settings.resolved_home() / "run" / "kafka.pid"
        while not pid_file.is_file() and proc.poll() is None:
            time.sleep(0.2)
        pid = broker_pid(settings)
        before, proc_before, started = threads_cpu_ms(pid), process_cpu_ms(pid), time.monotonic()
        output, _ = proc.communicate()
        sys.stdout.write(output)
    else:
        assert pid is not None
        before, proc_before, started = threads_cpu_ms(pid), process_cpu_ms(pid), time.monotonic()
        time.sleep(args.idle)
    after, proc_after = threads_cpu_ms(pid), process_cpu_ms(pid)
    seconds = time.monotonic() - started
    requests = count_requests(log_file, log_offset) if args.requests else None
    if args.requests:
        request_logger(settings, "WARN")

    shots = args.shots
    summary: dict = {}
    if shots is None and output.strip():
        try:
            summary = json.loads(output.strip().splitlines()[-1])
            shots = int(summary["produced"])
        except (ValueError, KeyError):
            shots = None
    per = shots or seconds  # per shot, or per second when idling
    unit = "ms/shot" if shots else "ms/s"
    groups: dict[str, float] = collections.defaultdict(float)
    for name, cpu in after.items():
        groups[group_of(name)] += cpu - before.get(name, 0.0)
    total = proc_after - proc_before
    result = {
        "seconds": round(seconds, 1),
        "shots": shots,
        "unit": unit,
        "broker_total": round(total / per, 3),
        "by_thread_kind": {
            k: round(v / per, 3) for k, v in sorted(groups.items(), key=lambda x: -x[1]) if v > 0
        },
        "threads_gone_or_untracked": round((total - sum(groups.values())) / per, 3),
    }
    if summary:
        result["demo"] = {
            key: summary.get(key)
            for key in ("cpu_ms_per_shot", "scoring_latency_ms", "stored_latency_ms", "seconds")
        }
    if requests is not None:
        result["requests_per_shot" if shots else "requests_per_s"] = {
            k: round(v / per, 3) for k, v in requests["api"].most_common()
        }
        result["requests_by_client"] = {
            k: round(v / per, 3) for k, v in requests["client"].most_common(25)
        }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
