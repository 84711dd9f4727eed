"""Each module one idea, under about 400 lines: a module past that holds several (issue 26).

Tests and generated files (the dashboards' JSON) are not modules; the page's ES modules are.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 400
PACKAGES = ("parivision", "producers", "streams", "consumers", "models", "infra", "bench")


def modules() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", *PACKAGES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed if name.endswith((".py", ".js"))]


def test_no_module_is_over_400_lines():
    found = modules()
    assert len(found) > 50, "git ls-files found too few modules to be this repository"
    over = {
        str(path.relative_to(ROOT)): count
        for path in found
        if path.exists() and (count := len(path.read_text().splitlines())) > LIMIT
    }
    assert over == {}, f"over {LIMIT} lines (split each into modules of one idea): {over}"
