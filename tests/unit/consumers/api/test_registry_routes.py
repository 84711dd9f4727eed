"""`/models` and `/models/champion`: the registry's versions newest first with their aliases,
metrics and promotion story, read from a fake MLflow client."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pymongo.errors import ServerSelectionTimeoutError

import models.promotion.shadow
from consumers.api import registry_routes
from consumers.api.registry_routes import _promoted, describe_version
from models import registry
from parivision.settings import Settings

# 2023-11-14 22:13:20 UTC, in MLflow's milliseconds.
CREATED_MS = 1_700_000_000_000


def _version(number, tags=None, description=None):
    return SimpleNamespace(
        version=number, tags=tags or {}, creation_timestamp=CREATED_MS, description=description
    )


class Client:
    """What the routes ask MLflow: the versions of a model, and its aliases."""

    def __init__(self, versions, aliases) -> None:
        self.versions, self.aliases = versions, aliases
        self.searched: list[str] = []

    def search_model_versions(self, query):
        self.searched.append(query)
        return self.versions

    def get_registered_model(self, name):
        return SimpleNamespace(aliases=self.aliases)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        model_name="shots",
        champion_alias="champion",
        mongodb_database="pv_test",
    )


def _client(settings, monkeypatch, versions, aliases) -> tuple[TestClient, Client]:
    fake = Client(versions, aliases)
    monkeypatch.setattr(registry, "client", lambda settings: fake)
    app = FastAPI()
    app.include_router(registry_routes.router(settings))
    return TestClient(app), fake


def test_a_version_is_described_by_its_tags():
    tags = {
        "candidate": "lightgbm",
        "feature_set": "v4",
        "log_loss": "0.6531",
        "roc_auc": "not a number",
        "challenge.decision": "promoted",
        "challenge.window_shots": "5000",
        "shadow.shots": "1200",
        "owner": "me",
    }
    described = describe_version(_version(3, tags, "first"), ["champion", "b-alias"])
    assert described["version"] == "3" and described["aliases"] == ["b-alias", "champion"]
    assert described["created_at"] == "2023-11-14T22:13:20+00:00"
    assert described["metrics"] == {"log_loss": 0.6531, "roc_auc": None}
    assert described["challenge"] == {"decision": "promoted", "window_shots": "5000"}
    assert described["shadow"] == {"shots": "1200"}
    assert described["candidate"] == "lightgbm" and described["description"] == "first"
    assert described["tags"]["owner"] == "me"


def test_a_first_champion_was_trained_as_champion():
    described = describe_version(_version(1), ["champion"])
    assert _promoted(described) == {"how": "trained as champion", "at": "2023-11-14T22:13:20+00:00"}


def test_a_promoted_version_says_whom_it_replaced_and_why():
    tags = {
        "challenge.decision": "promoted",
        "challenge.decided_at": "2024-01-02T00:00:00",
        "challenge.reason": "log loss 0.64 < 0.65",
        "challenge.champion_version": "2",
        "challenge.window_shots": "5000",
    }
    assert _promoted(describe_version(_version(3, tags), [])) == {
        "how": "promoted",
        "at": "2024-01-02T00:00:00",
        "reason": "log loss 0.64 < 0.65",
        "replaced": "2",
        "window_shots": "5000",
    }


@pytest.mark.parametrize(
    ("how", "said"), [("shadow", "promoted after its shadow"), ("forced", "forced")]
)
def test_a_version_promoted_after_a_shadow_or_forced_says_so(how, said):
    tags = {
        "promoted.how": how,
        "promoted.at": "t",
        "promoted.reason": "r",
        "challenge.decision": "shadowing",
        "challenge.champion_version": "5",
    }
    promoted = _promoted(describe_version(_version(6, tags), []))
    assert promoted["how"] == said and promoted["replaced"] == "5" and promoted["reason"] == "r"


def test_a_version_rolled_back_to_says_when():
    tags = {"restored_at": "2024-02-01T00:00:00", "challenge.decision": "promoted"}
    promoted = _promoted(describe_version(_version(2, tags), []))
    assert promoted == {"how": "rolled back to", "at": "2024-02-01T00:00:00"}


def test_models_lists_versions_newest_first_by_number_not_by_text(settings, monkeypatch):
    versions = [_version(n) for n in (9, 10, 2)]
    client, fake = _client(settings, monkeypatch, versions, {"champion": "10", "old": "9"})
    body = client.get("/models").json()
    assert [v["version"] for v in body["versions"]] == ["10", "9", "2"]
    assert [v["aliases"] for v in body["versions"]] == [["champion"], ["old"], []]
    assert body["name"] == "shots" and body["champion_alias"] == "champion"
    assert body["shadow"] is None  # no database given: no shadow evidence asked for
    assert fake.searched == ["name='shots'"]


def test_models_of_an_unregistered_model_is_an_empty_list(settings, monkeypatch):
    client, _ = _client(settings, monkeypatch, [], {})
    assert client.get("/models").json()["versions"] == []


def test_the_champion_is_the_version_holding_the_alias(settings, monkeypatch):
    client, _ = _client(settings, monkeypatch, [_version(1), _version(2)], {"champion": "1"})
    body = client.get("/models/champion").json()
    assert body["version"] == "1" and body["promoted"]["how"] == "trained as champion"


def test_no_champion_is_a_404_saying_to_train(settings, monkeypatch):
    client, _ = _client(settings, monkeypatch, [_version(1)], {"candidate": "1"})
    answer = client.get("/models/champion")
    assert answer.status_code == 404
    assert answer.json()["detail"] == "no version of 'shots' is champion: run `parivision train`"


def test_a_database_that_does_not_answer_leaves_the_registry_s_answer_standing(
    settings, monkeypatch
):
    def progress(settings, db):
        raise ServerSelectionTimeoutError("localhost:27027: connection refused")

    monkeypatch.setattr(models.promotion.shadow, "progress", progress)
    fake = Client([_version(1)], {"champion": "1"})
    monkeypatch.setattr(registry, "client", lambda settings: fake)
    app = FastAPI()
    app.include_router(registry_routes.router(settings, db=object()))
    body = TestClient(app).get("/models").json()
    assert body["shadow"] == {
        "error": "MongoDB ('pv_test') did not answer: localhost:27027: connection refused"
    }
    assert [v["version"] for v in body["versions"]] == ["1"]
