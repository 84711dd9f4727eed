"""Worker slots: a slot is free again once the process holding it is killed, however it dies."""

from __future__ import annotations

import subprocess
import sys

from streams.slots import claim_slot


def test_a_slot_is_free_again_once_its_holder_is_killed(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from streams.slots import claim_slot; "
            f"print(claim_slot(Path({str(tmp_path)!r}), 'g'), flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "0"
        assert claim_slot(tmp_path, "g") == 1  # slot 0 is held
        assert claim_slot(tmp_path, "other-group") == 0
    finally:
        holder.kill()
        holder.wait(10)
    assert claim_slot(tmp_path, "g") == 0  # the dead holder's slot
