"""The live API's contract (``docs/api.md``) on the real services.

One replay of 600 real shots (the last 300 of one game day and the first 300 of the next) goes
through the real stream worker and sink into MongoDB, with the app already following
``shots.scored``; every test then asks the same in-process app (FastAPI's ``TestClient``) and
checks its answers against what the stream stored.  The key check: for a stored shot the API's
player form is the one the stream computed for it.  Admin routes get a model of their own, so
promoting and rolling back never touch the session's champion.
"""

from __future__ import annotations

import csv
import math
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from pymongo import MongoClient

from consumers.api import create_app
from consumers.api.history import game_order
from models import registry
from models.features import CATEGORICAL, FEATURE_NAMES, FEATURE_SET, build_features
from models.form import FORM_NAMES
from parivision.cli.serve import build_app
from parivision.rows import row_to_shot
from parivision.schemas import CSV_COLUMNS
from parivision.settings import Settings
from parivision.sources.base import Source
from parivision.sources.csv_source import CsvSource
from producers.pacing import MaxPacer
from producers.replay import replay
from tests.conftest import shared_file
from tests.integration.conftest import copy_champion, make_settings, wait_until

pytestmark = pytest.mark.integration

KEY = "contract-test-key"
HALF = 300  # shots replayed on each side of a game-day boundary
CLOSED = "127.0.0.1:1"  # nothing listens on port 1


class Shots(Source):
    name = "api-contract"

    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)


@dataclass
class Store:
    """The seeded deployment every test reads."""

    settings: Settings
    client: TestClient
    db: Any
    rows: list[dict[str, str]]  # the replayed CSV rows as the file has them (strings)
    replay_id: str
    dates: tuple[int, int]


def _settings(services, **overrides) -> Settings:
    """What ``settings_factory`` gives, for module-scoped fixtures (it is function-scoped)."""
    return make_settings(services, **overrides)


def _boundary_rows(games_csv: Path) -> tuple[int, list[dict[str, str]]]:
    """Where the first game day ends in the file, and the HALF rows either side of it."""
    with open(games_csv, newline="") as handle:
        rows = list(islice(csv.DictReader(handle), 5000))
    cut = next(i for i in range(1, len(rows)) if rows[i]["Game Date"] != rows[i - 1]["Game Date"])
    assert cut >= HALF, "the first game day is too short for this test"
    return cut - HALF, rows[cut - HALF : cut + HALF]


@pytest.fixture(scope="module")
def store(services, champion_version, games_csv) -> Iterator[Store]:
    from parivision.cli.processes import start_process, stop_process, wait_for_group
    from parivision.topics import ensure_topics

    endpoints, _ = services
    settings = _settings(services, api_key=KEY)
    first, rows = _boundary_rows(games_csv)
    items = list(islice(CsvSource(games_csv), first, first + 2 * HALF))
    assert [i.shot["shot_id"] for i in items] == [row_to_shot(r)[0]["shot_id"] for r in rows]
    db = MongoClient(settings.mongodb())[settings.database()]

    ensure_topics(settings)
    processes = {
        "stream": start_process(settings, endpoints, "stream", "api-contract-stream.log"),
        "sink": start_process(settings, endpoints, "sink", "api-contract-sink.log"),
    }
    try:
        wait_for_group(settings, settings.stream_group(), processes)
        wait_for_group(settings, settings.sink_consumer_group(), processes)
        with TestClient(build_app(settings), raise_server_exceptions=False) as client:
            wait_until(
                lambda: client.get("/health").json()["live"]["following"] or "not yet",
                60,
                "the API to follow shots.scored",
            )
            stats = replay(settings, Shots(items), pacer=MaxPacer(), show_progress=False)
            assert stats.produced == stats.outcomes == 2 * HALF
            labelled = {"outcome": {"$exists": True}}
            wait_until(
                lambda: (
                    db.predictions.count_documents(labelled) == 2 * HALF
                    or db.predictions.count_documents(labelled)
                ),
                180,
                f"{2 * HALF} labelled predictions in MongoDB",
            )
            hub = client.app.state.hub  # every scored and labelled record, as the feed saw it
            wait_until(
                lambda: hub.published >= 4 * HALF or hub.published, 60, "the live feed to see them"
            )
            # The stream saves its online learners when it stops; the API reads them from there.
            for process in processes.values():
                stop_process(process)
            wait_until(
                lambda: bool(client.get("/health").json()["online_learners"]) or "none yet",
                60,
                "the API to load the stream's online learners",
            )
            dates = (int(rows[0]["Game Date"]), int(rows[-1]["Game Date"]))
            yield Store(settings, client, db, rows, stats.replay_id, dates)
    finally:
        for process in processes.values():
            stop_process(process)


# --- helpers -------------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    """Equal values, where NaN, a missing value and null are all "no value"."""

    def absent(value: Any) -> bool:
        return value is None or (isinstance(value, float) and math.isnan(value))

    if absent(a) or absent(b):
        return absent(a) and absent(b)
    return a == pytest.approx(b, rel=1e-12, abs=1e-12)


def _raw(db, shot_id: str) -> dict[str, Any]:
    return db.shots_raw.find_one({"shot_id": shot_id}, {"_id": 0, "received_at": 0})


def _typed(row: dict[str, str]) -> dict[str, Any]:
    """A VirtualBets record with JSON numbers where the columns are integers."""
    shot, _ = row_to_shot(row)
    return {
        column: (shot[field] if isinstance(shot.get(field), int) else value)
        for column, value in row.items()
        for field in [CSV_COLUMNS[column]]
    }


def _snake(row: dict[str, str]) -> dict[str, Any]:
    """The same shot in the project's schema, without a shot id (the API derives it)."""
    shot, _ = row_to_shot(row)
    shot.pop("shot_id")
    return shot


def _assert_answer(answer: dict[str, Any], champion: str) -> None:
    p = answer["probability"]
    assert 0 < p < 1
    assert answer["fair_odds"] == pytest.approx(1 / p, rel=1e-12)
    assert answer["shot_value"] in (2, 3)
    assert answer["expected_points"] == pytest.approx(p * answer["shot_value"], rel=1e-12)
    assert answer["model"]["version"] == champion
    assert answer["model"]["name"] and answer["model"]["feature_set"] == FEATURE_SET
    assert list(answer["form"]) == list(FORM_NAMES) and len(answer["form"]) == 9
    assert {"shots", "last_shot_id", "last_game_date", "as_of"} <= set(answer["form_history"])
    assert isinstance(answer["warnings"], list)


def _errors(response) -> list[dict[str, Any]]:
    assert response.status_code == 422, (response.status_code, response.text)
    detail = response.json()["detail"]
    assert detail and all({"loc", "msg", "type"} <= set(item) for item in detail)
    return detail


def _all_pages(client, params: dict[str, Any], limit: int = 1000) -> list[dict[str, Any]]:
    shots, cursor, pages = [], None, 0
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get("/shots", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["shots"]) <= limit
        shots.extend(body["shots"])
        cursor = body["next_cursor"]
        pages += 1
        assert pages < 10_000
        if cursor is None:
            return shots


def _ids(docs) -> list[str]:
    return [d["shot_id"] for d in docs]


# --- POST /predict -------------------------------------------------------------------------


def test_a_virtualbets_record_as_strings_typed_and_in_the_shot_schema_gets_one_answer(
    store, champion_version
):
    row = store.rows[len(store.rows) // 2 + 40]
    stored = store.db.predictions.find_one({"shot_id": row_to_shot(row)[0]["shot_id"]})
    answers = []
    no_flag = {k: v for k, v in row.items() if k != "Shot Made Flag"}
    for body in (row, _typed(row), _snake(row), no_flag):
        response = store.client.post("/predict", json=body)
        assert response.status_code == 200, response.text
        answers.append(response.json())
    first = answers[0]
    _assert_answer(first, champion_version)
    assert first["shot_id"] == stored["shot_id"]
    assert (first["player_id"], first["game_id"]) == (int(row["Player ID"]), int(row["Game ID"]))
    assert first["shot_value"] == (3 if row["Shot Type"].startswith("3") else 2)
    for other in answers[1:]:
        assert other == first
    # The stream's learners, as the stream saved them when it stopped.
    assert set(first["online"]) == {"bias", "on_champion"}
    assert all(0 < p < 1 for p in first["online"].values())
    # A stored shot gets the form the stream computed for it, hence the stream's probability.
    assert first["form_history"]["as_of"] == "before this shot"
    assert first["probability"] == pytest.approx(stored["p_champion"], rel=1e-9)
    # The made flag is not an input.
    flipped = {**row, "Shot Made Flag": "1" if row["Shot Made Flag"] == "0" else "0"}
    assert store.client.post("/predict", json=flipped).json() == first
    with_features = store.client.post("/predict?features=true", json=row).json()
    assert set(with_features["features"]) <= set(FEATURE_NAMES)
    assert with_features["probability"] == first["probability"]


def test_for_every_stored_shot_the_form_is_the_one_the_stream_stored(store, champion_version):
    raw = {d["shot_id"]: d for d in store.db.shots_raw.find({}, {"_id": 0, "received_at": 0})}
    features = {d["shot_id"]: d["features"] for d in store.db.shots.find({}, {"_id": 0})}
    p_stream = {d["shot_id"]: d["p_champion"] for d in store.db.predictions.find({})}
    assert len(raw) == len(features) == len(p_stream) == 2 * HALF
    ids = sorted(raw)
    random.Random(7).shuffle(ids)
    response = store.client.post("/predict/batch", json={"shots": [raw[i] for i in ids]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["version"] == champion_version
    answers = body["predictions"]
    assert [a["shot_id"] for a in answers] == ids  # input order
    mismatched = []
    for answer in answers:
        _assert_answer(answer, champion_version)
        stored = features[answer["shot_id"]]
        wrong = {
            name: (value, stored.get(name))
            for name, value in answer["form"].items()
            if not _same(value, stored.get(name))
        }
        if wrong:
            mismatched.append((answer["shot_id"], wrong))
        assert answer["form_history"]["as_of"] == "before this shot"
    assert not mismatched, f"{len(mismatched)} shots differ, e.g. {mismatched[:3]}"
    # Same form and shot, same champion: the stream's own probability.
    assert [a["probability"] for a in answers] == pytest.approx([p_stream[i] for i in ids])
    # Some players shot many times: the check covers real histories, not only first shots.
    assert max(a["form_history"]["shots"] for a in answers) >= 10

    # One shot at a time answers the same as the batch.
    for answer in answers[:25]:
        single = store.client.post("/predict", json=raw[answer["shot_id"]])
        assert single.status_code == 200
        assert single.json() == {**answer, "model": body["model"]}


def test_a_new_shot_gets_the_form_after_every_stored_shot_of_its_player(store, champion_version):
    player = store.db.predictions.aggregate(
        [{"$group": {"_id": "$player_id", "n": {"$sum": 1}}}, {"$sort": {"n": -1}}, {"$limit": 1}]
    ).next()
    player_id, shots = player["_id"], player["n"]
    latest = max(store.db.predictions.find({"player_id": player_id}), key=game_order)
    raw = _raw(store.db, latest["shot_id"])
    later = {k: v for k, v in raw.items() if k != "shot_id"}  # the API derives the id
    later |= {"game_event_id": 9999, "period": 4, "seconds_remaining": 0}
    answer = store.client.post("/predict", json=later).json()
    _assert_answer(answer, champion_version)
    assert answer["shot_id"] == f"{raw['game_id']}-9999"
    history = answer["form_history"]
    assert history["as_of"] == "now" and history["shots"] == shots
    assert history["last_shot_id"] == latest["shot_id"]
    assert history["last_game_date"] == latest["game_date"]
    assert answer["form"]["player_log_shots_before"] == pytest.approx(math.log1p(shots))
    assert answer["form"]["game_shots_before"] > 0  # same game as the player's last shot


def test_an_unknown_player_gets_the_form_of_a_first_shot_and_no_player_page(
    store, champion_version
):
    row = {**store.rows[0], "Player ID": "999999001", "Player Name": "Nobody Yet"}
    response = store.client.post("/predict", json=row)
    assert response.status_code == 200, response.text
    answer = response.json()
    _assert_answer(answer, champion_version)
    assert answer["form_history"] == {
        "shots": 0,
        "last_shot_id": None,
        "last_game_date": None,
        "as_of": "now",
    }
    assert answer["form"]["player_log_shots_before"] == 0.0
    missing = store.client.get("/players/999999001")
    assert missing.status_code == 404
    assert "999999001" in missing.json()["detail"]


def test_a_batch_keeps_input_order_and_equals_single_predictions(store, champion_version):
    rows = store.rows[::37]
    # Both layouts, strings and typed, in one batch, and a player with no history.
    mixed = [[row, _typed(row), _snake(row)][i % 3] for i, row in enumerate(rows)]
    mixed.insert(3, {**_snake(rows[0]), "player_id": 999999002})
    body = store.client.post("/predict/batch", json={"shots": mixed}).json()
    singles = [store.client.post("/predict", json=shot).json() for shot in mixed]
    assert [a["shot_id"] for a in body["predictions"]] == [s["shot_id"] for s in singles]
    assert body["predictions"] == singles
    assert body["model"] == singles[0]["model"]


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"X Location": "far left"}, ["body", "X Location"]),
        ({"Period": 1.5}, ["body", "Period"]),
        ({"Game Date": True}, ["body", "Game Date"]),
        ({"X Location": "400"}, ["body", "X Location"]),
        ({"Y Location": -300}, ["body", "Y Location"]),
        ({"Shot Type": "4PT Field Goal"}, ["body", "Shot Type"]),
        ({"Player ID": "0"}, ["body", "Player ID"]),
        ({"Player ID": None}, ["body", "Player ID"]),
    ],
    ids=[
        "text-x",
        "float-period",
        "bool-date",
        "off-court-x",
        "off-court-y",
        "shot-type",
        "player-0",
        "player-null",
    ],
)
def test_a_bad_virtualbets_record_is_422_naming_its_column(store, change, loc):
    body = {**store.rows[0], **change}
    errors = _errors(store.client.post("/predict", json=body))
    assert loc in [e["loc"] for e in errors], errors


@pytest.mark.parametrize("column", ["Player ID", "Shot Type", "X Location"])
def test_a_virtualbets_record_missing_a_column_is_422_naming_it(store, column):
    body = {k: v for k, v in store.rows[0].items() if k != column}
    errors = _errors(store.client.post("/predict", json=body))
    assert ["body", column] in [e["loc"] for e in errors], errors


def test_a_virtualbets_record_without_an_event_id_gets_the_derived_id(store):
    body = {k: v for k, v in store.rows[0].items() if k != "Game Event ID"}
    answer = store.client.post("/predict", json=body)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json()["shot_id"].startswith(f"{body['Game ID']}-h")


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"x": "far left"}, ["body", "x"]),
        ({"x": 400}, ["body", "x"]),
        ({"y": 941}, ["body", "y"]),
        ({"period": 0}, ["body", "period"]),
        ({"seconds_remaining": 60}, ["body", "seconds_remaining"]),
        ({"game_date": "yesterday"}, ["body", "game_date"]),
        ({"player_id": -3}, ["body", "player_id"]),
        ({"shot_type": None}, ["body", "shot_type"]),
    ],
    ids=[
        "text-x",
        "off-court-x",
        "off-court-y",
        "period-0",
        "seconds-60",
        "text-date",
        "negative-player",
        "null-shot-type",
    ],
)
def test_a_bad_shot_in_the_shot_schema_is_422_naming_its_field(store, change, loc):
    body = {**_snake(store.rows[0]), **change}
    errors = _errors(store.client.post("/predict", json=body))
    assert loc in [e["loc"] for e in errors], errors


@pytest.mark.parametrize("field", ["player_id", "game_id", "x", "shot_zone_basic", "game_date"])
def test_a_shot_missing_a_field_is_422_naming_it(store, field):
    body = {k: v for k, v in _snake(store.rows[0]).items() if k != field}
    errors = _errors(store.client.post("/predict", json=body))
    assert ["body", field] in [e["loc"] for e in errors], errors


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"\xff\xfe", b"null", b"[]", b"[{}]", b'"a shot"', b"42", b"{}"],
    ids=[
        "empty",
        "broken",
        "binary",
        "null",
        "array",
        "array-of-object",
        "string",
        "number",
        "empty-object",
    ],
)
def test_a_body_that_is_not_a_shot_object_is_422_not_500(store, content):
    for path in ("/predict", "/predict/batch"):
        response = store.client.post(
            path, content=content, headers={"content-type": "application/json"}
        )
        errors = _errors(response)
        assert errors[0]["loc"][0] == "body"


def test_batches_out_of_bounds_or_with_a_bad_shot_are_422_naming_the_shot(store):
    post = store.client.post
    assert _errors(post("/predict/batch", json={"shots": []}))[0]["loc"] == ["body", "shots"]
    assert _errors(post("/predict/batch", json={"shot": [store.rows[0]]}))[0]["loc"] == [
        "body",
        "shots",
    ]
    assert _errors(post("/predict/batch", json={"shots": store.rows[0]}))[0]["loc"] == [
        "body",
        "shots",
    ]
    too_many = {"shots": [_snake(store.rows[0])] * 10_001}
    errors = _errors(post("/predict/batch", json=too_many))
    assert errors[0]["loc"] == ["body", "shots"] and "10,001" in errors[0]["msg"]
    # 10,000 is allowed.
    at_most = post("/predict/batch", json={"shots": too_many["shots"][:10_000]})
    assert at_most.status_code == 200 and len(at_most.json()["predictions"]) == 10_000

    # Nothing in it to score: refused whole, every shot's problem named.
    shots = [_snake(r) for r in store.rows[:3]]
    shots[0] = {**shots[0], "x": 400}
    shots[1] = {k: v for k, v in store.rows[5].items() if k != "Shot Zone Basic"}
    shots[2] = "not a shot"
    locs = [e["loc"] for e in _errors(post("/predict/batch", json={"shots": shots}))]
    assert ["body", "shots", 0, "x"] in locs
    assert ["body", "shots", 1, "Shot Zone Basic"] in locs
    assert ["body", "shots", 2] in locs


HUGE = 10**20  # more than MongoDB's 8-byte integers hold


def _odd_requests(store) -> dict[str, tuple[str, str, dict[str, Any]]]:
    row, shot = store.rows[0], _snake(store.rows[0])
    return {
        "game-page": ("get", f"/games/{HUGE}", {}),
        "player-page": ("get", f"/players/{HUGE}", {}),
        "shots-game": ("get", "/shots", {"params": {"game_id": HUGE}}),
        "shots-player": ("get", "/shots", {"params": {"player_id": HUGE}}),
        "shots-team-id": ("get", "/shots", {"params": {"team": str(HUGE)}}),
        "shots-team-digit": ("get", "/shots", {"params": {"team": "\u00b2"}}),
        "leaderboard-game": ("get", "/leaderboard", {"params": {"game_id": HUGE}}),
        "whatif-player": ("get", "/whatif", {"params": {"player_id": HUGE, "x": 0, "y": 0}}),
        "live-team-digit": ("get", "/live/recent", {"params": {"team": "\u00b2"}}),
        "predict-player": ("post", "/predict", {"json": {**row, "Player ID": str(HUGE)}}),
        "predict-game": ("post", "/predict", {"json": {**shot, "game_id": HUGE}}),
        "predict-game-text": ("post", "/predict", {"json": {**row, "Game ID": str(2**64)}}),
        "whatif-game": (
            "get",
            "/whatif",
            {"params": {"player_id": 202, "x": 202, "y": 202, "game_id": 2**64}},
        ),
        "predict-team": ("post", "/predict", {"json": {**shot, "team_id": HUGE}}),
    }


def _odd(name: str):
    return pytest.param(name, id=name)


@pytest.mark.parametrize(
    "name",
    [
        _odd("game-page"),
        _odd("player-page"),
        _odd("shots-game"),
        _odd("shots-player"),
        _odd("shots-team-id"),
        _odd("shots-team-digit"),
        _odd("leaderboard-game"),
        _odd("whatif-player"),
        _odd("live-team-digit"),
        _odd("predict-player"),
        _odd("predict-game"),  # 422: JSON numbers this big are refused
        _odd("predict-game-text"),
        _odd("whatif-game"),  # found by test_api_properties
        _odd("predict-team"),
    ],
)
def test_out_of_range_ids_and_odd_digits_are_answered_not_500(store, name):
    method, path, kwargs = _odd_requests(store)[name]
    response = getattr(store.client, method)(path, **kwargs)
    assert response.status_code < 500, (method, path, kwargs, response.text[:300])


# --- GET /whatif ---------------------------------------------------------------------------


def test_whatif_builds_the_shot_that_predict_answers_the_same(store, champion_version):
    doc = store.db.predictions.find_one({}, sort=[("scored_at", -1), ("shot_id", -1)])
    for x, y, kind in ((0, 10, "2PT Field Goal"), (-230, 20, "3PT Field Goal"), (40, 180, None)):
        response = store.client.get(
            "/whatif", params={"player_id": doc["player_id"], "x": x, "y": y}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        shot, prediction = body["shot"], body["prediction"]
        assert (shot["player_id"], shot["x"], shot["y"]) == (doc["player_id"], x, y)
        assert shot["team_id"] and shot["game_id"] and shot["game_date"]
        if kind:
            assert shot["shot_type"] == kind
        _assert_answer(prediction, champion_version)
        # Over the mix of actions from that zone: the weighted mean of each action's answer,
        # the first of them what /predict gives for the shot returned.
        mix = prediction["action_mix"]["actions"]
        assert abs(sum(a["share"] for a in mix) - 1) < 1e-9
        weighted = sum(a["share"] * a["probability"] for a in mix)
        assert prediction["probability"] == pytest.approx(weighted, rel=1e-12)
        again = store.client.post("/predict", json=shot).json()
        assert again["probability"] == mix[0]["probability"]
        assert shot["action_type"] == mix[0]["action_type"]
        # One action asked: /predict gives the same answer, whole.
        one = store.client.get(
            "/whatif",
            params={"player_id": doc["player_id"], "x": x, "y": y, "action_type": "Jump Shot"},
        ).json()
        assert "action_mix" not in one["prediction"]
        assert store.client.post("/predict", json=one["shot"]).json() == one["prediction"]
    # The mix is the store's own: the actions taken from the zone, by how often (the league's
    # here: no player of this store has 20 shots from the restricted area).
    rim = store.client.get("/whatif", params={"player_id": doc["player_id"], "x": 0, "y": 0})
    mix = rim.json()["prediction"]["action_mix"]
    there = Counter(
        d["action_type"] for d in store.db.predictions.find({"shot_zone_basic": "Restricted Area"})
    )
    top = sorted(there.items(), key=lambda item: (-item[1], item[0]))[: len(mix["actions"])]
    assert mix["whose"] == "league"
    assert [a["action_type"] for a in mix["actions"]] == [a for a, _ in top]
    total = sum(n for _, n in top)
    assert [a["share"] for a in mix["actions"]] == pytest.approx([n / total for _, n in top])

    unknown = store.client.get("/whatif", params={"player_id": 999999003, "x": 0, "y": 100})
    assert unknown.status_code == 404 and "game_date" in unknown.json()["detail"]
    # A game the store never saw, without a date: 404, as for a player (the request is right).
    game = store.client.get(
        "/whatif", params={"player_id": doc["player_id"], "x": 0, "y": 100, "game_id": 123456}
    )
    assert game.status_code == 404 and "game_date" in game.json()["detail"]
    asked = store.client.get(
        "/whatif", params={"player_id": 999999003, "x": 0, "y": 100, "game_id": doc["game_id"]}
    )
    assert asked.status_code == 200
    assert asked.json()["prediction"]["form_history"]["shots"] == 0
    off = store.client.get("/whatif", params={"player_id": doc["player_id"], "x": 400, "y": 0})
    assert ["query", "x"] in [e["loc"] for e in _errors(off)]


def test_whatif_prices_an_explicit_moment_near_the_league_s_real_rates(store, champion_version):
    """Clicked at the rim and above the break for every stored player, the what-if's mean is
    the make rate of the stored shots from there (the truth the model never computed), not
    the 27% / 13% a reused clock gave (secs_since_prev_in_game 0 with 16 earlier shots)."""
    shots = list(store.db.predictions.find({}, {"_id": 0}))
    players = sorted({d["player_id"] for d in shots})
    for zone, (x, y) in (("Restricted Area", (0, 10)), ("Above the Break 3", (0, 260))):
        real = [d["outcome"] for d in shots if d["shot_zone_basic"] == zone]
        priced = []
        for player in players:
            body = store.client.get("/whatif", params={"player_id": player, "x": x, "y": y}).json()
            context, form = body["context"], body["prediction"]["form"]
            # The default moment, said: a new game, period 1, 6:00 left, the player's season.
            assert (context["game_id"], context["period"], context["clock"]) == (None, 1, "6:00")
            assert context["season_type"] == "Regular Season" and "game_id" in context["defaulted"]
            assert form["game_shots_before"] == 0 and form["secs_since_prev_in_game"] is None
            priced.append(body["prediction"]["probability"])
        mean, rate = sum(priced) / len(priced), sum(real) / len(real)
        assert abs(mean - rate) < 0.08, (zone, mean, rate, len(real))


def test_whatif_in_a_stored_game_sees_only_the_shots_before_its_moment(store, champion_version):
    docs = list(store.db.predictions.find({}, {"_id": 0}))
    counts = Counter(d["player_id"] for d in docs)
    player = max(counts, key=counts.get)
    mine = sorted((d for d in docs if d["player_id"] == player), key=game_order)
    game = mine[-1]["game_id"]
    in_game = [d for d in mine if d["game_id"] == game]
    before_game = [d for d in mine if d["game_date"] < in_game[0]["game_date"]]
    params = {"player_id": player, "x": 0, "y": 100, "game_id": game, "period": 1}
    early = store.client.get("/whatif", params={**params, "minutes_remaining": 12}).json()
    # 12:00 left in the first period: none of this game's shots came before.
    assert early["prediction"]["form_history"]["shots"] == len(before_game)
    assert early["prediction"]["form"]["game_shots_before"] == 0
    assert early["context"]["game_date"] == in_game[0]["game_date"]
    late = store.client.get(
        "/whatif", params={**params, "period": 4, "minutes_remaining": 0, "seconds_remaining": 0}
    ).json()
    assert late["prediction"]["form"]["game_shots_before"] == len(in_game)
    assert late["prediction"]["form"]["secs_since_prev_in_game"] >= 0
    # A playoff game id says "Playoffs"; the season type can also be given.
    playoff = store.client.get(
        "/whatif", params={**params, "game_id": 41800101, "game_date": 20190413}
    ).json()
    assert playoff["context"]["season_type"] == "Playoffs"
    assert playoff["shot"]["season_type"] == "Playoffs"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": 2, "minutes_remaining": 12, "seconds_remaining": 30}, "seconds_remaining"),
        ({"period": 5, "minutes_remaining": 7}, "minutes_remaining"),
        ({"game_date": 20190231}, "game_date"),
        ({"season_type": "Summer League"}, "season_type"),
    ],
)
def test_an_impossible_what_if_moment_is_422_naming_the_field(store, params, field):
    player = store.db.predictions.find_one({})["player_id"]
    response = store.client.get("/whatif", params={"player_id": player, "x": 0, "y": 50, **params})
    assert field in [e["loc"][-1] for e in _errors(response)]


def test_a_past_shot_is_scored_with_the_form_before_it(store, champion_version):
    """A backtest through /predict: a shot dated before the store's later day gets the form of
    the earlier shots only."""
    first_day, last_day = store.dates
    late = store.db.predictions.find_one({"game_date": last_day})
    earlier = store.db.predictions.count_documents(
        {"player_id": late["player_id"], "game_date": {"$lt": last_day}}
    )
    asked = {**_snake(store.rows[0]), "player_id": late["player_id"], "game_date": first_day}
    asked["game_id"] = 21899999  # a game not stored, on the first day
    answer = store.client.post("/predict", json=asked).json()
    assert answer["form_history"]["shots"] <= earlier
    assert (answer["form_history"]["last_game_date"] or 0) <= first_day
    now = store.client.post("/predict", json={**asked, "game_date": last_day + 1}).json()
    assert now["form_history"]["as_of"] == "now"
    assert now["form_history"]["shots"] >= earlier + 1


def test_inputs_the_model_would_misread_are_priced_a_stated_way(store, champion_version):
    base = _snake(store.rows[0])
    at_rim = {**base, "x": 0, "y": 5, "shot_distance": 0, "shot_type": "2PT Field Goal"}
    zones = ("shot_zone_basic", "shot_zone_area", "shot_zone_range")
    at_rim.update(zip(zones, _zones(0, 5), strict=True))
    known = store.client.post("/predict", json={**at_rim, "action_type": "Layup Shot"}).json()
    assert known["warnings"] == []
    odd = store.client.post("/predict", json={**at_rim, "action_type": "Moonball"}).json()
    assert len(odd["warnings"]) == 1 and "Moonball" in odd["warnings"][0]
    assert "Layup Shot" in odd["warnings"][0]
    assert odd["probability"] == known["probability"]  # the documented fallback
    # A "three" from under the hoop: the zones at X/Y win, and the answer says so.
    three = {**at_rim, "action_type": "Layup Shot", "shot_zone_basic": "Above the Break 3"}
    answer = store.client.post("/predict", json=three).json()
    assert any("Above the Break 3" in w and "Restricted Area" in w for w in answer["warnings"])
    assert answer["probability"] == known["probability"]


def _zones(x: int, y: int) -> tuple[str, str, str]:
    from parivision.court import zone_for

    z = zone_for(x, y)
    return z.shot_zone_basic, z.shot_zone_area, z.shot_zone_range


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"action_type": ["Jump Shot"]}, "action_type"),
        ({"action_type": {"name": "Jump Shot"}}, "action_type"),
        ({"produced_at": False}, "produced_at"),
        ({"period": 6, "minutes_remaining": 9}, "minutes_remaining"),
    ],
)
def test_wrong_types_and_impossible_clocks_are_422_naming_the_field(store, change, field):
    response = store.client.post("/predict", json={**_snake(store.rows[0]), **change})
    assert field in [e["loc"][-1] for e in _errors(response)]
    row = {**store.rows[0], "Action Type": ["Jump Shot"]}
    assert "Action Type" in [e["loc"][-1] for e in _errors(store.client.post("/predict", json=row))]


def test_one_bad_shot_does_not_sink_a_batch(store, champion_version):
    shots = [_snake(r) for r in store.rows[:5]]
    shots[2] = {**shots[2], "x": 400}
    body = store.client.post("/predict/batch", json={"shots": shots}).json()
    assert body["refused"] == 1 and len(body["predictions"]) == 5
    bad = body["predictions"][2]
    assert bad["index"] == 2 and ["body", "shots", 2, "x"] in [e["loc"] for e in bad["errors"]]
    singles = [store.client.post("/predict", json=s).json() for s in shots[:2] + shots[3:]]
    assert body["predictions"][:2] + body["predictions"][3:] == singles


# --- what happened -------------------------------------------------------------------------


def test_shots_pages_walk_every_shot_once_newest_scored_first(store):
    for limit in (1000, 97, 7):
        shots = _all_pages(store.client, {}, limit)
        assert len(shots) == 2 * HALF
        assert len(set(_ids(shots))) == 2 * HALF
        keys = [(d["scored_at"], d["shot_id"]) for d in shots]
        assert keys == sorted(keys, reverse=True)
    assert set(_ids(shots)) == {d["shot_id"] for d in store.db.predictions.find({})}
    # Shots scored in one micro-batch share scored_at; the cursor still splits them.
    scored_at = [d["scored_at"] for d in shots]
    assert len(set(scored_at)) < len(scored_at)
    listed = shots[0]
    stored = store.db.predictions.find_one({"shot_id": listed["shot_id"]}, {"_id": 0})
    for field in ("game_id", "player_id", "team_name", "x", "y", "p_champion", "outcome"):
        assert listed[field] == stored[field]
    default = store.client.get("/shots").json()
    assert len(default["shots"]) == 50 and default["next_cursor"]


def _check_filter(store, params: dict[str, Any], query: dict[str, Any]) -> int:
    listed = _ids(_all_pages(store.client, params, 100))
    expected = {d["shot_id"] for d in store.db.predictions.find(query, {"shot_id": 1})}
    assert len(listed) == len(set(listed)), params
    assert set(listed) == expected, params
    return len(expected)


def test_shots_filters_keep_what_mongodb_says(store):
    db = store.db
    some = db.predictions.find_one({}, sort=[("shot_id", 1)])
    first_day, second_day = store.dates
    assert first_day < second_day
    counts = {
        "game": _check_filter(store, {"game_id": some["game_id"]}, {"game_id": some["game_id"]}),
        "player": _check_filter(
            store, {"player_id": some["player_id"]}, {"player_id": some["player_id"]}
        ),
        "team id": _check_filter(store, {"team": some["team_id"]}, {"team_id": some["team_id"]}),
        "team name": _check_filter(
            store, {"team": some["team_name"]}, {"team_name": some["team_name"]}
        ),
        "date": _check_filter(store, {"date": second_day}, {"game_date": second_day}),
        "from": _check_filter(
            store, {"date_from": second_day}, {"game_date": {"$gte": second_day}}
        ),
        "to": _check_filter(store, {"date_to": first_day}, {"game_date": {"$lte": first_day}}),
        "between": _check_filter(
            store,
            {"date_from": first_day, "date_to": second_day},
            {"game_date": {"$gte": first_day, "$lte": second_day}},
        ),
        "combined": _check_filter(
            store,
            {"team": some["team_name"], "date": some["game_date"], "game_id": some["game_id"]},
            {
                "team_name": some["team_name"],
                "game_date": some["game_date"],
                "game_id": some["game_id"],
            },
        ),
    }
    assert counts["date"] == counts["from"] == HALF and counts["to"] == HALF
    assert counts["between"] == 2 * HALF
    assert all(n > 0 for n in counts.values()), counts
    assert _check_filter(store, {"date": 20000101}, {"game_date": 20000101}) == 0
    unknown = store.client.get("/shots", params={"team": "No Such Team"})
    assert unknown.status_code == 404 and "No Such Team" in unknown.json()["detail"]


def test_shots_made_filter_keeps_labelled_shots_with_that_outcome(store):
    some = store.db.predictions.find_one({}, sort=[("shot_id", 1)])
    made = _check_filter(store, {"made": 1}, {"outcome": 1})
    missed = _check_filter(store, {"made": 0}, {"outcome": 0})
    assert made > 0 and missed > 0 and made + missed == 2 * HALF
    assert _check_filter(
        store,
        {"team": some["team_name"], "made": 1, "date": some["game_date"]},
        {"team_name": some["team_name"], "outcome": 1, "game_date": some["game_date"]},
    )


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"cursor": "not-a-cursor"}, ["query", "cursor"]),
        ({"cursor": "W10="}, ["query", "cursor"]),  # base64 of []
        ({"cursor": "WyJhIiwiYiJd"}, ["query", "cursor"]),  # ["a","b"]
        ({"cursor": "x" * 401}, ["query", "cursor"]),
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": 1001}, ["query", "limit"]),
        ({"made": 2}, ["query", "made"]),
        ({"date": 2018}, ["query", "date"]),
        ({"date_from": "yesterday"}, ["query", "date_from"]),
        ({"game_id": -1}, ["query", "game_id"]),
        ({"team": ""}, ["query", "team"]),
    ],
)
def test_bad_shots_queries_are_422_naming_the_parameter(store, params, loc):
    errors = _errors(store.client.get("/shots", params=params))
    assert loc in [e["loc"] for e in errors], errors


def test_a_game_lists_its_shots_in_game_order_or_is_404(store):
    for game_id in store.db.shots.distinct("game_id"):
        response = store.client.get(f"/games/{game_id}")
        assert response.status_code == 200
        body = response.json()
        stored = list(store.db.predictions.find({"game_id": game_id}, {"_id": 0}))
        assert body["game_id"] == game_id and len(body["shots"]) == len(stored)
        # Game order is the file's order (it is sorted by date, game and event).
        in_file = [row_to_shot(r)[0]["shot_id"] for r in store.rows if int(r["Game ID"]) == game_id]
        assert _ids(body["shots"]) == in_file
        assert body["game_date"] == stored[0]["game_date"]
        summary = body["summary"]
        assert summary["shots"] == summary["labelled"] == len(stored)
        made = sum(d["outcome"] * d["shot_value"] for d in stored)
        assert summary["field_goal_points"] == made
        expected = sum(d["p_champion"] * d["shot_value"] for d in stored)
        assert summary["expected_field_goal_points"] == pytest.approx(expected)
        assert {t["team_id"] for t in summary["teams"]} == {d["team_id"] for d in stored}
        assert sum(t["field_goal_points"] for t in summary["teams"]) == made
    missing = store.client.get("/games/12345")
    assert missing.status_code == 404 and "12345" in missing.json()["detail"]
    assert store.client.get("/games/not-a-game").status_code == 422


def test_a_player_page_matches_a_direct_computation_from_mongodb(store):
    by_player = defaultdict(list)
    for doc in store.db.predictions.find({}, {"_id": 0}):
        by_player[doc["player_id"]].append(doc)
    busiest = sorted(by_player, key=lambda p: len(by_player[p]), reverse=True)[:8]
    for player_id in busiest:
        docs = by_player[player_id]
        body = store.client.get(f"/players/{player_id}").json()
        points = sum(d["outcome"] * d["shot_value"] for d in docs)
        expected = sum(d["p_champion"] * d["shot_value"] for d in docs)
        assert body["player_id"] == player_id
        assert body["player_name"] == docs[0]["player_name"]
        assert (body["shots"], body["labelled"]) == (len(docs), len(docs))
        assert body["made"] == sum(d["outcome"] for d in docs)
        assert body["points"] == points
        assert body["expected_points"] == pytest.approx(expected)
        assert body["points_above_expectation"] == pytest.approx(points - expected)
        assert body["form"]["shots"] == len(docs)
        assert body["form"]["made"] == body["made"]
        assert body["form_history"]["shots"] == len(docs)
        assert body["form_history"]["as_of"] == "now"
    assert store.client.get("/players/abc").status_code == 422


@pytest.mark.parametrize("by", ["player", "team"])
def test_the_leaderboard_sums_match_mongodb(store, by):
    key = "player_id" if by == "player" else "team_id"
    sums: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for doc in store.db.predictions.find({"outcome": {"$exists": True}}):
        row = sums[doc[key]]
        row["attempts"] += 1
        row["points"] += doc["outcome"] * doc["shot_value"]
        row["expected_points"] += doc["p_champion"] * doc["shot_value"]
    params = {"by": by, "limit": 500, "min_shots": 1}
    body = store.client.get("/leaderboard", params=params).json()
    assert body["by"] == by and body["groups"] == len(sums)
    rows = body["rows"]
    assert {r["id"] for r in rows} == set(sums)
    prior = body["prior_shots"]
    for r in rows:
        mine = sums[r["id"]]
        assert r["attempts"] == mine["attempts"]
        assert r["field_goal_points"] == mine["points"]
        assert r["expected_field_goal_points"] == pytest.approx(mine["expected_points"])
        above = mine["points"] - mine["expected_points"]
        assert r["points_above_expectation"] == pytest.approx(above)
        assert r["shrunk_per_shot"] == pytest.approx(above / (mine["attempts"] + prior))
        assert r["name"]
    shrunk = [r["shrunk_per_shot"] for r in rows]
    assert shrunk == sorted(shrunk, reverse=True)
    top = store.client.get("/leaderboard", params={**params, "limit": 3}).json()["rows"]
    assert top == rows[:3]
    # The default minimum of attempts leaves out the rest.
    kept = store.client.get("/leaderboard", params={"by": by, "limit": 500}).json()
    assert {r["id"] for r in kept["rows"]} == {
        i for i, m in sums.items() if m["attempts"] >= kept["min_shots"]
    }
    # One game only.
    game_id = store.db.predictions.find_one({})["game_id"]
    in_game = store.client.get("/leaderboard", params={**params, "game_id": game_id}).json()
    ids_in_game = set(store.db.shots.distinct(key, {"game_id": game_id}))
    assert {r["id"] for r in in_game["rows"]} <= ids_in_game
    assert in_game["groups"] == len(ids_in_game)
    assert store.client.get("/leaderboard", params={"by": "coach"}).status_code == 422


def test_live_recent_has_what_the_feed_saw_of_the_replay(store):
    body = store.client.get("/live/recent", params={"limit": 2000}).json()
    messages = [m for m in body["messages"] if m.get("replay_id") == store.replay_id]
    scored = [m for m in messages if m["type"] == "scored"]
    outcomes = [m for m in messages if m["type"] == "outcome"]
    stored = {d["shot_id"]: d for d in store.db.predictions.find({}, {"_id": 0})}
    assert sorted(_ids(scored)) == sorted(stored) == sorted(_ids(outcomes))
    for m in outcomes:
        assert m["outcome"] == stored[m["shot_id"]]["outcome"]
        assert m["p_champion"] == stored[m["shot_id"]]["p_champion"]
    some = scored[0]
    only = store.client.get(
        "/live/recent", params={"game_id": some["game_id"], "limit": 2000}
    ).json()["messages"]
    assert only and all(m["game_id"] == some["game_id"] for m in only)
    by_team = store.client.get("/live/recent", params={"team": some["team_name"]}).json()
    assert by_team["messages"] and all(
        m["team_name"] == some["team_name"] for m in by_team["messages"]
    )
    assert len(store.client.get("/live/recent", params={"limit": 5}).json()["messages"]) == 5


def test_the_live_socket_greets_and_acknowledges_filters(store):
    with store.client.websocket_connect("/ws/live") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["filter"] == {}
        ws.send_json({"filter": {"game_id": 22000001, "team": "Boston Celtics"}})
        assert ws.receive_json() == {
            "type": "filter",
            "filter": {"game_id": 22000001, "team": "Boston Celtics"},
        }
        ws.send_json({"filter": {"coach": 1}})
        error = ws.receive_json()
        assert error["type"] == "error" and "coach" in error["msg"]
        ws.send_text("{not json")
        assert ws.receive_json()["type"] == "error"
        # Leaving the block cancels the app's task; close first and let the server see it.
        hub = store.client.app.state.hub
        assert len(hub.clients) == 1
        ws.close(1000)
        wait_until(lambda: not hub.clients or len(hub.clients), 10, "the server to drop it")


# --- models --------------------------------------------------------------------------------


def test_models_lists_every_version_with_its_candidate_and_metrics(store, champion_version):
    models = store.client.get("/models").json()
    assert models["name"] == store.settings.registered_model()
    assert models["champion_alias"] == "champion"
    found = registry.client(store.settings).search_model_versions(
        f"name='{store.settings.registered_model()}'"
    )
    listed = [v["version"] for v in models["versions"]]
    assert listed == sorted((str(v.version) for v in found), key=int, reverse=True)
    described = {v["version"]: v for v in models["versions"]}[champion_version]
    assert described["candidate"] == "lightgbm" and described["feature_set"] == FEATURE_SET
    assert 0 < described["metrics"]["log_loss"] < 1 and 0.5 < described["metrics"]["roc_auc"] < 1
    assert described["created_at"] and described["data"] == "nba_shots.csv"


def test_models_marks_the_champion_and_describes_it(store, champion_version):
    models = store.client.get("/models").json()
    versions = {v["version"]: v for v in models["versions"]}
    assert "champion" in versions[champion_version]["aliases"]
    response = store.client.get("/models/champion")
    assert response.status_code == 200, response.text
    champion = response.json()
    assert champion["version"] == champion_version
    assert champion["candidate"] == "lightgbm" and champion["feature_set"] == FEATURE_SET
    assert 0 < champion["metrics"]["log_loss"] < 1 and 0.5 < champion["metrics"]["roc_auc"] < 1
    assert champion["promoted"]["how"] in ("trained as champion", "promoted", "rolled back to")
    assert champion["promoted"]["at"]
    assert {k: v for k, v in champion.items() if k != "promoted"} == versions[champion_version]


def _register_worse(settings: Settings, frame) -> str:
    """3 trees on 2,000 shots with their outcomes shuffled: a champion any real model beats."""
    import mlflow

    from infra.mlflow_store import configure_mlflow
    from models.shot_model import ShotModel, log_shot_model

    rows = frame.iloc[:2000]
    x = build_features(rows)
    data = lgb.Dataset(
        x,
        np.random.default_rng(7).permutation(rows["made"].to_numpy()),
        feature_name=list(FEATURE_NAMES),
        categorical_feature=list(CATEGORICAL),
    )
    booster = lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1}, data, 3)
    configure_mlflow(settings)
    with mlflow.start_run(run_name="worse-on-purpose"):
        mlflow.set_tags({"feature_set": FEATURE_SET})
        info = log_shot_model(
            ShotModel("lightgbm", booster), x, registered_model_name=settings.registered_model()
        )
    version = str(info.registered_model_version)
    registry.tag_version(settings, version, {"candidate": "lightgbm", "feature_set": FEATURE_SET})
    return version


@pytest.fixture(scope="module")
def admin_model(store, games_csv):
    """A model of the admin tests' own, in the seeded database: v1 weak champion, v2 better."""
    from models.data import load_shots
    from models.train import train_and_register

    settings = store.settings.model_copy(
        update={"model_name": f"api-admin-{uuid.uuid4().hex[:6]}", "retrain_holdout": 200}
    )
    frame = load_shots(games_csv)
    weak = _register_worse(settings, frame)
    registry.set_champion(settings, weak)
    better = train_and_register(
        settings,
        frame.iloc[:12_000],
        data_name="12,000 shots",
        candidates=["lightgbm"],
        make_champion=False,
    ).version
    return settings, weak, better


def test_admin_routes_refuse_without_the_right_key_and_change_nothing(store, admin_model):
    settings, weak, better = admin_model
    routes = [
        ("post", "/admin/rollback"),
        ("post", f"/admin/promote/{better}?margin=0"),
        ("post", "/admin/retrain"),
        ("get", "/admin/jobs/whatever"),
    ]
    no_key = settings.model_copy(update={"api_key": None})
    with TestClient(create_app(no_key, follow_feed=False), raise_server_exceptions=False) as open_:
        for method, path in routes:
            for headers in ({}, {"X-API-Key": KEY}, {"X-API-Key": ""}):
                response = getattr(open_, method)(path, headers=headers)
                assert response.status_code == 401, (path, headers, response.text)
                assert "X-API-Key" in response.json()["detail"]
    with TestClient(create_app(settings, follow_feed=False), raise_server_exceptions=False) as api:
        for method, path in routes:
            for headers in ({}, {"X-API-Key": KEY + "x"}, {"X-API-Key": KEY.upper()}):
                response = getattr(api, method)(path, headers=headers)
                assert response.status_code == 401, (path, headers, response.text)
        assert api.post("/predict", json=store.rows[0]).json()["model"]["version"] == weak
    assert registry.champion_version(settings) == weak
    assert not any(k.startswith("challenge.") for k in registry.version_tags(settings, better))


def test_admin_promotes_through_a_real_challenge_and_rolls_back(store, admin_model):
    settings, weak, better = admin_model
    key = {"X-API-Key": KEY}
    row = store.rows[10]
    with TestClient(create_app(settings, follow_feed=False), raise_server_exceptions=False) as api:
        assert api.post("/predict", json=row).json()["model"]["version"] == weak

        unknown = api.post("/admin/promote/999", headers=key)
        assert unknown.status_code == 409 and "999" in unknown.json()["detail"]
        assert api.post("/admin/promote/1", headers=key, params={"window": 0}).status_code == 422
        assert registry.champion_version(settings) == weak

        response = api.post(
            f"/admin/promote/{better}", headers=key, params={"margin": 0, "now": True}
        )
        assert response.status_code == 200, response.text
        decision = response.json()
        assert decision["event"] == "promoted", decision["reason"]
        assert (decision["version"], decision["previous_version"]) == (better, weak)
        assert decision["window"]["shots"] == 2 * HALF
        assert registry.champion_version(settings) == better
        # The app serves the new champion straight away.
        assert api.post("/predict", json=row).json()["model"]["version"] == better
        versions = {v["version"]: v for v in api.get("/models").json()["versions"]}
        challenge = versions[better]["challenge"]
        assert challenge["decision"] == "promoted" and challenge["reason"] == decision["reason"]
        assert challenge["champion_version"] == weak
        assert float(challenge["window_shots"]) == 2 * HALF
        assert versions[weak]["replaced_by"] == better

        again = api.post(f"/admin/promote/{better}", headers=key).json()
        assert again["event"] == "refused" and "already the champion" in again["reason"]

        back = api.post("/admin/rollback", headers=key)
        assert back.status_code == 200, back.text
        assert (back.json()["event"], back.json()["version"]) == ("rolled_back", weak)
        assert registry.champion_version(settings) == weak
        assert api.post("/predict", json=row).json()["model"]["version"] == weak
        versions = {v["version"]: v for v in api.get("/models").json()["versions"]}
        assert versions[weak]["restored_at"] and versions[better]["replaced_by"] == weak
        twice = api.post("/admin/rollback", headers=key)
        assert twice.status_code == 409 and "previous champion" in twice.json()["detail"]
        assert registry.champion_version(settings) == weak


def test_the_champion_route_says_when_and_why_it_was_promoted(store, admin_model):
    settings, weak, better = admin_model
    key = {"X-API-Key": KEY}
    with TestClient(create_app(settings, follow_feed=False), raise_server_exceptions=False) as api:
        try:
            decision = api.post(
                f"/admin/promote/{better}", headers=key, params={"margin": 0, "now": True}
            )
            assert decision.json()["event"] == "promoted"
            champion = api.get("/models/champion")
            assert champion.status_code == 200, champion.text
            promoted = champion.json()["promoted"]
            assert champion.json()["version"] == better
            assert promoted["how"] == "promoted"
            assert promoted["reason"] == decision.json()["reason"]
            assert promoted["replaced"] == weak and promoted["at"]
            api.post("/admin/rollback", headers=key)
            champion = api.get("/models/champion").json()
            assert champion["version"] == weak and champion["promoted"]["how"] == "rolled back to"
        finally:
            if registry.champion_version(settings) != weak:
                api.post("/admin/rollback", headers=key)
    assert registry.champion_version(settings) == weak


def test_admin_retrain_runs_as_a_job(store, admin_model):
    settings, _weak, _better = admin_model
    key = {"X-API-Key": KEY}
    with TestClient(create_app(settings, follow_feed=False), raise_server_exceptions=False) as api:
        started = api.post("/admin/retrain", headers=key)
        assert started.status_code == 202, started.text
        job = started.json()
        assert job["status"] == "running"
        busy = api.post("/admin/retrain", headers=key)
        jobs = [job["id"]]
        if busy.status_code == 202:  # the first one was already over: wait for both
            jobs.append(busy.json()["id"])
        else:
            assert busy.status_code == 409 and "already running" in busy.json()["detail"]

        def finished():
            states = [api.get(f"/admin/jobs/{j}", headers=key).json()["status"] for j in jobs]
            return "running" not in states or states

        wait_until(finished, 300, "the retrain job")
        state = api.get(f"/admin/jobs/{job['id']}", headers=key).json()
        assert state["status"] == "done", state
        # Its champion was registered by hand, with no record of what it learned, and the store
        # holds a few games: the retrain waits, and says why, rather than train on them alone.
        assert state["result"]["status"] == "waiting", state["result"]
        assert state["result"]["waiting"], state["result"]
        assert "training" not in state["result"]  # nothing was trained
        assert api.get("/admin/jobs/nope", headers=key).status_code == 404


def test_admin_force_promotes_a_version_the_checks_refuse_and_the_old_champion_watches_it(
    store, champion_version, games_csv
):
    from models.data import load_shots
    from models.promotion import shadow as shadows

    settings = store.settings.model_copy(update={"model_name": f"api-force-{uuid.uuid4().hex[:6]}"})
    (champion,) = copy_champion(settings, champion_version)
    worse = _register_worse(settings, load_shots(games_csv))
    key = {"X-API-Key": KEY}
    row = store.rows[10]
    with TestClient(create_app(settings, follow_feed=False), raise_server_exceptions=False) as api:
        checked = api.post(f"/admin/promote/{worse}", headers=key, params={"now": True})
        assert checked.status_code == 200, checked.text
        assert checked.json()["event"] == "refused"  # what the checks say of it
        assert registry.champion_version(settings) == champion

        forced = api.post(f"/admin/promote/{worse}", headers=key, params={"force": True})
        assert forced.status_code == 200, forced.text
        decision = forced.json()
        assert decision["event"] == "promoted"
        assert (decision["version"], decision["previous_version"]) == (worse, champion)
        assert "with force" in decision["reason"]
        assert registry.champion_version(settings) == worse
        assert api.post("/predict", json=row).json()["model"]["version"] == worse
        promoted = api.get("/models/champion").json()
        assert promoted["version"] == worse and promoted["promoted"]["how"] == "forced"
        # The champion it replaced watches it, as after any promotion.
        assert registry.alias_version(settings, shadows.SHADOW_ALIAS) == champion
        watch = api.get("/models").json()["shadow"]
        assert (watch["version"], watch["role"], watch["champion"]) == (
            champion,
            shadows.WATCH,
            worse,
        )


def test_models_shows_the_shadow_with_both_live_log_losses_from_the_store(store, champion_version):
    """40 real shots scored by both, seeded here; both log losses and the base rate's worked
    out with numpy; a shot scored before the shadow began and one scored by another champion
    are not evidence."""
    from models.promotion import shadow as shadows
    from parivision.store import SHOTS

    tag = uuid.uuid4().hex[:6]
    settings = store.settings.model_copy(
        update={"model_name": f"api-shadow-{tag}", "mongodb_database": f"shadow{tag}"}
    )
    champion, challenger = copy_champion(settings, champion_version, copies=2)
    with TestClient(create_app(settings, follow_feed=False), raise_server_exceptions=False) as api:
        assert api.get("/models").json()["shadow"] is None
        began = shadows.begin(settings, challenger, shadows.CHALLENGER, champion)
        empty = api.get("/models").json()["shadow"]
        assert (empty["labelled"], empty["live_log_loss"]) == (0, {})

        rows = store.rows[:40]
        made = np.array([int(r["Shot Made Flag"]) for r in rows])
        rng = np.random.default_rng(11)
        p_champion, p_shadow = rng.uniform(0.2, 0.8, 40), rng.uniform(0.2, 0.8, 40)
        start = began.started_at
        docs = [
            {
                "_id": row_to_shot(row)[0]["shot_id"],
                "shot_id": row_to_shot(row)[0]["shot_id"],
                "model_version": champion,
                "p_champion": float(p_champion[i]),
                "shadow_version": challenger,
                "p_shadow": float(p_shadow[i]),
                "scored_at": start + i,
                "outcome": int(made[i]),
                "labelled_at": start + i + 0.5,
                "outcome_stored_at": start + i + 0.75,
            }
            for i, row in enumerate(rows)
        ]
        # Labelled since it began, but scored before it, or by another champion: not evidence.
        early = {**docs[0], "_id": "early", "shot_id": "early", "scored_at": start - 10}
        other = {**docs[1], "_id": "other", "shot_id": "other", "model_version": "999"}
        db = MongoClient(settings.mongodb())[settings.database()]
        db[SHOTS].insert_many([*docs, early, other])

        shadow = api.get("/models").json()["shadow"]
        assert shadow["version"] == challenger and shadow["role"] == shadows.CHALLENGER
        assert shadow["champion"] == champion and shadow["started_at"] == began.started_at
        assert shadow["shots"] == settings.shadow_shots and shadow["labelled"] == 40

        def log_loss(p):
            return float(-np.mean(made * np.log(p) + (1 - made) * np.log(1 - p)))

        rate = made.mean()
        live = shadow["live_log_loss"]
        assert live["shadow"] == pytest.approx(log_loss(p_shadow), abs=1e-9)
        assert live["champion"] == pytest.approx(log_loss(p_champion), abs=1e-9)
        assert live["base_rate"] == pytest.approx(log_loss(np.full(40, rate)), abs=1e-9)
        assert shadow["verdict_so_far"].startswith(f"shadowing: v{challenger} ")
        assert f"on 40 labelled shots, of {settings.shadow_shots:,}" in shadow["verdict_so_far"]


# --- health --------------------------------------------------------------------------------


def test_health_is_ok_when_every_service_answers(store, champion_version):
    response = store.client.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["failing"] == []
    assert set(body["checks"]) == {"broker", "database", "registry"}
    assert all(check["ok"] for check in body["checks"].values())
    assert f"v{champion_version}" in body["checks"]["registry"]["detail"]
    assert body["model"]["version"] == champion_version
    assert body["live"]["following"] and body["live"]["read"] >= 4 * HALF
    assert body["online_learners"] == ["bias", "on_champion"]


def test_health_is_503_naming_the_database_when_mongodb_is_down(store, champion_version):
    settings = store.settings.model_copy(
        update={"mongodb_uri": SecretStr(f"mongodb://{CLOSED}/?serverSelectionTimeoutMS=500")}
    )
    with TestClient(create_app(settings, follow_feed=False), raise_server_exceptions=False) as api:
        response = api.get("/health")
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["status"] == "degraded" and body["failing"] == ["database"]
        assert body["checks"]["broker"]["ok"] and body["checks"]["registry"]["ok"]
        # Routes that need the database say so, rather than failing with a 500.
        for method, path, kwargs in (
            ("get", "/shots", {}),
            ("get", "/players/1", {}),
            ("post", "/predict", {"json": store.rows[0]}),
        ):
            answer = getattr(api, method)(path, **kwargs)
            assert answer.status_code == 503, (path, answer.status_code, answer.text)
            assert "database" in answer.json()["detail"]


def test_health_is_503_naming_the_broker_when_kafka_is_down(store):
    settings = store.settings.model_copy(update={"kafka_bootstrap": CLOSED})
    with TestClient(create_app(settings, follow_feed=False), raise_server_exceptions=False) as api:
        response = api.get("/health")
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["failing"] == ["broker"], body
        # The rest of the API does not need the broker.
        assert api.post("/predict", json=store.rows[0]).status_code == 200


def test_health_is_503_naming_the_registry_when_mlflow_is_down(store, monkeypatch):
    # MLflow retries a refused connection for minutes by default; fail at once instead.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    settings = store.settings.model_copy(update={"mlflow_tracking_uri": f"http://{CLOSED}"})
    with TestClient(create_app(settings, follow_feed=False), raise_server_exceptions=False) as api:
        response = api.get("/health")
        body = response.json()
        assert response.status_code == 503 and body["failing"] == ["registry"], body
        # Nothing to score with, and the registry routes say why rather than failing.
        assert api.post("/predict", json=store.rows[0]).status_code == 503
        for path in ("/models", "/models/champion"):
            answer = api.get(path)
            assert answer.status_code == 503, (path, answer.status_code, answer.text[:300])
            assert "registry" in answer.json()["detail"]


# --- the original API, docs ----------------------------------------------------------------


def test_the_original_virtualbets_routes_are_mounted_with_the_cursor_under_home(store, tmp_path):
    sample = shared_file("virtualbets_sample_1000.csv")
    settings = store.settings.model_copy(update={"home": tmp_path, "virtualbets_csv": sample})
    with open(sample, newline="") as handle:
        file_rows = list(islice(csv.DictReader(handle), 8))
    with TestClient(build_app(settings), raise_server_exceptions=False) as api:
        first = api.get("/getdata/3")
        assert first.status_code == 200 and first.json() == file_rows[:3]
        assert all(set(r) == set(CSV_COLUMNS) for r in first.json())
        assert all(isinstance(v, str) for r in first.json() for v in r.values())
        assert api.get("/getdata/3/").json() == file_rows[3:6]
        assert (tmp_path / "virtualbets-cursor.json").is_file()
        assert api.get("/reset").json() == {"reset": True}
        assert api.get("/getdata/2").json() == file_rows[:2]
        assert api.get("/getdata/reset").json() == {"reset": True}
        assert api.get("/getdata/1/").json() == file_rows[:1]
        assert api.get("/getdata/0").status_code == 422
        assert api.get("/getdata/10001").status_code == 422
        # What it serves, /predict scores as it is.
        scored = api.post("/predict", json=api.get("/getdata/1").json()[0])
        assert scored.status_code == 200, scored.text


def test_without_a_csv_the_original_routes_are_404_saying_what_to_set(store, tmp_path):
    settings = store.settings.model_copy(update={"home": tmp_path, "virtualbets_csv": None})
    with TestClient(build_app(settings), raise_server_exceptions=False) as api:
        for path in ("/getdata/5", "/getdata/5/", "/reset", "/getdata/reset"):
            response = api.get(path)
            assert response.status_code == 404, (path, response.text)
            assert "PARIVISION_VIRTUALBETS_CSV" in response.json()["detail"]
    assert not (tmp_path / "virtualbets-cursor.json").exists()


def test_the_docs_and_the_schema_are_served(store):
    docs = store.client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    schema = store.client.get("/openapi.json").json()
    paths = set(schema["paths"])
    for path in (
        "/predict",
        "/predict/batch",
        "/whatif",
        "/shots",
        "/games/{game_id}",
        "/players/{player_id}",
        "/leaderboard",
        "/models",
        "/models/champion",
        "/health",
        "/live/recent",
        "/admin/retrain",
        "/admin/promote/{version}",
        "/admin/rollback",
    ):
        assert path in paths, path
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    titles = {s["title"] for s in body["schema"]["oneOf"]}
    assert titles == {"Shot", "VirtualBetsRecord"}
    assert store.client.get("/").status_code == 200
