"""A small receiver of Alertmanager's webhook: logs each alert and keeps it in ``alerts.jsonl``.

``parivision alerts-webhook`` runs it on ``127.0.0.1:{alerts_webhook_port}``; the local
Alertmanager that ``parivision up`` starts sends to it unless ``PARIVISION_ALERTS_WEBHOOK_URL``
points elsewhere.  Each alert of each notification (``POST /alerts``, Alertmanager's webhook
payload, version 4) becomes one JSON line in ``{home}/alerts.jsonl``, firing and resolved alike,
so ``tail -f`` or ``jq`` shows what fired when.  ``GET /health`` answers once it listens.

Example:
    >>> payload = {"version": "4", "status": "firing", "receiver": "parivision-webhook",
    ...            "alerts": [{"status": "firing", "labels": {"alertname": "PariVisionDataDrift",
    ...            "severity": "warning"}, "annotations": {"summary": "Data drift: 60% drifted"}}]}
    >>> [(r["status"], r["alertname"], r["severity"], r["summary"]) for r in alert_records(payload)]
    [('firing', 'PariVisionDataDrift', 'warning', 'Data drift: 60% drifted')]
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from parivision.settings import Settings

__all__ = ["ALERTS_FILE_NAME", "AlertLog", "alert_records", "make_server", "serve"]

log = logging.getLogger(__name__)

ALERTS_FILE_NAME = "alerts.jsonl"
PATH = "/alerts"
# Alertmanager caps a notification at max_alerts (50 in infra/alertmanager); this bounds a body.
MAX_BODY = 1 << 20


def alert_records(payload: Any, received_at: str | None = None) -> list[dict[str, Any]]:
    """One flat record per alert of an Alertmanager webhook ``payload``.

    Raises:
        ValueError: ``payload`` is not a webhook notification (says what is missing).
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise ValueError("not an Alertmanager webhook notification: no list of 'alerts'")
    received_at = received_at or datetime.now(UTC).isoformat(timespec="milliseconds")
    records = []
    for i, alert in enumerate(payload["alerts"]):
        if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
            raise ValueError(f"alert {i} has no 'labels' object")
        labels, annotations = alert["labels"], alert.get("annotations") or {}
        records.append(
            {
                "received_at": received_at,
                "status": alert.get("status", payload.get("status")),
                "alertname": labels.get("alertname"),
                "severity": labels.get("severity"),
                "summary": annotations.get("summary"),
                "description": annotations.get("description"),
                "labels": labels,
                "annotations": annotations,
                "starts_at": alert.get("startsAt"),
                "ends_at": alert.get("endsAt"),
                "fingerprint": alert.get("fingerprint"),
                "generator_url": alert.get("generatorURL"),
                "receiver": payload.get("receiver"),
                "group_key": payload.get("groupKey"),
            }
        )
    return records


class AlertLog:
    """``alerts.jsonl``: one JSON line per alert, appended and flushed as each arrives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, records: list[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(record, sort_keys=True) + "\n" for record in records)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(lines)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "parivision-alerts-webhook"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.split("?", 1)[0] != PATH:
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"alerts go to POST {PATH}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"over {MAX_BODY} bytes"})
            return
        body = self.rfile.read(length)
        try:
            records = alert_records(json.loads(body))
        except ValueError as error:  # json.JSONDecodeError is a ValueError too
            log.warning("refused a notification from %s: %s", self.client_address[0], error)
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(error)})
            return
        self.server.alert_log.append(records)
        for r in records:
            status, name, severity = str(r["status"]).upper(), r["alertname"], r["severity"]
            log.info("%s %s [%s] %s", status, name, severity, r["summary"])
        self._reply(HTTPStatus.OK, {"received": len(records)})

    def do_GET(self) -> None:  # noqa: N802
        if self.path.split("?", 1)[0] == "/health":
            self._reply(HTTPStatus.OK, {"ok": True, "file": str(self.server.alert_log.path)})
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"alerts go to POST {PATH}"})

    def _reply(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's signature)
        log.debug("%s %s", self.client_address[0], format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], alert_log: AlertLog) -> None:
        self.alert_log = alert_log
        super().__init__(address, _Handler)


def make_server(
    settings: Settings, host: str = "127.0.0.1", port: int | None = None
) -> ThreadingHTTPServer:
    """A bound server (not yet serving) writing to ``{home}/alerts.jsonl``.

    Raises:
        OSError: the port is taken (the message names it and the setting).
    """
    port = settings.alerts_webhook_port if port is None else port
    path = settings.resolved_home() / ALERTS_FILE_NAME
    try:
        return _Server((host, port), AlertLog(path))
    except OSError as error:
        raise OSError(
            f"cannot receive alerts on {host}:{port} ({error}); stop what listens there or set "
            "PARIVISION_ALERTS_WEBHOOK_PORT to a free port (and restart `parivision up`'s "
            "Alertmanager, which sends to it: `parivision down` then `parivision up`)"
        ) from error


def serve(server: ThreadingHTTPServer, stop: threading.Event) -> None:
    """Serve until ``stop`` is set, then close the socket."""
    thread = threading.Thread(target=server.serve_forever, name="alerts-webhook", daemon=True)
    thread.start()
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
