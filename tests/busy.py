"""Run the test suite on a busy machine: two CPU-bound processes spin beside it.

    .venv/bin/python -m tests.busy [pytest arguments]      # or: make test-busy

A user's laptop is busy; the suite must pass there.  Tests wait for progress, not for fixed wall
time, and this is how that is checked.  ``PARIVISION_BUSY_PROCESSES`` sets how many spinners
(default 2).  Exits with pytest's code, so "no tests ran" (5) still fails.
"""

from __future__ import annotations

import os
import subprocess
import sys

SPIN = "while True: pass"


def main(argv: list[str]) -> int:
    count = int(os.environ.get("PARIVISION_BUSY_PROCESSES", "2"))
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(count)]
    print(f"busy: {count} CPU-bound processes beside the suite ({os.cpu_count()} CPUs)", flush=True)
    try:
        return subprocess.call([sys.executable, "-m", "pytest", *argv])
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
