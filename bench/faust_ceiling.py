"""How many events per second Faust itself delivers here, with Faust's defaults and with the
stream's settings, next to a plain confluent-kafka consume loop on the same messages.

Fills two fresh 4-partition topics with ``--events`` small JSON messages (half each, like
attempts and outcomes), then, each in its own process and consumer group, reads all of them:

- ``confluent``: a ``Consumer.consume(1000)`` loop that decodes each message (the near-limit
  reference);
- ``faust default``: a Faust agent over both topics, ``take_events(500, within=0.05)`` as the
  stream's, decoding each event, with Faust's default consumer settings;
- ``faust stream settings``: the same agent with the fetch and buffer settings
  :func:`streams.app.create_app` uses (``broker_max_poll_records``, ``stream_buffer_maxsize``,
  ``consumer_max_fetch_size``).

Each reader's rate is from its first event to its last.  The stream worker does two events per
shot, so its shots/s ceiling is half the Faust rate.  Uses the local broker (``parivision up``).
Prints a markdown table and one JSON line.

    .venv/bin/python bench/faust_ceiling.py --events 200000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid

PARTITIONS = 4
BATCH = 500


def fill(bootstrap: str, topics: list[str], events: int) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics(
        [NewTopic(t, num_partitions=PARTITIONS, replication_factor=1) for t in topics]
    ).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for i in range(events):
        value = json.dumps({"shot_id": f"g-{i}", "player_id": i % 500, "made": i % 2}).encode()
        while True:
            try:
                producer.produce(topics[i % 2], value=value, key=str(i % 500).encode())
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(60)


def read_confluent(bootstrap: str, topics: list[str], events: int) -> dict:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
        }
    )
    consumer.subscribe(topics)
    seen, first = 0, None
    while seen < events:
        for message in consumer.consume(1000, timeout=0.5):
            if message.error():
                continue
            first = first or time.perf_counter()
            json.loads(message.value())
            seen += 1
    seconds = time.perf_counter() - first
    consumer.close()
    return {"events": seen, "seconds": seconds}


def read_faust(bootstrap: str, topics: list[str], events: int, tuned: bool) -> dict:
    """Run a Faust worker in this process until it has read ``events``; print and exit."""
    import os

    import faust

    options: dict = {}
    if tuned:
        from streams.app import MAX_ENTRY_BYTES

        options = {
            "consumer_max_fetch_size": MAX_ENTRY_BYTES + 64 * 1024,
            "broker_max_poll_records": max(4 * BATCH, 2000),
            "stream_buffer_maxsize": max(8 * BATCH, 8192),
        }
    app = faust.App(
        f"ceiling-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        topic_disable_leader=True,
        **options,
    )
    source = app.topic(*topics, value_serializer="raw")
    state = {"seen": 0, "first": None}

    @app.agent(source)
    async def count(stream):
        async for batch in stream.take_events(BATCH, within=0.05):
            if state["first"] is None:
                state["first"] = time.perf_counter()
            for event in batch:
                json.loads(event.value)
            state["seen"] += len(batch)
            if state["seen"] >= events:
                seconds = time.perf_counter() - state["first"]
                print(json.dumps({"events": state["seen"], "seconds": seconds}), flush=True)
                os._exit(0)

    from faust.worker import Worker

    sys.argv = [sys.argv[0]]
    Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False).execute_from_commandline()
    return {}


def in_child(reader: str, bootstrap: str, topics: list[str], events: int) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            reader,
            "--bootstrap",
            bootstrap,
            "--topics",
            *topics,
            "--events",
            str(events),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    # Faust's worker may put terminal escapes before the line.
    lines = [line[line.index("{") :] for line in out.stdout.splitlines() if "{" in line]
    if not lines:
        raise SystemExit(f"{reader} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--child", choices=["confluent", "faust_default", "faust_tuned"])
    parser.add_argument("--bootstrap")
    parser.add_argument("--topics", nargs="+")
    args = parser.parse_args()
    if args.child == "confluent":
        print(json.dumps(read_confluent(args.bootstrap, args.topics, args.events)))
        return
    if args.child:
        read_faust(args.bootstrap, args.topics, args.events, tuned=args.child == "faust_tuned")
        return

    from infra.services import up
    from parivision.settings import Settings

    bootstrap = up(Settings()).kafka
    tag = uuid.uuid4().hex[:8]
    topics = [f"ceiling{tag}.a", f"ceiling{tag}.b"]
    fill(bootstrap, topics, args.events)
    rows = {}
    for reader, label in (
        ("confluent", "confluent-kafka consume loop"),
        ("faust_default", "Faust agent, default settings"),
        ("faust_tuned", "Faust agent, the stream's settings"),
    ):
        result = in_child(reader, bootstrap, topics, args.events)
        rows[reader] = {"label": label, **result, "per_s": result["events"] / result["seconds"]}
    reference = rows["confluent"]["per_s"]
    print(f"{args.events:,} events on two {PARTITIONS}-partition topics\n")
    print("| reader | events/s | shots/s ceiling (2 events a shot) | of confluent |")
    print("|---|---:|---:|---:|")
    for row in rows.values():
        print(
            f"| {row['label']} | {row['per_s']:,.0f} | {row['per_s'] / 2:,.0f} | "
            f"{row['per_s'] / reference:.3f} |"
        )
    print(json.dumps({"bench": "faust_ceiling", "events": args.events, "readers": rows}))


if __name__ == "__main__":
    main()
