"""`GET /health`: 200 "ok" when the broker, the database and the registry answer; 503
"degraded" naming each failing service, and a hung one cannot hide the others."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pymongo.errors import ServerSelectionTimeoutError

from consumers.api import health
from consumers.api.live_hub import Hub
from consumers.api.serving import ModelHolder, Served
from models import registry
from parivision.settings import Settings
from tests.unit.consumers.api.conftest import FakeDb


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "home", model_name="shots")


@pytest.fixture
def checks(monkeypatch):
    """Each check answers as the test says: a text, or an exception it raises."""
    answers = {
        "broker": "kafka:9092: 1 broker(s), 5 topics",
        "database": "pv: reachable",
        "registry": "shots champion v3",
    }

    def answer(name):
        def check(*args):
            value = answers[name]
            if callable(value):
                return value()
            if isinstance(value, BaseException):
                raise value
            return value

        return check

    for name in answers:
        monkeypatch.setattr(health, f"_{name}", answer(name))
    return answers


def _client(settings, feed=None, hub=None, holder=None) -> TestClient:
    app = FastAPI()
    holder = holder or ModelHolder(settings)
    app.include_router(health.router(settings, FakeDb(), holder, feed, hub or Hub()))
    return TestClient(app)


def test_every_service_up_is_a_200_ok(settings, checks):
    answer = _client(settings).get("/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok" and body["failing"] == []
    assert body["checks"]["registry"] == {"ok": True, "detail": "shots champion v3"}


def test_a_database_down_is_a_503_naming_mongodb_and_the_others_still_checked(settings, checks):
    checks["database"] = ServerSelectionTimeoutError("localhost:27027: connection refused")
    answer = _client(settings).get("/health")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "degraded" and body["failing"] == ["database"]
    assert body["checks"]["database"] == {
        "ok": False,
        "detail": "MongoDB unreachable: ServerSelectionTimeoutError: "
        "localhost:27027: connection refused",
    }
    assert body["checks"]["broker"]["ok"] and body["checks"]["registry"]["ok"]


def test_every_failing_service_is_named(settings, checks):
    checks["broker"] = RuntimeError("no brokers")
    checks["registry"] = ConnectionError("refused")
    body = _client(settings).get("/health").json()
    assert body["failing"] == ["broker", "registry"]
    assert body["checks"]["broker"]["detail"] == "Kafka unreachable: RuntimeError: no brokers"
    assert body["checks"]["registry"]["detail"] == "MLflow unreachable: ConnectionError: refused"


def test_a_hung_check_fails_at_its_deadline_while_the_others_answer(settings, checks, monkeypatch):
    monkeypatch.setattr(health, "CHECK_TIMEOUT_S", 0.05)
    release = threading.Event()
    checks["broker"] = lambda: release.wait(10) and "late"
    try:
        body = _client(settings).get("/health").json()
    finally:
        release.set()
    assert body["failing"] == ["broker"]
    assert body["checks"]["broker"]["detail"].startswith("Kafka unreachable: no answer in")
    assert body["checks"]["database"]["ok"]


def test_a_long_error_is_cut_to_500_characters(settings, checks):
    checks["database"] = RuntimeError("x" * 2000)
    detail = _client(settings).get("/health").json()["checks"]["database"]["detail"]
    assert len(detail) == 500 and detail.startswith("MongoDB unreachable: RuntimeError: xxx")


def test_the_served_model_and_its_error_are_reported(settings, checks):
    holder = SimpleNamespace(
        served=Served(None, {"name": "shots", "version": "3"}, {"bias": object()}),
        error="registry at http://mlflow: refused",
    )
    body = _client(settings, holder=holder).get("/health").json()
    assert body["model"] == {"name": "shots", "version": "3"}
    assert body["model_error"] == "registry at http://mlflow: refused"
    assert body["online_learners"] == ["bias"]


def test_no_model_yet_is_null_not_an_empty_object(settings, checks):
    assert _client(settings).get("/health").json()["model"] is None


def test_the_live_feed_and_its_clients_are_reported(settings, checks):
    positioned = threading.Event()
    positioned.set()
    feed = SimpleNamespace(positioned=positioned, read=1234, last_error=None)
    hub = Hub()
    first, second = hub.connect(), hub.connect()
    first.total_missed, second.total_missed = 3, 4
    hub.closed_slow = 1
    live = _client(settings, feed=feed, hub=hub).get("/health").json()["live"]
    assert live == {
        "following": True,
        "read": 1234,
        "error": None,
        "clients": 2,
        "dropped_for_clients": 7,
        "closed_too_slow": 1,
    }


def test_without_a_feed_the_api_says_it_follows_nothing(settings, checks):
    live = _client(settings).get("/health").json()["live"]
    assert live["following"] is False and live["read"] == 0 and live["error"] is None


def test_the_database_check_pings_and_names_the_database():
    pings = []
    db = SimpleNamespace(
        name="pv", client=SimpleNamespace(admin=SimpleNamespace(command=pings.append))
    )
    assert health._database(db) == "pv: reachable" and pings == ["ping"]


@pytest.mark.parametrize(
    ("version", "said"), [("3", "shots champion v3"), (None, "no champion yet")]
)
def test_the_registry_check_names_the_champion_version(settings, monkeypatch, version, said):
    monkeypatch.setattr(registry, "champion_version", lambda settings: version)
    assert health._registry(settings) == said
