"""The alerts receiver: Alertmanager's webhook in, one JSON line per alert out."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from consumers.alerts_webhook import alert_records, make_server, serve
from parivision.settings import Settings

# What Alertmanager 0.25 posts (webhook payload version 4), trimmed to the fields it always sends.
NOTIFICATION = {
    "version": "4",
    "groupKey": '{}/{severity="critical"}:{alertname="PariVisionProcessDown"}',
    "status": "firing",
    "receiver": "parivision-webhook",
    "groupLabels": {"alertname": "PariVisionProcessDown"},
    "commonLabels": {"alertname": "PariVisionProcessDown", "severity": "critical"},
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "PariVisionProcessDown",
                "severity": "critical",
                "job": job,
                "instance": f"{job}:9101",
            },
            "annotations": {"summary": f"The {job} process is down", "description": "Check it."},
            "startsAt": "2026-12-01T04:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": f"fp-{job}",
        }
        for job in ("stream", "sink")
    ],
}


@pytest.fixture
def receiver(tmp_path):
    settings = Settings(_env_file=None, home=tmp_path / "home")
    server = make_server(settings, port=0)
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(server, stop), daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}", tmp_path / "home" / "alerts.jsonl"
    stop.set()
    thread.join(timeout=10)


def test_each_alert_of_a_notification_is_one_line(receiver):
    url, alerts_file = receiver

    response = httpx.post(f"{url}/alerts", json=NOTIFICATION, timeout=10)

    assert response.status_code == 200 and response.json() == {"received": 2}
    lines = [json.loads(line) for line in alerts_file.read_text().splitlines()]
    assert [(r["status"], r["alertname"], r["severity"], r["summary"]) for r in lines] == [
        ("firing", "PariVisionProcessDown", "critical", "The stream process is down"),
        ("firing", "PariVisionProcessDown", "critical", "The sink process is down"),
    ]
    assert lines[0]["labels"]["instance"] == "stream:9101" and lines[1]["fingerprint"] == "fp-sink"


def test_notifications_append_and_resolved_ones_are_kept_too(receiver):
    url, alerts_file = receiver
    stream_back = {**NOTIFICATION["alerts"][0], "status": "resolved"}
    resolved = {**NOTIFICATION, "status": "resolved", "alerts": [stream_back]}

    for payload in (NOTIFICATION, resolved):
        assert httpx.post(f"{url}/alerts", json=payload, timeout=10).status_code == 200

    statuses = [json.loads(line)["status"] for line in alerts_file.read_text().splitlines()]
    assert statuses == ["firing", "firing", "resolved"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [(b"{not json", "Expecting"), (b'{"status": "firing"}', "no list of 'alerts'")],
)
def test_a_body_that_is_not_a_notification_is_refused_and_not_written(receiver, body, problem):
    url, alerts_file = receiver

    response = httpx.post(f"{url}/alerts", content=body, timeout=10)

    assert response.status_code == 400 and problem in response.json()["error"]
    assert not alerts_file.exists()


def test_other_paths_say_where_alerts_go(receiver):
    url, _ = receiver
    assert httpx.post(f"{url}/", json=NOTIFICATION, timeout=10).status_code == 404
    assert httpx.get(f"{url}/health", timeout=10).json()["ok"] is True


def test_an_alert_without_labels_is_named():
    with pytest.raises(ValueError, match="alert 1 has no 'labels'"):
        alert_records({"alerts": [{"labels": {}}, {"status": "firing"}]})


def test_a_taken_port_names_the_setting(tmp_path):
    settings = Settings(_env_file=None, home=tmp_path)
    first = make_server(settings, port=0)
    try:
        with pytest.raises(OSError, match="PARIVISION_ALERTS_WEBHOOK_PORT"):
            make_server(settings, port=first.server_address[1])
    finally:
        first.server_close()
