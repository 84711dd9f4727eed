"""No request makes the live API fail: schemathesis generates requests from the app's own OpenAPI
schema, valid ones and invalid ones, for every operation but the admin routes, and none may get
a 5xx.

The app runs in-process (ASGI) on the real services, after a short real replay, so the history
routes and the player form read a database with shots in it.  Generation is derandomized and
bounded, so a run takes the same requests every time and a failure reproduces.
"""

from __future__ import annotations

from collections import Counter
from itertools import islice

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from pymongo import MongoClient
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup

from parivision.cli.serve import build_app
from parivision.sources.base import Source
from parivision.sources.csv_source import CsvSource
from producers.pacing import MaxPacer
from producers.replay import replay
from tests.conftest import shared_file
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration

SHOTS = 200
EXAMPLES = 50  # per operation and generation mode
SKIPPED_PREFIXES = ("/admin",)  # they change the registry; test_api_contract covers them


class ServerErrors(AssertionError):
    """Requests the API failed on (so an expected failure cannot hide a broken setup)."""


class Shots(Source):
    name = "api-properties"

    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)


def _operations(schema):
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith(SKIPPED_PREFIXES):
            yield operation


def _run(operation, mode: GenerationMode, sent: Counter) -> str | None:
    """The failure schemathesis reports for this operation and mode, or None; counts the
    requests sent in ``sent``."""

    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        sent[operation.label, mode.value] += 1
        try:
            case.call_and_validate(checks=[not_a_server_error])
        except (Exception, FailureGroup) as error:  # a 5xx, or the app raised: say which request
            error.add_note(f"request: {case.as_curl_command()}")
            raise

    try:
        check()
    except (Exception, FailureGroup) as error:  # Hypothesis re-raises the smallest failing case
        notes = [n for n in getattr(error, "__notes__", []) if n.startswith("request: ")]
        return "\n".join([f"{type(error).__name__}: {error}", *notes[-1:]])
    return None


def _modes(operation) -> list[GenerationMode]:
    """Invalid requests need something to make invalid: a parameter or a body."""
    if any(True for _ in operation.iter_parameters()) or operation.body:
        return [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    return [GenerationMode.POSITIVE]


def test_no_generated_request_gets_a_server_error(settings_factory, pipeline, games_csv, tmp_path):
    settings = settings_factory(
        home=tmp_path,
        api_key="properties-key",
        virtualbets_csv=shared_file("virtualbets_sample_1000.csv"),
    )
    db = MongoClient(settings.mongodb())[settings.mongodb_database]
    items = list(islice(CsvSource(games_csv), SHOTS))
    with pipeline(settings):
        replay(settings, Shots(items), pacer=MaxPacer(), show_progress=False)
        wait_until(
            lambda: (
                db.predictions.count_documents({"outcome": {"$exists": True}}) == SHOTS
                or db.predictions.count_documents({})
            ),
            180,
            f"{SHOTS} labelled predictions",
        )

    app = build_app(settings)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = list(_operations(schema))
    labels = {operation.label for operation in operations}
    # Everything a client can call except admin: a route missing from the schema is untested.
    assert {
        "POST /predict",
        "POST /predict/batch",
        "GET /whatif",
        "GET /shots",
        "GET /games/{game_id}",
        "GET /players/{player_id}",
        "GET /leaderboard",
        "GET /models",
        "GET /models/champion",
        "GET /health",
        "GET /live/recent",
        "GET /getdata/{n}",
        "GET /reset",
    } <= labels, sorted(labels)
    failures, sent = {}, Counter()
    try:
        for operation in operations:
            for mode in _modes(operation):
                failure = _run(operation, mode, sent)
                if failure is not None:
                    failures[f"{operation.label} ({mode.value})"] = failure
    finally:
        from schemathesis.python.asgi import shutdown_lifespans

        shutdown_lifespans()  # the app's feed and model threads
    # Every operation was really called, in each mode it has.
    assert set(sent) == {(o.label, m.value) for o in operations for m in _modes(o)}, sent
    if failures:
        raise ServerErrors("\n\n".join(f"== {k}\n{v}" for k, v in failures.items()))
