"""The rows of the replication bench (``bench/replication.py``): replication factor 1 and 3, at
least once and exactly once; their names, their order in each round, and the rounds' report.
"""

from __future__ import annotations

import json

import numpy as np

AT_LEAST_ONCE, EXACTLY_ONCE = "at_least_once", "exactly_once"
# In topic prefixes, group and log names: no two rows share any.
SHORT = {AT_LEAST_ONCE: "alo", EXACTLY_ONCE: "eos"}
BASELINE = (1, AT_LEAST_ONCE)  # every row's shots/s ratio is to this row of its round


def key(rf: int, guarantee: str) -> str:
    """A row's name in the rounds (and the JSON line): ``rf3-eos``."""
    return f"rf{rf}-{SHORT[guarantee]}"


def configurations(transactions: bool) -> list[tuple[int, str]]:
    guarantees = (AT_LEAST_ONCE, EXACTLY_ONCE) if transactions else (AT_LEAST_ONCE,)
    return [(rf, guarantee) for guarantee in guarantees for rf in (1, 3)]


def order(rows: list, number: int) -> list:
    """Round ``number``'s order of ``rows``: a row of a balanced Latin square (Williams), so
    that over len(rows) rounds each row runs in every position once and right after each other
    row once; a row that runs first (or after a heavy one) is not always the same.  With two
    rows: as given, then reversed."""
    n = len(rows)
    first = [0] + [(k + 1) // 2 if k % 2 else n - k // 2 for k in range(1, n)]
    return [rows[(i + number) % n] for i in first]


def median_ratio(rounds: list[dict[str, dict]], top: str, bottom: str, field: str) -> str:
    """The median over rounds of ``top``'s ``field`` over ``bottom``'s (rounds missing either:
    left out)."""
    ratios = [
        pair[top][field] / pair[bottom][field]
        for pair in rounds
        if field in pair.get(top, {}) and pair.get(bottom, {}).get(field)
    ]
    return f"{np.median(ratios):.3f}" if ratios else "-"


def report(args, rounds: list[dict[str, dict]], header: str) -> None:
    def fmt(value, spec=",.0f"):
        return "" if value is None else format(value, spec)

    def paced(row, prefix=""):
        if f"{prefix}p50_ms" not in row:
            return ""
        return f"{row[f'{prefix}p50_ms']:.1f} / {row[f'{prefix}p99_ms']:.1f}"

    print(f"\n{header}\n")
    print(
        "| replication | guarantee | run | copies seen | fill shots/s | shots/s | ratio to RF1 "
        "at least once | broker CPU ms/shot (3 JVMs) | worker CPU ms/shot | disk bytes/shot | "
        "paced p50 / p99 ms, scored | paced p50 / p99 ms, seen |"
    )
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    baseline = key(*BASELINE)
    for number, rows in enumerate(rounds, 1):
        for rf, guarantee in configurations(not args.no_transactions):
            row = rows[key(rf, guarantee)]
            name = f"RF{rf}" + (" (min.insync 2)" if rf == 3 else "")
            if len(rounds) > 1:
                name += f", round {number}"
            print(
                f"| {name} | {guarantee.replace('_', ' ')} | {row['run']} | "
                f"{','.join(map(str, row['copies']))} | {fmt(row['fill_per_s'])} | "
                f"{fmt(row['shots_per_s'])} | "
                f"{row['shots_per_s'] / rows[baseline]['shots_per_s']:.3f} | "
                f"{row['broker_cpu_ms']:.2f} | {row['worker_cpu_ms']:.2f} | {fmt(row['bytes'])} | "
                f"{paced(row)} | {paced(row, 'seen_')} |"
            )
    n = f"median of {len(rounds)} round{'s' if len(rounds) > 1 else ''}"
    rf1, rf3 = key(1, AT_LEAST_ONCE), key(3, AT_LEAST_ONCE)
    print(
        f"\nRF3 / RF1, at least once ({n}): shots/s {median_ratio(rounds, rf3, rf1, 'shots_per_s')}"
        f", broker CPU ms/shot {median_ratio(rounds, rf3, rf1, 'broker_cpu_ms')}"
    )
    if not args.no_transactions:
        for rf in (1, 3):
            eos, alo = key(rf, EXACTLY_ONCE), key(rf, AT_LEAST_ONCE)
            ratios = ", ".join(
                f"{label} {median_ratio(rounds, eos, alo, field)}"
                for field, label in (
                    ("shots_per_s", "shots/s"),
                    ("broker_cpu_ms", "broker CPU ms/shot"),
                    ("p99_ms", "paced p99 scored"),
                    ("seen_p99_ms", "paced p99 seen"),
                )
            )
            print(f"\nexactly once / at least once at RF{rf} ({n}): {ratios}")
    print(json.dumps({"bench": "replication", "shots": args.shots, "rounds": rounds}))
