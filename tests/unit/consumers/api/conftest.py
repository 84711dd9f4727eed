"""Fakes for the API's unit tests: a MongoDB collection that answers with what a test stored
and remembers what it was asked, so a route's query can be checked without a server."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest


class Cursor:
    """What ``find`` returns: the stored documents, ``sort`` and ``limit`` remembered."""

    def __init__(self, docs: list[dict[str, Any]], calls: dict[str, Any]) -> None:
        self.docs = docs
        self.calls = calls

    def sort(self, keys):
        self.calls["sort"] = keys
        return self

    def limit(self, count: int):
        self.calls["limit"] = count
        return Cursor(self.docs[:count], self.calls)

    def __iter__(self):
        return iter(self.docs)


class FakeCollection:
    """Answers ``find`` with ``docs`` as stored (it does not evaluate queries: each test stores
    what the query should find) and ``aggregate`` with ``groups``; every call is kept."""

    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []
        self.groups: list[dict[str, Any]] = []
        self.finds: list[dict[str, Any]] = []
        self.pipelines: list[list[dict[str, Any]]] = []

    def find(self, query=None, projection=None):
        calls = {"query": query, "projection": projection}
        self.finds.append(calls)
        return Cursor(list(self.docs), calls)

    def find_one(self, query=None, projection=None, sort=None):
        self.finds.append({"query": query, "projection": projection, "sort": sort})
        return self.docs[0] if self.docs else None

    def aggregate(self, pipeline):
        self.pipelines.append(pipeline)
        return iter(list(self.groups))


class FakeDb(defaultdict):
    """``db["shots"]`` is a :class:`FakeCollection`, made when first asked for."""

    def __init__(self, name: str = "parivision_test") -> None:
        super().__init__(FakeCollection)
        self.name = name


@pytest.fixture
def fake_db() -> FakeDb:
    return FakeDb()
