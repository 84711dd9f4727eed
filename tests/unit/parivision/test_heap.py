"""parivision.heap: after start-up, a full collection walks only what was made since.

Run in a child process: freezing is for the process's lifetime, and this one is pytest's."""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = """
import gc, json
import faust, lightgbm, mlflow, river, sklearn  # what the stream worker imports
from parivision.heap import freeze_startup_objects
before = len(gc.get_objects())
frozen = freeze_startup_objects()
made_since = [{"shot": [i]} for i in range(1000)]  # a thousand records, tracked
print(json.dumps({"before": before, "frozen": frozen, "walked": len(gc.get_objects())}))
"""


def test_a_full_collection_after_start_up_walks_only_what_was_made_since():
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300, check=True
    )
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    assert counts["before"] > 100_000  # the libraries alone: a full pass is not cheap
    assert counts["frozen"] >= counts["before"] * 0.9
    # What the collector still walks: the thousand new records and little else.
    assert 1_000 <= counts["walked"] < 0.05 * counts["before"]
