"""docs/claims.md names the test behind each claim: every test it names exists, so a test
renamed or moved cannot leave a claim pointing at nothing."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cited(text: str) -> set[tuple[str, str]]:
    return set(re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text))


def test_every_test_the_claims_name_exists():
    claims = cited((ROOT / "docs" / "claims.md").read_text())
    assert len(claims) > 100
    missing = sorted(
        f"{path}::{name}"
        for path, name in claims
        if not (ROOT / path).is_file()
        or not re.search(rf"^(async )?def {name}\(", (ROOT / path).read_text(), re.M)
    )
    assert missing == []


def test_a_citation_is_read_from_its_backticks():
    assert cited("see `tests/unit/a/test_b.py::test_c` and `tests/x.py`") == {
        ("tests/unit/a/test_b.py", "test_c")
    }
