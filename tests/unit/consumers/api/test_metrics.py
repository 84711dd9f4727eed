"""The API's `/metrics`: requests counted by route template (not one series per id), method and
status, and the live feed's clients and dropped messages as Prometheus scrapes them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from consumers.api import metrics as api_metrics_module
from consumers.api.metrics import RequestMetrics, api_metrics, route_template


@pytest.fixture
def hub():
    return SimpleNamespace(clients=set(), dropped=0)


@pytest.fixture
def served(hub):
    metrics = api_metrics()
    app = FastAPI()
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.include_router(api_metrics_module.router(metrics, hub))

    @app.get("/players/{player_id}")
    def player(player_id: int):
        if player_id == 404:
            raise HTTPException(404, detail="no such player")
        return {"player_id": player_id}

    @app.get("/boom")
    def boom():
        raise RuntimeError("a bug")

    return TestClient(app, raise_server_exceptions=False), metrics


def _requests(metrics, **labels) -> float | None:
    return metrics.registry.get_sample_value("parivision_api_requests_total", labels)


def test_requests_are_counted_by_route_template_method_and_status(served):
    client, metrics = served
    for player_id in (1, 2, 3, 404):
        client.get(f"/players/{player_id}")
    template = "/players/{player_id}"
    assert _requests(metrics, route=template, method="GET", status="200") == 3
    assert _requests(metrics, route=template, method="GET", status="404") == 1
    assert _requests(metrics, route="/players/1", method="GET", status="200") is None
    assert (
        metrics.registry.get_sample_value(
            "parivision_api_request_seconds_count", {"route": template}
        )
        == 4
    )


def test_a_path_no_route_has_shares_one_label(served):
    client, metrics = served
    client.get("/nothing/here")
    client.get("/nor/here")
    assert _requests(metrics, route="unmatched", method="GET", status="404") == 2


def test_a_request_that_crashes_is_counted_as_a_500(served):
    client, metrics = served
    assert client.get("/boom").status_code == 500
    assert _requests(metrics, route="/boom", method="GET", status="500") == 1


def test_a_matched_route_in_the_scope_names_itself():
    assert route_template({"route": SimpleNamespace(path="/games/{game_id}")}) == "/games/{game_id}"
    assert route_template({}) == "unmatched"


def test_a_scrape_reports_the_live_clients_and_only_the_new_drops(served, hub):
    client, metrics = served
    hub.clients = {object(), object(), object()}
    hub.dropped = 5
    text = client.get("/metrics").text
    assert "parivision_live_clients 3.0" in text
    assert "parivision_live_dropped_total 5.0" in text
    hub.dropped = 8  # 3 more since the last scrape: the counter reaches 8, not 5 + 8
    client.get("/metrics")
    assert metrics.registry.get_sample_value("parivision_live_dropped_total") == 8
    hub.clients = set()
    client.get("/metrics")
    assert metrics.registry.get_sample_value("parivision_live_clients") == 0
    assert metrics.registry.get_sample_value("parivision_live_dropped_total") == 8


def test_the_scrape_is_prometheus_text(served):
    client, _ = served
    answer = client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain; version=")
    assert "# TYPE parivision_api_requests_total counter" in answer.text


def test_each_app_gets_its_own_counters():
    first, second = api_metrics(), api_metrics()
    first["predictions"].inc(3)
    assert second.registry.get_sample_value("parivision_api_predictions_total") == 0
