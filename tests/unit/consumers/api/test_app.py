"""The assembled app: every part's routes served, a registry or database that is down a 503
naming it (never a 500), an unknown name a 404 with the nearest names, and `/live/recent`."""

from __future__ import annotations

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from mlflow.exceptions import MlflowException
from pymongo.errors import ServerSelectionTimeoutError

from consumers.api import app as app_module
from consumers.api import create_app
from consumers.api.live_feed import feed_message
from consumers.api.names import UnknownName
from parivision.settings import Settings
from tests.unit.consumers.api.conftest import FakeDb

KOBE, LEBRON = 977, 2544
LAKERS = 1610612747


class FakeMongo:
    """A ``MongoClient`` that connects to nothing: every database is one :class:`FakeDb`."""

    def __init__(self, *args, **kwargs) -> None:
        self.db = FakeDb()
        self.db["shots"].groups = [
            {"_id": KOBE, "name": "Kobe Bryant"},
            {"_id": LEBRON, "name": "LeBron James"},
        ]
        self.closed = False

    def __getitem__(self, name):
        return self.db

    def close(self) -> None:
        self.closed = True


def _down() -> APIRouter:
    """Routes that fail the way the services do."""
    extra = APIRouter()

    @extra.get("/registry-down")
    def registry_down():
        raise MlflowException("API request to http://registry.test:5000 failed")

    @extra.get("/database-down")
    def database_down():
        raise ServerSelectionTimeoutError("localhost:27027: connection refused")

    @extra.get("/nobody")
    def nobody():
        raise UnknownName("team", "Lakerz", ["Los Angeles Lakers", "Los Angeles Clippers"])

    return extra


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setattr(app_module, "MongoClient", FakeMongo)
    settings = Settings(
        home=tmp_path / "home",
        mlflow_tracking_uri="http://registry.test:5000",
        mongodb_database="pv_test",
    )
    return create_app(settings, extra_routers=[_down()], follow_feed=False)


@pytest.fixture
def client(app) -> TestClient:
    # Not entered: the lifespan (which loads the champion and follows the feed) does not run.
    return TestClient(app, raise_server_exceptions=False)


def test_every_part_s_routes_are_served(app):
    paths = set(app.openapi()["paths"])
    served = (
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
        "/admin/retrain",
        "/reports/drift",
        "/metrics",
        "/live/recent",
    )
    assert set(served) <= paths, set(served) - paths


def test_a_registry_that_is_down_is_a_503_naming_where_it_was_looked_for(client):
    answer = client.get("/registry-down")
    assert answer.status_code == 503
    detail = answer.json()["detail"]
    assert detail.startswith("model registry at http://registry.test:5000 unavailable: ")
    assert "failed" in detail


def test_a_database_that_is_down_is_a_503_naming_the_database(client):
    answer = client.get("/database-down")
    assert answer.status_code == 503
    assert answer.json()["detail"] == (
        "database 'pv_test' unavailable: localhost:27027: connection refused"
    )


def test_an_unknown_name_is_a_404_with_the_nearest_names(client):
    answer = client.get("/nobody")
    assert answer.status_code == 404
    assert answer.json()["nearest"] == ["Los Angeles Lakers", "Los Angeles Clippers"]
    assert "Lakerz" in answer.json()["detail"]


def test_an_unknown_team_in_a_real_route_is_the_same_404(client):
    answer = client.get("/shots", params={"team": "Lakerz"})
    assert answer.status_code == 404 and "Los Angeles Lakers" in answer.json()["nearest"]


def _feed(app):
    app.state.hub.publish_many(
        [
            feed_message({"shot_id": "a", "game_id": 1, "player_id": KOBE, "team_id": LAKERS}),
            feed_message({"shot_id": "b", "game_id": 2, "player_id": LEBRON, "team_id": 5}),
            feed_message({"shot_id": "a", "game_id": 1, "player_id": KOBE, "labelled": True}),
        ]
    )


def test_the_recent_feed_is_filtered_by_game_oldest_first(app, client):
    _feed(app)
    messages = client.get("/live/recent", params={"game_id": 1}).json()["messages"]
    assert [(m["type"], m["shot_id"]) for m in messages] == [("scored", "a"), ("outcome", "a")]


def test_the_recent_feed_keeps_the_last_messages_up_to_the_limit(app, client):
    _feed(app)
    messages = client.get("/live/recent", params={"limit": 2}).json()["messages"]
    assert [(m["type"], m["shot_id"]) for m in messages] == [("scored", "b"), ("outcome", "a")]


def test_the_recent_feed_of_a_player_by_name(app, client):
    _feed(app)
    messages = client.get("/live/recent", params={"player": "LeBron James"}).json()["messages"]
    assert [m["shot_id"] for m in messages] == ["b"]


def test_a_player_name_and_another_player_s_id_are_a_422_on_player(app, client):
    answer = client.get("/live/recent", params={"player": "Kobe Bryant", "player_id": LEBRON})
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["query", "player"] and "977" in problem["msg"]


@pytest.mark.parametrize("limit", [0, 2001])
def test_a_recent_limit_out_of_bounds_is_a_422(client, limit):
    assert client.get("/live/recent", params={"limit": limit}).status_code == 422


def test_the_live_page_is_served_at_the_root(client):
    answer = client.get("/")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")


def test_without_the_page_installed_the_root_says_so(client, monkeypatch, tmp_path):
    monkeypatch.setattr(app_module, "STATIC", tmp_path / "nothing")
    answer = client.get("/")
    assert answer.status_code == 404
    assert answer.json() == {"detail": "the live page is not installed"}


def test_requests_are_counted_in_the_app_s_own_metrics(app, client):
    client.get("/live/recent")
    client.get("/live/recent")
    count = app.state.metrics.registry.get_sample_value(
        "parivision_api_requests_total", {"route": "/live/recent", "method": "GET", "status": "200"}
    )
    assert count == 2


def test_nothing_is_connected_or_started_by_building_the_app(app):
    assert app.state.feed is None
    assert app.state.holder.served.champion is None and app.state.holder._thread is None
