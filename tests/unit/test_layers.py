"""Imports point down only (README, "Layout"): core <- infra <- models <- producers, streams,
consumers <- faces.

Every ``import`` of the project's packages is read with :mod:`ast`, those inside functions too
(the lazy ones are the ones that slip).  producers/, streams/ and consumers/ share a layer and
must not import each other: they talk only through Kafka and MongoDB.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("parivision", "infra", "models", "producers", "streams", "consumers", "bench")
# What a user runs: the CLI (with the demo and the served API) and the benchmarks.
FACES = ("parivision.cli", "parivision.__main__", "bench")
RANK = {
    "core": 0,
    "infra": 1,
    "models": 2,
    "producers": 3,
    "streams": 3,
    "consumers": 3,
    "faces": 4,
}


def layer(module: str) -> str:
    """The layer of a dotted module name, e.g. ``parivision.cli.demo`` -> ``faces``."""
    if any(module == face or module.startswith(face + ".") for face in FACES):
        return "faces"
    top = module.split(".")[0]
    return "core" if top == "parivision" else top


def allowed(importer: str, imported: str) -> bool:
    """Whether a module of layer ``importer`` may import one of layer ``imported``."""
    return importer == imported or RANK[imported] < RANK[importer]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(source: str, module: str, *, package: bool = False) -> list[tuple[int, str]]:
    """Every project module ``source`` imports, with its line: ``from a import b`` names
    ``a.b`` when that is a module (``from parivision import cli`` imports the CLI)."""
    here = module.split(".") if package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}" if base else alias.name
                found.append((node.lineno, full if _is_module(full) or not base else base))
    return sorted({(line, name) for line, name in found if name.split(".")[0] in PACKAGES})


def violations(path: Path, source: str | None = None) -> list[str]:
    """Each import in ``path`` that points up or across, as ``file:line: a (layer) -> b``."""
    module = module_name(path)
    source = path.read_text(encoding="utf-8") if source is None else source
    mine = layer(module)
    out = []
    for line, name in imported_modules(source, module, package=path.name == "__init__.py"):
        theirs = layer(name)
        if not allowed(mine, theirs):
            where = path.relative_to(ROOT)
            out.append(f"{where}:{line}: {module} ({mine}) imports {name} ({theirs})")
    return out


def project_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_every_import_points_down() -> None:
    found = [v for path in project_files() for v in violations(path)]
    assert not found, "imports against the layers:\n" + "\n".join(found)


def test_the_check_sees_the_files_of_every_layer() -> None:
    layers = {layer(module_name(path)) for path in project_files()}
    assert layers == set(RANK)


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        # A lazy import inside a function counts as much as one at the top.
        ("models/x.py", "def f():\n    from consumers.mongo_sink import RAW\n", "consumers"),
        ("producers/x.py", "from streams.validate import parse_attempt\n", "streams"),
        ("consumers/x.py", "import producers.replay\n", "producers"),
        ("parivision/x.py", "from parivision import cli\n", "faces"),
        ("parivision/x.py", "from models import registry\n", "models"),
        ("infra/x.py", "from models.registry import Champion\n", "models"),
        ("streams/x.py", "from .. import consumers\n", "consumers"),
    ],
)
def test_an_import_up_or_across_is_caught(path: str, source: str, expected: str) -> None:
    [found] = violations(ROOT / path, source)
    assert found.endswith(f"({expected})")


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("parivision/cli/x.py", "from producers.replay import replay\nimport bench\n"),
        ("consumers/x.py", "from models import registry\nfrom parivision.store import RAW\n"),
        ("models/x.py", "from infra.mlflow_store import probe\nimport numpy\n"),
        ("streams/x.py", "from streams.flow import ShotFlow\n"),
    ],
)
def test_an_import_down_or_within_a_layer_is_allowed(path: str, source: str) -> None:
    assert violations(ROOT / path, source) == []
