"""``GET /leaderboard`` and the page's board, on a hand-worked example stored in the real MongoDB.

Every shot below is a 2 at p = 0.5 (1.0 expected point) unless said otherwise, so each number in
the table is worked out by hand, not by the code under test.  With the default prior of 100 shots:

=======  ====  ========  ======  ========  =========  ==========================  ======
player   team  attempts  made    points    expected   above (raw / shot)          shrunk
=======  ====  ========  ======  ========  =========  ==========================  ======
1 Ava    ATL   400       220     440       400        +40  (+0.100)               40/500  = +0.0800
2 Bo     ATL   25        17      34        25         +9   (+0.360)               9/125   = +0.0720
3 Cy     PHX   3,000     1,560   3,120     3,000      +120 (+0.040)               120/3100 = +0.0387
4 Di     BKN   30 (3s at p = 0.4)  8  24   36         -12  (-0.400)               -12/130 = -0.0923
5 Ed     BKN   10        10      20        10         +10  (+1.000)               below 20 shots
=======  ====  ========  ======  ========  =========  ==========================  ======

Cy has the largest total and Bo the best raw rate; shrunk, Ava leads.  Cy's shots are in game 2
(2017-11-20, season 2017-18); everyone else's in game 1 (2018-11-20, season 2018-19).  Ava also
has one shot with no outcome yet, which counts nowhere.
"""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import contextmanager

import httpx
import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient
from selenium.webdriver.support.ui import Select

from tests.integration.conftest import free_port, wait_until

pytestmark = pytest.mark.integration

# Real NBA team ids (the API resolves a team filter against the league's teams).
HAWKS, NETS, SUNS = 1610612737, 1610612751, 1610612756
TEAMS = {HAWKS: "Atlanta Hawks", NETS: "Brooklyn Nets", SUNS: "Phoenix Suns"}
# player id: (name, team id, attempts, made, p, shot value, game id, game date)
PLAYERS = {
    1: ("Ava", HAWKS, 400, 220, 0.5, 2, 1, 20181120),
    2: ("Bo", HAWKS, 25, 17, 0.5, 2, 1, 20181120),
    3: ("Cy", SUNS, 3000, 1560, 0.5, 2, 2, 20171120),
    4: ("Di", NETS, 30, 8, 0.4, 3, 1, 20181120),
    5: ("Ed", NETS, 10, 10, 0.5, 2, 1, 20181120),
}
# By hand, from the table in the docstring.
ABOVE = {1: 40.0, 2: 9.0, 3: 120.0, 4: -12.0, 5: 10.0}
SHRUNK = {1: 40 / 500, 2: 9 / 125, 3: 120 / 3100, 4: -12 / 130, 5: 10 / 110}
TEAM_SHRUNK = {HAWKS: 49 / 525, NETS: -2 / 140, SUNS: 120 / 3100}


def _docs() -> list[dict]:
    docs = []
    for player_id, (name, team_id, attempts, made, p, value, game_id, date) in PLAYERS.items():
        for i in range(attempts):
            docs.append(
                {
                    "shot_id": f"{game_id}-{player_id}-{i}",
                    "game_id": game_id,
                    "game_date": date,
                    "player_id": player_id,
                    "player_name": name,
                    "team_id": team_id,
                    "team_name": TEAMS[team_id],
                    "p_champion": p,
                    "shot_value": value,
                    "outcome": int(i < made),
                    "scored_at": 1_700_000_000.0 + len(docs),
                    "labelled_at": 1_700_000_000.5 + len(docs),
                    "x": -200 + (i * 37) % 400,
                    "y": 20 + (i * 53) % 250,
                }
            )
    # Scored, not yet labelled: in no sum.
    docs.append({**docs[0], "shot_id": "1-1-waiting", "p_champion": 0.9, "scored_at": 1.8e9})
    del docs[-1]["outcome"], docs[-1]["labelled_at"]
    return docs


@pytest.fixture(scope="module")
def seeded(services):
    from tests.integration.conftest import make_settings

    settings = make_settings(services)
    db = MongoClient(settings.mongodb())[settings.database()]
    db.shots.insert_many([{"_id": doc["shot_id"], **doc} for doc in _docs()])
    yield settings, db
    db.client.drop_database(settings.database())


@pytest.fixture(scope="module")
def client(seeded):
    from consumers.api.app import create_app

    settings, _ = seeded
    return TestClient(create_app(settings, follow_feed=False), raise_server_exceptions=False)


def _board(client, **params) -> dict:
    response = client.get("/leaderboard", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _ids(body: dict) -> list[int]:
    return [r["id"] for r in body["rows"]]


def test_players_rank_by_the_shrunk_value_with_every_number_as_worked_by_hand(client):
    body = _board(client)
    assert (body["by"], body["order"], body["prior_shots"], body["min_shots"]) == (
        "player",
        "best",
        100,
        20,
    )
    # Shrunk: Ava, Bo, Cy, Di; Ed has 10 attempts, fewer than 20.
    assert _ids(body) == [1, 2, 3, 4]
    assert (body["groups"], body["below_min_shots"]) == (4, 1)
    for row in body["rows"]:
        name, team_id, attempts, made, p, value, *_ = PLAYERS[row["id"]]
        assert (row["name"], row["team_name"]) == (name, TEAMS[team_id])
        assert (row["attempts"], row["made"]) == (attempts, made)
        assert row["field_goal_points"] == made * value
        assert row["expected_field_goal_points"] == pytest.approx(attempts * p * value)
        assert row["points_above_expectation"] == pytest.approx(ABOVE[row["id"]])
        assert row["per_shot"] == pytest.approx(ABOVE[row["id"]] / attempts)
        assert row["per_100"] == pytest.approx(100 * ABOVE[row["id"]] / attempts)
        assert row["shrunk_per_shot"] == pytest.approx(SHRUNK[row["id"]])
        assert row["shrunk_per_100"] == pytest.approx(100 * SHRUNK[row["id"]])
    by_id = {r["id"]: r for r in body["rows"]}
    assert by_id[1]["shrunk_per_shot"] == pytest.approx(0.08)
    assert by_id[4]["per_100"] == pytest.approx(-40.0)


def test_the_prior_and_the_minimum_are_parameters(client):
    # No prior: the raw rate ranks, and Bo's 25 lucky shots lead.
    raw = _board(client, prior_shots=0)
    assert _ids(raw) == [2, 1, 3, 4]
    assert raw["rows"][0]["shrunk_per_shot"] == pytest.approx(9 / 25)
    # Ed's 10 of 10 counts once the minimum is 10: 10 / (10 + 100) = 0.0909, first.
    low = _board(client, min_shots=10)
    assert _ids(low) == [5, 1, 2, 3, 4]
    assert low["rows"][0]["shrunk_per_shot"] == pytest.approx(10 / 110)
    assert _ids(_board(client, min_shots=401)) == [3]
    assert _ids(_board(client, limit=2)) == [1, 2]
    # A prior of 3,000 shots: Cy's volume wins, 120 / 6000 against Ava's 40 / 3400.
    assert _ids(_board(client, prior_shots=3000))[:2] == [3, 1]


def test_the_worst_list_starts_at_the_bottom(client):
    assert _ids(_board(client, order="worst")) == [4, 3, 2, 1]
    assert _ids(_board(client, order="worst", limit=1)) == [4]


def test_teams_sum_their_players(client):
    body = _board(client, by="team", min_shots=1)
    assert _ids(body) == [HAWKS, SUNS, NETS]
    rows = {r["id"]: r for r in body["rows"]}
    assert rows[HAWKS]["attempts"] == 425 and rows[NETS]["attempts"] == 40
    assert rows[HAWKS]["points_above_expectation"] == pytest.approx(49)
    assert rows[NETS]["points_above_expectation"] == pytest.approx(-2)
    for team_id, shrunk in TEAM_SHRUNK.items():
        assert rows[team_id]["shrunk_per_shot"] == pytest.approx(shrunk)
        assert rows[team_id]["name"] == TEAMS[team_id]


@pytest.mark.parametrize(
    ("params", "ids"),
    [
        ({"team": str(HAWKS)}, [1, 2]),
        ({"team": str(NETS), "min_shots": 1}, [5, 4]),
        ({"player_id": 4}, [4]),
        ({"game_id": 2}, [3]),
        ({"game_id": 1, "team": str(HAWKS)}, [1, 2]),
        ({"season": "2018-19"}, [1, 2, 4]),
        ({"season": "2017-18"}, [3]),
        ({"season": "2016-17"}, []),
        ({"since": 20180101}, [1, 2, 4]),
        ({"until": 20180101}, [3]),
        ({"since": 20171120, "until": 20171120}, [3]),
        ({"season": "2018-19", "until": 20181119}, []),
    ],
)
def test_filters_narrow_the_shots_counted(client, params, ids):
    assert _ids(_board(client, **params)) == ids


def test_a_team_filter_counts_only_that_teams_shots(client):
    # Di and Ed together, as the Nets are: -2 over 40 shots.
    body = _board(client, by="team", team=str(NETS), min_shots=1)
    assert _ids(body) == [NETS]
    assert body["rows"][0]["shrunk_per_shot"] == pytest.approx(-2 / 140)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"by": "coach"}, "by"),
        ({"order": "middle"}, "order"),
        ({"season": "2018-20"}, "season"),
        ({"season": "18-19"}, "season"),
        ({"season": "2018/19"}, "season"),
        ({"since": 2018}, "since"),
        ({"until": "tomorrow"}, "until"),
        ({"since": 20190101, "until": 20180101}, "until"),
        ({"min_shots": 0}, "min_shots"),
        ({"prior_shots": -1}, "prior_shots"),
        ({"player_id": 0}, "player_id"),
        ({"team": ""}, "team"),
        ({"limit": 501}, "limit"),
    ],
)
def test_bad_values_are_422_naming_the_field(client, params, field):
    response = client.get("/leaderboard", params=params)
    assert response.status_code == 422, response.text
    assert ["query", field] in [e["loc"] for e in response.json()["detail"]]


def test_a_game_names_its_points_field_goal_points(client):
    summary = client.get("/games/1").json()["summary"]
    # Ava 440 + Bo 34 + Di 24 + Ed 20 made; 400 + 25 + 36 + 10 expected.
    assert summary["field_goal_points"] == 518
    assert summary["expected_field_goal_points"] == pytest.approx(471)
    assert summary["points_above_expectation"] == pytest.approx(47)
    assert "points" not in summary and "expected_points" not in summary
    teams = {t["team_id"]: t for t in summary["teams"]}
    assert teams[HAWKS]["field_goal_points"] == 474 and teams[NETS]["field_goal_points"] == 44


def test_the_openapi_description_gives_the_prior(client):
    operation = client.get("/openapi.json").json()["paths"]["/leaderboard"]["get"]
    assert "prior_shots" in operation["description"] and "100" in operation["description"]
    params = {p["name"] for p in operation["parameters"]}
    assert {"team", "player_id", "season", "since", "until", "order", "min_shots"} <= params


# ---------------------------------------------------------------- the page, in Chromium

# Each row's cells: the cell's box, and its text's box clipped to the cell when the cell clips.
CELLS_JS = """
return Array.from(document.querySelectorAll(arguments[0] + ' tbody tr[data-id]'), tr =>
  Array.from(tr.cells, td => {
    const cell = td.getBoundingClientRect();
    const range = document.createRange();
    range.selectNodeContents(td);
    const text = range.getBoundingClientRect();
    const clips = getComputedStyle(td).overflowX === 'hidden';
    return {cell: [cell.left, cell.right], clips,
            text: clips ? [Math.max(text.left, cell.left), Math.min(text.right, cell.right)]
                        : [text.left, text.right]};
  }));
"""


@contextmanager
def _serving(settings):
    """The app on a free port in a thread (uvicorn), with the page's options fed from the
    stored shots as the live feed would have sent them."""
    import uvicorn

    from consumers.api.app import create_app

    app = create_app(settings, follow_feed=False)
    # One labelled shot of each player, long ago: the page learns the names, counts none.
    app.state.hub.publish_many(
        [{"type": "outcome", **d} for d in _docs() if d["shot_id"].endswith("-0")]
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(base), 60, "the API to answer")
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(30)


def _answers(base: str) -> bool | str:
    try:
        return httpx.get(f"{base}/leaderboard", timeout=5).status_code == 200
    except httpx.HTTPError as error:
        return str(error)


def _shown(driver, by: str) -> list[tuple[int, float]]:
    """The board's rows, read in one go (the page redraws it while it runs)."""
    rows = driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]),"
        " tr => [tr.dataset.id, tr.dataset.shrunk]);",
        f"#board-{by} tbody tr[data-id]",
    )
    return [(int(i), float(shrunk)) for i, shrunk in rows]


def _assert_no_overlap(driver, by: str) -> None:
    rows = driver.execute_script(CELLS_JS, f"#board-{by}")
    assert rows, f"no {by} rows"
    for cells in rows:
        for i, c in enumerate(cells):
            if not c["clips"]:  # numbers are never cut: their text fits in the cell
                assert c["cell"][0] - 0.5 <= c["text"][0] and c["text"][1] <= c["cell"][1] + 0.5, c
            if i:
                assert cells[i - 1]["text"][1] <= c["text"][0] + 0.5, (cells[i - 1], c)


def test_the_page_board_follows_the_team_filter_and_its_columns_do_not_overlap(seeded, tmp_path):
    from tests.integration.test_page import chromium

    settings, _ = seeded
    with _serving(settings) as base, chromium(tmp_path / f"chromium-{uuid.uuid4().hex[:6]}") as d:
        d.get(f"{base}/")
        wait_until(lambda: _shown(d, "player") and True or "no rows", 60, "the player board")
        # Everyone with 20+ shots, shrunk, as the API ranks them (Ed has 10).
        shown = _shown(d, "player")
        assert [i for i, _ in shown] == [1, 2, 3, 4]
        for player_id, shrunk in shown:
            assert shrunk == pytest.approx(SHRUNK[player_id], abs=1e-6)
        assert [i for i, _ in _shown(d, "team")] == [HAWKS, SUNS, NETS]
        _assert_no_overlap(d, "player")
        _assert_no_overlap(d, "team")
        cy = d.execute_script(
            "return document.querySelector(\"#board-player tr[data-id='3']\").innerText;"
        )
        assert "3,000" in cy and "3,120" in cy and "3,000.0" in cy

        d.find_element("css selector", "#board-order button[data-order='worst']").click()
        wait_until(
            lambda: [i for i, _ in _shown(d, "player")] == [4, 3, 2, 1] or _shown(d, "player"),
            30,
            "the worst list",
        )

        wait_until(
            lambda: len(Select(d.find_element("id", "filter-team")).options) == 4 or "options",
            30,
            "the team filter's options",
        )
        Select(d.find_element("id", "filter-team")).select_by_value(str(HAWKS))
        wait_until(
            lambda: [i for i, _ in _shown(d, "player")] == [2, 1] or _shown(d, "player"),
            30,
            "the board to follow the team filter",
        )
        assert [i for i, _ in _shown(d, "team")] == [HAWKS]
        d.find_element("css selector", "#board-order button[data-order='best']").click()
        wait_until(
            lambda: [i for i, _ in _shown(d, "player")] == [1, 2] or _shown(d, "player"),
            30,
            "the best list of the Hawks",
        )
        _assert_no_overlap(d, "player")
        time.sleep(0.3)
        errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors[:3]
