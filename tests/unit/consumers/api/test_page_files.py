"""The court page's script as the browser loads it: ES modules, each fetched by its own path.

The module graph is followed from ``index.html``'s module script through every ``import``, as a
browser would, and each module is fetched from the app: a module missing, misnamed, or served
with a MIME type a browser refuses for a module script would leave the page blank.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import urljoin

import pytest
from fastapi.testclient import TestClient

from consumers.api import app as app_module
from consumers.api import create_app
from parivision.settings import Settings

STATIC = Path(app_module.__file__).resolve().parent / "static"
SCRIPT = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
# Static imports and re-exports: `import {a} from "./a.js"`, `import "./b.js"`, `export * from`.
IMPORT = re.compile(
    r"""^\s*(?:import\s+(?:[\w$*{}\s,]+?\s+from\s+)?"""
    r"""|export\s+(?:\*(?:\s+as\s+[\w$]+)?|\{[^}]*\})\s+from\s+)['"]([^'"]+)['"]""",
    re.MULTILINE,
)
JAVASCRIPT_TYPES = ("text/javascript", "application/javascript")


def _client(static: Path, tmp_path: Path, monkeypatch) -> TestClient:
    monkeypatch.setattr(app_module, "STATIC", static)
    settings = Settings(home=tmp_path / "home", mlflow_tracking_uri="http://registry.test:5000")
    # Not entered: nothing connects, the feed is not followed.
    return TestClient(create_app(settings, follow_feed=False), raise_server_exceptions=False)


def _entry_points(html: str) -> list[str]:
    """The ``src`` of every script in the page; each must be a module script."""
    found = []
    for attributes in SCRIPT.findall(html):
        src = re.search(r'src="([^"]+)"', attributes)
        assert src, f"an inline script in index.html: {attributes!r}"
        assert re.search(r'type="module"', attributes), f"not a module script: {attributes!r}"
        found.append(src.group(1))
    return found


def _walk(client: TestClient) -> tuple[dict[str, str], list[str]]:
    """Every module the page loads (path -> content type) and what is wrong with any of them."""
    page = client.get("/")
    assert page.status_code == 200
    todo = [urljoin("/", src) for src in _entry_points(page.text)]
    assert todo, "index.html loads no script"
    served: dict[str, str] = {}
    problems: list[str] = []
    while todo:
        path = todo.pop()
        if path in served:
            continue
        answer = client.get(path)
        kind = answer.headers.get("content-type", "")
        served[path] = kind
        if answer.status_code != 200:
            problems.append(f"{path}: HTTP {answer.status_code}")
            continue
        if not kind.startswith(JAVASCRIPT_TYPES):
            problems.append(f"{path}: served as {kind!r}, which a browser refuses for a module")
        for spec in IMPORT.findall(answer.text):
            # A browser resolves only relative or absolute paths; a bare name needs a build step.
            assert spec.startswith(("./", "../", "/")), f"{path} imports bare {spec!r}"
            todo.append(urljoin(path, spec))
    return served, problems


def test_every_module_the_page_imports_is_served_as_javascript(tmp_path, monkeypatch):
    served, problems = _walk(_client(STATIC, tmp_path, monkeypatch))
    assert problems == []
    # Every module in static/ is on the page's import graph: none is left behind unused.
    on_disk = {f"/static/{p.name}" for p in STATIC.glob("*.js")}
    assert set(served) == on_disk
    assert len(served) > 5  # the page is split into modules, not one script


def test_a_module_missing_from_the_graph_is_found(tmp_path, monkeypatch):
    broken = tmp_path / "static"
    shutil.copytree(STATIC, broken)
    (broken / "filters.js").unlink()
    _served, problems = _walk(_client(broken, tmp_path, monkeypatch))
    assert problems == ["/static/filters.js: HTTP 404"]


def test_the_page_is_fetched_again_on_each_load(tmp_path, monkeypatch):
    page = _client(STATIC, tmp_path, monkeypatch).get("/")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("path", ["/static/main.js", "/static/style.css"])
def test_the_page_s_files_are_revalidated_on_each_load(tmp_path, monkeypatch, path):
    client = _client(STATIC, tmp_path, monkeypatch)
    first = client.get(path)
    assert first.status_code == 200 and first.headers["cache-control"] == "no-cache"
    # Unchanged: a 304 without the body, still marked to be asked about next time.
    again = client.get(path, headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.headers["cache-control"] == "no-cache"
