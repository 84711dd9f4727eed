"""The README stays a front page and the documentation site stays whole.

The README opens with the two commands a newcomer runs and stays short; everything else lives on
the pages of ``docs/``, built by ``make docs`` (``mkdocs build --strict``, run by CI, not here).
These checks catch what a reader would hit first without building the site: a page the
navigation names that is not there, and a link to a file or a section that is not there.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 150
TWO_COMMANDS = "make demo\nmake test"
# Files the docs build writes itself (docs/hooks/openapi.py), so a link to them has no file here.
GENERATED = {DOCS / "openapi.json"}

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def without_code(text: str) -> str:
    """Markdown with its fenced blocks and code spans removed: links there are not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """The anchor Python-Markdown's table of contents gives a heading (its default slugify)."""
    text = re.sub(r"[`*]", "", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading: its words
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(page: Path) -> set[str]:
    return {slug(heading) for heading in HEADING.findall(FENCE.sub("", page.read_text()))}


def broken_links(page: Path) -> list[str]:
    """Each relative link of ``page`` whose file, or section of a Markdown file, is missing."""
    broken = []
    for target in LINK.findall(without_code(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if file in GENERATED:
            continue
        if not file.exists():
            broken.append(f"{target}: no file {file.relative_to(ROOT)}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading with anchor #{anchor} in {file.name}")
    return broken


def nav_pages(nav) -> list[str]:
    """Every page file named in mkdocs.yml's ``nav``, however deep."""
    if isinstance(nav, str):
        return [] if re.match(r"[a-z]+://", nav) else [nav]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    return [page for item in nav for page in nav_pages(item)]


def test_the_readme_is_a_front_page_of_at_most_150_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines; keep it under {README_MAX_LINES} and move the rest "
        "to a page under docs/ (mkdocs.yml's nav)"
    )


def test_the_readme_opens_with_the_two_commands():
    text = README.read_text()
    first_block = FENCE.search(text)
    assert first_block is not None, "README.md has no code block"
    body = first_block.group(0).split("\n", 1)[1].rsplit("\n", 1)[0]
    assert body == TWO_COMMANDS, f"README.md's first code block is not the two commands:\n{body}"
    before = text[: first_block.start()]
    assert "\n## " not in before, "a section comes before the two commands in README.md"
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test"):
        assert re.search(rf"^{target}:", makefile, re.M), f"make {target} is not a Makefile target"


def test_getting_started_in_the_docs_opens_with_the_same_two_commands():
    first_block = FENCE.search((DOCS / "getting-started.md").read_text())
    assert first_block is not None
    assert first_block.group(0).split("\n", 1)[1].rsplit("\n", 1)[0] == TWO_COMMANDS


def test_every_page_in_the_docs_nav_exists_and_every_page_is_in_it():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    named = nav_pages(config["nav"])
    missing = [page for page in named if not (DOCS / page).is_file()]
    assert not missing, f"mkdocs.yml's nav names pages that are not in docs/: {missing}"
    left_out = sorted({page.name for page in pages()} - set(named))
    assert not left_out, f"pages in docs/ that mkdocs.yml's nav leaves out: {left_out}"
    assert "claims.md" in named


@pytest.mark.parametrize("page", [README, *pages()], ids=lambda page: page.name)
def test_every_relative_link_in_the_readme_and_docs_points_at_a_file_and_section(page):
    assert not broken_links(page)


def test_the_claims_table_points_at_pages_not_readme_lines():
    text = (DOCS / "claims.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "::" in line]
    assert rows, "docs/claims.md has no claim rows"
    stale = [row[:60] for row in rows if re.match(r"\| L\d+ \|", row)]
    assert not stale, f"rows still anchored to README line numbers: {stale}"
    unplaced = [row[:60] for row in rows if not re.match(r"\| \[[^\]]+\]\([a-z-]+\.md", row)]
    assert not unplaced, f"rows whose first column links to no page: {unplaced}"


def test_the_docs_link_check_sees_a_missing_file_and_a_missing_section(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "there.md").write_text("# There\n\n## A section, with `code`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok](there.md#a-section-with-code) [ok](#here) [web](https://x.org/y)\n"
        "`[not a link](nowhere.md)`\n\n```\n[not a link](nowhere.md)\n```\n\n## Here\n\n"
        "[gone](nowhere.md) ![gone](missing.png) [gone](there.md#no-such-section)\n"
    )
    assert broken_links(page) == [
        "nowhere.md: no file nowhere.md",
        "missing.png: no file missing.png",
        "there.md#no-such-section: no heading with anchor #no-such-section in there.md",
    ]
