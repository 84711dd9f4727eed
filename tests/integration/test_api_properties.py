"""The live API keeps the promises of its own OpenAPI schema.

Two runs of schemathesis, each after a short real replay, so the history routes and the player
form read a database with shots in it:

- in-process (ASGI), valid and invalid requests for every operation but the admin routes: none
  may get a 5xx (a failure comes with the app's own traceback);
- the ``schemathesis run --checks all`` a user runs against ``parivision serve``: every status
  code, content type and body documented, valid requests accepted, invalid ones refused.

Generation is derandomized and bounded, so a run takes the same requests every time and a
failure reproduces.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from itertools import islice
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from pymongo import MongoClient
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup

from parivision.cli.serve import build_app
from parivision.settings import Settings
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
# Everything a client can call but admin: a route missing from the schema is untested.
CLIENT_ROUTES = {
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
}
# The command-line run: test cases per operation in each phase, and how long it may take.
CLI_EXAMPLES = 20
CLI_TIMEOUT_S = 420
# What the run is told beyond the schema, each for a reason the schema cannot carry:
# - OpenAPI gives each query parameter its own schema, with no rule across parameters, so a
#   clock the period does not have (/whatif: period 9 with 6:00 left) and dates that leave
#   nothing (/leaderboard: since after until; /shots: date_from after date_to, or a date with
#   a range) are valid to it, and a 422 naming the field
#   from the server, as the contract tests want.  Everything else in those requests is held
#   to the schema as for any other operation.
# - A shot is one of two layouts (oneOf), with the clock rule across three of its fields:
#   generating batches of them filters many drafts out, which Hypothesis's health check
#   reports as a problem of the test; it is not one of the API.
CLI_CONFIG = """
[[operations]]
include-name-regex = "^GET /(whatif|leaderboard|shots)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "404", "422", "503"]
"""


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


def _replayed(settings_factory, pipeline, games_csv, tmp_path) -> Settings:
    """Settings whose database holds :data:`SHOTS` real shots, scored and labelled."""
    settings = settings_factory(
        home=tmp_path,
        api_key="properties-key",
        virtualbets_csv=shared_file("virtualbets_sample_1000.csv"),
    )
    db = MongoClient(settings.mongodb())[settings.database()]
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
    return settings


def test_no_generated_request_gets_a_server_error(settings_factory, pipeline, games_csv, tmp_path):
    settings = _replayed(settings_factory, pipeline, games_csv, tmp_path)
    app = build_app(settings)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = list(_operations(schema))
    labels = {operation.label for operation in operations}
    assert labels >= CLIENT_ROUTES, sorted(labels)
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


def test_schemathesis_run_with_all_checks_finds_nothing(
    settings_factory, pipeline, api, games_csv, tmp_path
):
    """What a user runs against ``parivision serve``, every check on: it must come out clean.

    The admin routes are in the run, without the key: they must answer 401 whatever is sent
    (with the key they would move the session's champion).  Failures are listed by check, each
    with the request that shows it (``schemathesis`` prints a curl command for each).
    """
    settings = _replayed(settings_factory, pipeline, games_csv, tmp_path)
    reports = tmp_path / "schemathesis"
    (tmp_path / "schemathesis.toml").write_text(CLI_CONFIG)
    with api(settings) as base:
        started = time.monotonic()
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                f"{base}/openapi.json",
                "--checks=all",
                f"--max-examples={CLI_EXAMPLES}",
                "--seed=1",
                "--generation-deterministic",
                "--workers=1",
                "--suppress-health-check=filter_too_much",
                "--request-timeout=30",
                "--no-color",
                "--report=json",
                f"--report-dir={reports}",
            ],
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            cwd=tmp_path,  # reads CLI_CONFIG, and no schemathesis.toml of anyone else's
        )
        seconds = time.monotonic() - started
    output = f"{run.stdout[-20_000:]}\n{run.stderr[-3_000:]}"
    written = sorted(reports.glob("*.json"))
    assert written, f"schemathesis wrote no report (exit {run.returncode}):\n{output}"
    report = json.loads(written[-1].read_text())
    found = _found(report)
    assert run.returncode == 0 and not found, (
        f"schemathesis found {found or 'nothing it reported'} (exit {run.returncode}, "
        f"{seconds:.0f} s)\n{output}"
    )
    # It really ran: every operation in the schema was tested.
    operations = report["operations"]
    assert operations["tested"] == operations["selected"] > len(CLIENT_ROUTES), operations


def _found(report: dict) -> dict[str, str]:
    """Each kind of failure or error in a run report, with its count and operations."""
    found = {
        f"{f['code']} {f['title']}": f"{f['count']}x in {', '.join(f['operations'])}"
        for f in report["failures"]
    }
    for number, error in enumerate(report["errors"], 1):
        found[f"error {number}"] = str(error)[:500]
    return found
