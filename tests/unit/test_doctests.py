"""The hand-worked examples in the sources' docstrings run, every one, as tests.

A docstring example is a worked truth (a form value, a clock, a feature) written next to the code
it checks; one that never runs can drift from the code without anyone seeing.  Each module with
examples is one test here, failing with doctest's own report.
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil

import pytest

PACKAGES = ("parivision", "producers", "streams", "consumers", "models")
# Fewer than this would mean examples stopped being found (164 in 36 modules when this was written).
AT_LEAST = 150


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            if not info.name.endswith(".__main__"):  # importing it runs the command
                names.append(info.name)
    return sorted(names)


def _tests(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [test for test in finder.find(module, name) if test.examples]


WITH_EXAMPLES = [name for name in _modules() if _tests(name)]


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_the_examples_in_a_module_s_docstrings_hold(name):
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in _tests(name):
        runner.run(test, out=report.write)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, report.getvalue()


def test_the_sources_examples_are_all_found():
    examples = sum(len(test.examples) for name in WITH_EXAMPLES for test in _tests(name))
    print(f"\n{examples} docstring examples in {len(WITH_EXAMPLES)} modules")
    assert examples >= AT_LEAST
