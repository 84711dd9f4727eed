"""Admin routes: a 401 before anything happens without the right `X-API-Key`; one retrain at a
time, followed as a job; promotion and rollback refused with a 409 that says why."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

import models.promotion
import models.registry
from consumers.api import admin
from models.promotion import PromotionError
from parivision.settings import Settings

KEY = {"X-API-Key": "s3cret"}


class Holder:
    """The model holder: counts refreshes, and says when the last one happened."""

    def __init__(self) -> None:
        self.refreshes = 0
        self.refreshed = threading.Event()

    def refresh(self) -> None:
        self.refreshes += 1
        self.refreshed.set()


class Loop:
    """The retrain loop: ``step`` answers ``event`` (or raises it), after ``gate`` opens."""

    def __init__(self, event) -> None:
        self.event = event
        self.gate = threading.Event()
        self.gate.set()
        self.asked: list[str] = []

    def step(self, manual: str):
        self.asked.append(manual)
        self.gate.wait(10)
        if isinstance(self.event, Exception):
            raise self.event
        return self.event


@pytest.fixture
def holder() -> Holder:
    return Holder()


def _client(holder, api_key: str | None = "s3cret") -> TestClient:
    settings = Settings(api_key=SecretStr(api_key) if api_key is not None else None)
    app = FastAPI()
    app.include_router(admin.router(settings, db=None, holder=holder))
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def loop(monkeypatch):
    found = Loop({"_id": "abc", "trigger": "manual", "decision": "kept the champion"})
    monkeypatch.setattr(admin, "loop_from_settings", lambda settings, db: found)
    return found


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}])
def test_without_the_key_every_admin_route_is_a_401_and_nothing_runs(holder, loop, headers):
    client = _client(holder)
    for method, path in (
        ("post", "/admin/retrain"),
        ("get", "/admin/jobs/x"),
        ("post", "/admin/promote/3"),
        ("post", "/admin/rollback"),
    ):
        answer = client.request(method, path, headers=headers)
        assert answer.status_code == 401, path
        assert answer.json()["detail"] == (
            "admin routes need the X-API-Key header set to PARIVISION_API_KEY"
        )
        assert answer.headers["WWW-Authenticate"] == "X-API-Key"
    assert loop.asked == [] and holder.refreshes == 0


def test_with_no_key_configured_no_key_opens_the_admin_routes(holder, loop):
    answer = _client(holder, api_key=None).post("/admin/retrain", headers=KEY)
    assert answer.status_code == 401 and loop.asked == []


def test_a_key_with_a_non_ascii_character_is_a_401(holder):
    answer = _client(holder).get("/admin/jobs/x", headers=[(b"X-API-Key", "clé".encode())])
    assert answer.status_code == 401


def test_a_retrain_runs_in_the_background_and_its_job_reports_the_event(holder, loop):
    client = _client(holder)
    loop.gate.clear()  # the retrain runs until the test has read the first answer
    started = client.post("/admin/retrain", headers=KEY)
    loop.gate.set()
    assert started.status_code == 202
    job = started.json()
    assert job["status"] == "running" and len(job["id"]) == 12
    assert holder.refreshed.wait(10)  # the job refreshes the champion when it ends
    done = client.get(f"/admin/jobs/{job['id']}", headers=KEY).json()
    assert done["status"] == "done"
    assert done["result"] == {"trigger": "manual", "decision": "kept the champion"}  # no _id
    assert done["finished_at"] >= done["started_at"]
    assert loop.asked == ["api"]


def test_a_second_retrain_while_one_runs_is_a_409(holder, loop):
    client = _client(holder)
    loop.gate.clear()
    try:
        assert client.post("/admin/retrain", headers=KEY).status_code == 202
        second = client.post("/admin/retrain", headers=KEY)
        assert second.status_code == 409
        assert second.json()["detail"] == "a retrain is already running"
    finally:
        loop.gate.set()
    assert holder.refreshed.wait(10)


def test_a_failed_retrain_is_reported_on_its_job_and_frees_the_next(holder, loop):
    loop.event = RuntimeError("no labelled shots since the champion")
    client = _client(holder)
    job = client.post("/admin/retrain", headers=KEY).json()
    assert holder.refreshed.wait(10)
    failed = client.get(f"/admin/jobs/{job['id']}", headers=KEY).json()
    assert failed["status"] == "failed"
    assert failed["error"] == "RuntimeError: no labelled shots since the champion"
    holder.refreshed.clear()
    assert client.post("/admin/retrain", headers=KEY).status_code == 202
    assert holder.refreshed.wait(10)


def test_an_unknown_job_is_a_404_naming_it(holder):
    answer = _client(holder).get("/admin/jobs/abc123", headers=KEY)
    assert answer.status_code == 404 and answer.json()["detail"] == "no job abc123"


def test_a_promotion_refused_is_a_409_with_the_reason_and_the_champion_unchanged(
    holder, monkeypatch
):
    def challenge(settings, version, **terms):
        raise PromotionError(f"version {version} is not registered: see `parivision models`")

    monkeypatch.setattr(models.promotion, "challenge", challenge)
    answer = _client(holder).post("/admin/promote/9", headers=KEY)
    assert answer.status_code == 409
    assert answer.json()["detail"] == "version 9 is not registered: see `parivision models`"
    assert holder.refreshes == 0


def test_a_promotion_passes_its_terms_and_answers_the_decision(holder, monkeypatch):
    asked = {}

    def challenge(settings, version, **terms):
        asked.update(version=version, **terms)
        return SimpleNamespace(as_event=lambda: {"decision": "promoted", "version": version})

    monkeypatch.setattr(models.promotion, "challenge", challenge)
    answer = _client(holder).post(
        "/admin/promote/4", params={"window": 500, "margin": 0.01, "now": True}, headers=KEY
    )
    assert answer.status_code == 200
    assert answer.json() == {"decision": "promoted", "version": "4"}
    assert asked == {"version": "4", "window": 500, "margin": 0.01, "now": True}
    assert holder.refreshes == 1


def test_a_forced_promotion_skips_the_challenge(holder, monkeypatch):
    moved = {}

    def promote(settings, version, *, reason, how):
        moved.update(version=version, how=how)
        return SimpleNamespace(as_event=lambda: {"decision": "forced"})

    monkeypatch.setattr(models.promotion, "challenge", lambda *a, **k: pytest.fail("challenged"))
    monkeypatch.setattr(models.promotion, "promote", promote)
    monkeypatch.setattr(models.registry, "resolve_version", lambda settings, model: "7")
    answer = _client(holder).post("/admin/promote/latest", params={"force": True}, headers=KEY)
    assert answer.status_code == 200 and moved == {"version": "7", "how": "forced"}


@pytest.mark.parametrize("window", [0, -5])
def test_a_window_of_no_shots_is_a_422(holder, window):
    answer = _client(holder).post("/admin/promote/4", params={"window": window}, headers=KEY)
    assert answer.status_code == 422


def test_a_rollback_with_nothing_to_roll_back_to_is_a_409(holder, monkeypatch):
    def rollback(settings):
        raise LookupError("the champion replaced no version: nothing to roll back to")

    monkeypatch.setattr(models.promotion, "rollback", rollback)
    answer = _client(holder).post("/admin/rollback", headers=KEY)
    assert answer.status_code == 409
    assert answer.json()["detail"] == "the champion replaced no version: nothing to roll back to"
