"""Teams and players by name on the real stack: REST filters and the WebSocket feed, including
what the feed does with frames it will not read (binary, oversized)."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest
from pymongo import MongoClient

from parivision.sources.csv_source import CsvSource
from producers.pacing import RatePacer
from producers.replay import replay
from tests.integration.conftest import wait_for_progress

pytestmark = pytest.mark.integration

SHOTS = 300


def _connect(base: str):
    from websockets.sync.client import connect

    ws = connect(base.replace("http://", "ws://") + "/ws/live", open_timeout=30)
    assert json.loads(ws.recv(timeout=30))["type"] == "hello"
    return ws


def _answer(ws, frame: str | bytes) -> dict:
    """Send one frame; the next message that is not feed traffic is its answer."""
    ws.send(frame)
    while True:
        message = json.loads(ws.recv(timeout=60))
        if message["type"] not in ("scored", "outcome", "missed"):
            return message


def _shot_ids(base: str, params: dict) -> list[str]:
    response = httpx.get(f"{base}/shots", params={**params, "limit": 1000}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    return sorted(s["shot_id"] for s in body["shots"])


def test_teams_and_players_are_found_by_name_and_typos_get_the_nearest(
    settings_factory, pipeline, api, games_csv
):
    settings = settings_factory(outcome_delay_s=0.2)
    db = MongoClient(settings.mongodb())[settings.database()]
    first = next(iter(CsvSource(games_csv))).shot
    team_id, team_name = first["team_id"], first["team_name"]
    nickname = team_name.split()[-1].lower()  # "Portland Trail Blazers" -> "blazers"
    with pipeline(settings), api(settings) as base:
        by_nickname = _connect(base)
        assert _answer(by_nickname, json.dumps({"filter": {"team": nickname}})) == {
            "type": "filter",
            "filter": {"team": team_name},
        }
        typo = _connect(base)
        error = _answer(typo, json.dumps({"filter": {"team": "Miami Heats"}}))
        assert error["type"] == "error" and "Miami Heat" in error["nearest"], error
        assert "Miami Heat" in error["msg"]

        stats = replay(
            settings, CsvSource(games_csv), pacer=RatePacer(400), limit=SHOTS, show_progress=False
        )
        labelled = {"replay_id": stats.replay_id, "outcome": {"$exists": True}}
        wait_for_progress(lambda: db.predictions.count_documents(labelled), SHOTS, "labelled")
        team_shots = sorted(db.shots.distinct("shot_id", {"team_id": team_id}))
        assert 0 < len(team_shots) < SHOTS

        # The socket subscribed by nickname gets exactly the team's shots and outcomes.
        received: list[dict] = []

        def outcomes() -> int:
            while True:  # everything that has arrived
                try:
                    received.append(json.loads(by_nickname.recv(timeout=0.2)))
                except TimeoutError:
                    return sum(m["type"] == "outcome" for m in received)

        wait_for_progress(outcomes, len(team_shots), "the team's outcomes on the feed")
        for kind in ("scored", "outcome"):
            assert sorted(m["shot_id"] for m in received if m["type"] == kind) == team_shots

        # REST: the id, the nickname and the full name in capitals list the same shots.
        assert _shot_ids(base, {"team": team_id}) == team_shots
        assert _shot_ids(base, {"team": nickname}) == team_shots
        assert _shot_ids(base, {"team": team_name.upper()}) == team_shots
        for path in ("/shots", "/live/recent", "/leaderboard"):
            unknown = httpx.get(f"{base}{path}", params={"team": "Miami Heats"}, timeout=30)
            assert unknown.status_code == 404, (path, unknown.text)
            assert "Miami Heat" in unknown.json()["nearest"], (path, unknown.text)
        recent = httpx.get(f"{base}/live/recent", params={"team": nickname}, timeout=30).json()
        assert recent["messages"] and {m["team_id"] for m in recent["messages"]} == {team_id}

        # Players: by full name in any case; a typo is 404 with the nearest names.
        counts = Counter(d["player_id"] for d in db.predictions.find({}, {"player_id": 1}))
        player_id = counts.most_common(1)[0][0]
        player_name = db.predictions.find_one({"player_id": player_id})["player_name"]
        player_shots = sorted(db.shots.distinct("shot_id", {"player_id": player_id}))
        assert _shot_ids(base, {"player": player_name.lower()}) == player_shots
        misspelt = httpx.get(f"{base}/shots", params={"player": player_name + "x"}, timeout=30)
        assert misspelt.status_code == 404 and player_name in misspelt.json()["nearest"]
        ack = _answer(typo, json.dumps({"filter": {"player": player_name.upper()}}))
        assert ack == {
            "type": "filter",
            "filter": {"player_id": player_id, "player": player_name},
        }
        for ws in (by_nickname, typo):
            ws.close()


def test_the_feed_answers_binary_and_oversized_frames_and_stays_open(settings_factory, api):
    with api(settings_factory()) as base:
        ws = _connect(base)
        knicks = json.dumps({"filter": {"team": "Knicks"}})
        acked = {"type": "filter", "filter": {"team": "New York Knicks"}}

        binary = _answer(ws, b"\x00\x01binary")
        assert binary["type"] == "error" and "binary" in binary["msg"]
        assert _answer(ws, knicks) == acked

        five_mb = _answer(ws, "x" * 5_000_000)
        assert five_mb["type"] == "error" and "limit" in five_mb["msg"]
        assert _answer(ws, knicks) == acked

        two_mb_value = _answer(ws, json.dumps({"filter": {"team": "y" * 2_000_000}}))
        long_value = _answer(ws, json.dumps({"filter": {"game_id": "z" * 3000}}))
        for error in (binary, five_mb, two_mb_value, long_value):
            assert error["type"] == "error" and len(json.dumps(error)) < 400, error
        assert "zzz" in long_value["msg"]  # a prefix of what was sent, no more
        assert _answer(ws, knicks) == acked
        ws.close()
