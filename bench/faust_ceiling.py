"""How many events per second Faust itself delivers here, with Faust's defaults, with the
stream's settings and tuned, next to a plain confluent-kafka consume loop on the same messages.

Fills two fresh 4-partition topics with ``--events`` small JSON messages (half each, like
attempts and outcomes), then, each in its own process and consumer group, reads all of them:

- ``confluent``: a ``Consumer.consume(1000)`` loop that decodes each message (the near-limit
  reference);
- a Faust agent over both topics, ``take_events(500, within=0.05)`` as the stream's, decoding
  each event, with the settings of ``--variants`` (:func:`variants`): Faust's defaults
  (``faust_default``), the stream's fetch and buffer settings
  (:func:`streams.app.consumer_settings`, ``faust_settings``), and those with the stream's eager
  hand-off of each message (:mod:`streams.handoff`, ``faust_tuned``: what the worker runs on).

Each reader's rate is from its first event to its last.  The stream worker does two events per
shot, so its shots/s ceiling is half the Faust rate.  Uses the local broker (``parivision up``).
Prints a markdown table and one JSON line.

    .venv/bin/python bench/faust_ceiling.py --events 200000
    .venv/bin/python bench/faust_ceiling.py --variants faust_settings faust_tuned faust_no_crc
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


def variants() -> dict[str, tuple[str, dict, bool]]:
    """Faust settings to read with: name -> (what it is, the settings, whether messages are
    handed on eagerly as the stream does, :mod:`streams.handoff`)."""
    from streams.app import consumer_settings

    stream = consumer_settings(BATCH)
    return {
        "faust_default": ("Faust agent, default settings", {}, False),
        "faust_settings": ("Faust agent, the stream's settings", stream, False),
        "faust_tuned": ("Faust agent, the stream's settings and eager hand-off", stream, True),
        "faust_poll_cap": (
            "the stream's, a 2,000-record poll cap (before)",
            {**stream, "broker_max_poll_records": 2000},
            False,
        ),
        "faust_no_crc": (
            "the stream's, eager hand-off, no CRC check",
            {**stream, "broker_check_crcs": False},
            True,
        ),
    }


def read_faust(bootstrap: str, topics: list[str], events: int, variant: str) -> dict:
    """Run a Faust worker in this process until it has read ``events``; print and exit."""
    import os

    import faust

    _label, options, eager = variants()[variant]
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
    if eager:
        from streams.handoff import eager as hand_on_eagerly

        hand_on_eagerly(app.consumer)
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
    parser.add_argument("--child")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["faust_default", "faust_settings", "faust_tuned"],
        help=f"Faust settings to read with, of: {', '.join(variants())}",
    )
    parser.add_argument("--bootstrap")
    parser.add_argument("--topics", nargs="+")
    args = parser.parse_args()
    if args.child == "confluent":
        print(json.dumps(read_confluent(args.bootstrap, args.topics, args.events)))
        return
    if args.child:
        read_faust(args.bootstrap, args.topics, args.events, args.child)
        return

    from infra.services import up
    from parivision.settings import Settings

    bootstrap = up(Settings()).kafka
    tag = uuid.uuid4().hex[:8]
    topics = [f"ceiling{tag}.a", f"ceiling{tag}.b"]
    fill(bootstrap, topics, args.events)
    rows = {}
    known = variants()
    readers = [("confluent", "confluent-kafka consume loop")]
    readers += [(name, known[name][0]) for name in args.variants]
    for reader, label in readers:
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
