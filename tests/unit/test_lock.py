"""Installs are reproducible: requirements.lock pins every package `make setup` installs, and each
pin satisfies the range pyproject.toml gives.  (`make setup` also runs `pip check`, which fails on
a lock that misses a transitive requirement.)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
EXTRAS = ("dev", "embedded-mongo", "docs")


def pins(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", line)
        assert match, f"requirements.lock: not an exact pin: {line!r}"
        name = canonicalize_name(match[1])
        assert name not in found, f"requirements.lock pins {name} twice"
        found[name] = match[2]
    return found


def wanted() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [
        Requirement(r) for r in project["dependencies"] + [r for e in EXTRAS for r in extras[e]]
    ]


def test_every_requirement_is_pinned_in_the_lock_within_its_range():
    locked = pins((ROOT / "requirements.lock").read_text())
    for requirement in wanted():
        name = canonicalize_name(requirement.name)
        assert name in locked, (
            f"{name} is in pyproject.toml but not in requirements.lock: make lock"
        )
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"requirements.lock pins {name}=={locked[name]}, outside {requirement.specifier}: "
            "make lock"
        )


def test_a_pin_that_is_not_exact_is_refused():
    assert pins("a==1.0  # via b\n\nB_c==2") == {"a": "1.0", "b-c": "2"}
    for bad in ("a>=1", "a @ file:///tmp/a.whl", "a==1\na==2"):
        try:
            pins(bad)
        except AssertionError:
            continue
        raise AssertionError(f"{bad!r} was accepted")


def test_setup_installs_from_the_lock_and_the_embedded_server_is_an_extra():
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet -r requirements.lock" in makefile
    assert "pip install --quiet --no-deps -e ." in makefile
    assert "pip check" in makefile
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [r for r in project["dependencies"] if r.startswith("secantusdb")]
    assert [r for r in project["optional-dependencies"]["embedded-mongo"] if "secantusdb" in r]
