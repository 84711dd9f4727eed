"""The WebSocket live feed on the real stack: replay -> stream -> shots.scored -> API -> clients."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time

import pytest
from pymongo import MongoClient

from parivision.sources.csv_source import CsvSource
from producers.pacing import RatePacer
from producers.replay import replay
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration


class Listener(threading.Thread):
    """A client that reads everything, noting when each message arrived after it was made."""

    def __init__(self, base: str, spec: dict | None = None) -> None:
        super().__init__(daemon=True)
        from websockets.sync.client import connect

        self.ws = connect(base.replace("http://", "ws://") + "/ws/live", open_timeout=30)
        assert json.loads(self.ws.recv(timeout=30))["type"] == "hello"
        if spec is not None:
            self.ws.send(json.dumps({"filter": spec}))
            ack = json.loads(self.ws.recv(timeout=30))
            assert ack == {"type": "filter", "filter": spec}
        self.messages: list[dict] = []
        self.error: Exception | None = None
        self.lags: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                message = json.loads(self.ws.recv(timeout=0.5))
            except TimeoutError:
                continue
            except Exception as error:  # the connection ended: ids() says so from now on
                self.error = error
                return
            arrived = time.time()
            made_at = message.get("scored_at") or message.get("labelled_at")
            if made_at:
                self.lags.append(arrived - made_at)
            self.messages.append(message)

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        self.ws.close()

    def ids(self, kind: str) -> list[str]:
        if self.error is not None and not self.stop.is_set():
            raise AssertionError(f"the feed's connection ended: {self.error!r}") from self.error
        return [m["shot_id"] for m in self.messages if m["type"] == kind]


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _labelled(db, replay_id: str) -> int:
    return db.predictions.count_documents({"replay_id": replay_id, "outcome": {"$exists": True}})


def test_a_client_filtered_to_one_team_receives_exactly_that_teams_shots(
    settings_factory, pipeline, api, games_csv
):
    settings = settings_factory(outcome_delay_s=0.2)
    db = MongoClient(settings.mongodb())[settings.database()]
    first = next(iter(CsvSource(games_csv))).shot
    team = first["team_name"]
    with pipeline(settings), api(settings) as base:
        everything = Listener(base)
        one_team = Listener(base, {"team": team})
        one_game = Listener(base, {"game_id": first["game_id"]})
        for client in (everything, one_team, one_game):
            client.start()
        stats = replay(
            settings, CsvSource(games_csv), pacer=RatePacer(400), limit=2000, show_progress=False
        )
        wait_until(lambda: _labelled(db, stats.replay_id) == 2000, 180, "2,000 labelled shots")
        wait_until(lambda: len(everything.ids("outcome")) >= 2000, 60, "every outcome on the feed")
        for client in (everything, one_team, one_game):
            client.close()

    stored = {
        d["shot_id"]: d for d in db.predictions.find({"replay_id": stats.replay_id}, {"_id": 0})
    }
    assert sorted(everything.ids("scored")) == sorted(stored)
    assert sorted(everything.ids("outcome")) == sorted(stored)
    team_shots = sorted(i for i, d in stored.items() if d["team_name"] == team)
    game_shots = sorted(i for i, d in stored.items() if d["game_id"] == first["game_id"])
    assert 0 < len(team_shots) < len(stored) and 0 < len(game_shots) < len(stored)
    assert sorted(one_team.ids("scored")) == team_shots
    assert sorted(one_team.ids("outcome")) == team_shots
    assert sorted(one_game.ids("scored")) == game_shots
    # Each outcome on the feed is the stored one.
    outcomes = {m["shot_id"]: m["outcome"] for m in one_team.messages if m["type"] == "outcome"}
    assert outcomes == {i: stored[i]["outcome"] for i in team_shots}
    # Scored shots reach a reading client within the second.
    # Scored shots reach a reading client within the second (p95: this machine is shared).
    p95 = _quantile(everything.lags, 0.95)
    assert p95 < 1.0, f"p95 {p95:.3f} s, p99 {_quantile(everything.lags, 0.99):.3f} s"


def _stalled_client(base: str) -> socket.socket:
    """A WebSocket client that completes the handshake, then never reads a byte."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket()
    # Before connecting, so the window it offers stays small: the server's sends then block
    # after a few hundred messages instead of filling megabytes of loopback buffers.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect((host, int(port)))
    sock.sendall(
        (
            "GET /ws/live HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)  # byte by byte: nothing past the handshake is read
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def _how_it_ended(sock: socket.socket) -> str:
    """Read the stalled client's socket to its end: ``"close CODE REASON"`` for a close frame,
    ``"dropped"`` when the server closed the connection without one, ``"open"`` when it is
    still open after 30 s of silence."""
    sock.settimeout(30)
    data, ending = b"", "open"
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            ending = "dropped"
            break
        if not chunk:
            ending = "dropped"
            break
        data += chunk
    position = 0
    while position + 2 <= len(data):
        opcode, length = data[position] & 0x0F, data[position + 1] & 0x7F
        position += 2
        if length == 126:
            (length,) = struct.unpack(">H", data[position : position + 2])
            position += 2
        elif length == 127:
            (length,) = struct.unpack(">Q", data[position : position + 8])
            position += 8
        payload = data[position : position + length]
        position += length
        if opcode == 0x8:
            code = struct.unpack(">H", payload[:2])[0]
            return f"close {code} {payload[2:].decode()}"
    return ending


def test_a_client_that_never_reads_does_not_delay_the_others(
    settings_factory, pipeline, api, games_csv
):
    import httpx

    settings = settings_factory(outcome_delay_s=0.2, live_queue=600, live_max_missed=1500)
    db = MongoClient(settings.mongodb())[settings.database()]
    lags: dict[str, list[float]] = {}
    # Loopback buffers take a few MB for a client that reads nothing before the server's sends
    # block: the second replay is long enough to get past them.
    cases = {"alone": 2500, "beside a stalled client": 5000}
    with pipeline(settings), api(settings) as base:
        for case, shots in cases.items():
            stalled = _stalled_client(base) if case != "alone" else None
            reader = Listener(base)
            reader.start()
            stats = replay(
                settings,
                CsvSource(games_csv),
                pacer=RatePacer(500),
                limit=shots,
                show_progress=False,
            )
            replay_id = stats.replay_id
            wait_until(lambda r=replay_id, n=shots: _labelled(db, r) == n, 240, "all labelled")

            def heard(r=replay_id, messages=reader.messages, n=shots, case=case):
                got = sum(m.get("replay_id") == r for m in messages)
                return got >= 2 * n or f"{got} of {2 * n} ({case})"

            wait_until(heard, 60, "every scored shot and outcome at the reading client")
            reader.close()
            # Beside: only the second half, once the stalled client's buffers are full.
            lags[case] = reader.lags[-2 * 2500 :]
        live = httpx.get(f"{base}/health", timeout=30).json()["live"]
        ending = _how_it_ended(stalled)

    (p50, p90, p99), (p50_beside, p90_beside, p99_beside) = (
        tuple(_quantile(lags[case], q) for q in (0.5, 0.9, 0.99)) for case in cases
    )
    print(
        f"reading client's lag p50/p90/p99: {p50 * 1000:.0f}/{p90 * 1000:.0f}/{p99 * 1000:.0f} ms "
        f"alone, {p50_beside * 1000:.0f}/{p90_beside * 1000:.0f}/{p99_beside * 1000:.0f} ms "
        "beside a stalled client"
    )
    # A server that waited for the stalled client would stop the reader outright; what is left
    # to see is noise (p99 moved from 0.3 to 1.3 s and back between runs on the 2-core machine).
    assert p50_beside < p50 + 0.3, (p50_beside, p50)
    assert p90_beside < max(1.0, 2 * p90), (p90_beside, p90)
    # The stalled client really was held back: messages were dropped for it, or it was closed.
    assert live["dropped_for_clients"] > 0 or live["closed_too_slow"] == 1, live
    if live["closed_too_slow"]:
        # Its buffers are full, so the close frame may never get through: the server gives
        # up on it (and so may uvicorn's keepalive), but the connection is closed either way.
        assert ending != "open", ending
