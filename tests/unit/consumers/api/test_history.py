"""Player form rebuilt from stored shots equals the batch values, and stays equal as outcomes
arrive on the feed (``tests/integration/test_api_contract.py`` checks it against the stream)."""

from __future__ import annotations

import numpy as np
import pytest

from consumers.api.history import PlayerHistories, build_history
from models.data import load_shots
from models.form import FORM_INPUT_COLUMNS, FORM_NAMES, form_values, player_form


@pytest.fixture(scope="module")
def shots(games_csv) -> list[dict]:
    frame = load_shots(games_csv, limit=6000)
    keep = [*FORM_INPUT_COLUMNS, "game_date", "game_event_id", "made"]
    records = frame[keep].to_dict("records")
    return [{**r, "shot_id": f"{r['game_id']}-{r['game_event_id']}"} for r in records]


def _stored(shot: dict) -> dict:
    """A shot as the API reads it back from ``predictions``."""
    return {**shot, "outcome": shot["made"]}


def test_a_stored_shot_gets_the_form_from_the_shots_before_it(shots) -> None:
    batch = player_form({c: [s[c] for s in shots] for c in (*FORM_INPUT_COLUMNS, "made")})
    by_player: dict[int, list[dict]] = {}
    for shot in shots:
        by_player.setdefault(shot["player_id"], []).append(shot)
    # Stored in any order: the history sorts them back into game order.
    histories = {
        pid: build_history(pid, list(reversed(player_shots)))
        for pid, player_shots in by_player.items()
    }
    for shot, expected in zip(shots, batch, strict=True):
        state, used = histories[shot["player_id"]].form_state(shot)
        assert used["as_of"] == "before this shot"
        np.testing.assert_array_equal(form_values(state, shot), expected)


def test_outcomes_from_the_feed_fold_in_as_a_reload_from_the_store_would(shots) -> None:
    player = max(
        {s["player_id"] for s in shots}, key=lambda p: sum(s["player_id"] == p for s in shots)
    )
    mine = [s for s in shots if s["player_id"] == player]
    half = len(mine) // 2
    histories = PlayerHistories(db=None)
    histories._cache[player] = build_history(player, mine[:half])
    for shot in mine[half:]:
        histories.record(_stored(shot))
    histories.record(_stored(mine[-1]))  # a redelivered outcome changes nothing
    folded = histories.get_many([player])[player]
    whole = build_history(player, mine)
    assert folded.state == whole.state and len(folded.shots) == len(mine)
    nxt = {**mine[-1], "shot_id": "new", "period": 4, "minutes_remaining": 0}
    assert form_values(folded.form_state({"shot_id": "new"})[0], nxt) == form_values(
        whole.state, nxt
    )


def test_an_outcome_without_the_shots_fields_makes_the_history_reload(shots) -> None:
    player = shots[0]["player_id"]
    histories = PlayerHistories(db=None)
    histories._cache[player] = build_history(player, [shots[0]])
    histories.record({"player_id": player, "shot_id": "old-record", "outcome": 1})
    assert player in histories._stale


def test_a_warm_started_history_gives_the_form_batch_computes_after_the_history(shots) -> None:
    """With the players' states after earlier shots (Settings.form_history), a stored shot's
    form is batch form over those earlier shots and the stored ones together, as the warm
    stream computed it."""
    from models.form import form_states

    columns = (*FORM_INPUT_COLUMNS, "made")
    earlier, stored = shots[:3000], shots[3000:]
    warm = form_states({c: [s[c] for s in earlier] for c in columns})
    batch = player_form({c: [s[c] for s in shots] for c in columns})[3000:]
    by_player: dict[int, list[dict]] = {}
    for shot in stored:
        by_player.setdefault(shot["player_id"], []).append(shot)
    histories = {
        pid: build_history(pid, mine, warm.get(str(pid))) for pid, mine in by_player.items()
    }
    differs = 0
    for shot, expected in zip(stored, batch, strict=True):
        state, _ = histories[shot["player_id"]].form_state(shot)
        np.testing.assert_array_equal(form_values(state, shot), expected)
        differs += form_values(build_history(0, []).state, shot)[0] != expected[0]
    assert differs > len(stored) // 2  # most players had earlier shots


def _busiest(shots) -> list[dict]:
    player = max(
        {s["player_id"] for s in shots}, key=lambda p: sum(s["player_id"] == p for s in shots)
    )
    return [s for s in shots if s["player_id"] == player]


def test_a_shot_from_the_past_never_sees_a_later_shot(shots) -> None:
    """A backtest through the API: a shot not stored, dated between two of the player's games,
    gets the form of the shots before it only (the store holds later ones too)."""
    mine = _busiest(shots)
    history = build_history(mine[0]["player_id"], mine)
    dates = sorted({s["game_date"] for s in mine})
    middle = dates[len(dates) // 2]
    earlier = [s for s in mine if s["game_date"] < middle]
    asked = {**mine[0], "shot_id": "asked", "game_id": 99, "game_date": middle}
    state, used = history.form_state(asked)
    # Counted by hand from the dates, and the rates from the shots before only.
    assert used["shots"] == len(earlier) and used["as_of"] == "before this shot's moment"
    assert used["last_game_date"] < middle
    assert state["n"] == len(earlier) and state["m"] == sum(s["made"] for s in earlier)
    # After the last shot: everything ("now"), the same state the history holds.
    later = {**asked, "game_date": dates[-1] + 1}
    assert history.form_state(later)[1]["as_of"] == "now"
    assert history.form_state(later)[0]["n"] == len(mine)


def test_earlier_in_the_same_game_means_earlier_on_the_clock(shots) -> None:
    mine = _busiest(shots)
    game = max({s["game_id"] for s in mine}, key=lambda g: sum(s["game_id"] == g for s in mine))
    in_game = [s for s in mine if s["game_id"] == game]
    history = build_history(mine[0]["player_id"], mine)
    first = in_game[0]
    asked = {**first, "shot_id": "asked", "period": first["period"], "seconds_remaining": 0}
    asked["minutes_remaining"] = first["minutes_remaining"]  # the same minute, later second
    state, used = history.form_state(asked)
    before_game = [s for s in mine if s["game_date"] < first["game_date"]]
    # Same minute, 0 s left: after the game's first shot (unless it came at :00), no later one.
    expected = len(before_game) + (1 if first["seconds_remaining"] > 0 else 0)
    assert used["shots"] == expected
    values = dict(zip(FORM_NAMES, form_values(state, asked), strict=True))
    assert values["game_shots_before"] == expected - len(before_game)


def test_a_shot_inside_the_warm_start_files_is_scored_from_the_files_shots_before_it(
    games_csv,
) -> None:
    """The warm start holds each player's whole file: a shot dated inside it must not see the
    file's later shots (form_history.last_game_date after the shot was the bug)."""
    from models.data import warm_start

    warm = warm_start(str(games_csv))
    player, ends = next(iter(warm.last_date.items()))
    files = warm.shots_of(player)
    dates = sorted({s["game_date"] for s in files})
    middle = dates[len(dates) // 2]
    earlier = [s for s in files if s["game_date"] < middle]
    histories = PlayerHistories(db=None, warm_start=warm)
    stored = build_history(player, [], warm.states.get(str(player)))
    asked = {**files[0], "shot_id": "asked", "game_id": 99, "game_date": middle}
    state, used = histories.form_state(stored, asked)
    assert used["shots"] == len(earlier) and state["n"] == len(earlier)
    assert used["last_game_date"] < middle and used["warm_start"]
    # After the files: the warm state (the player's whole file), as the stream starts from.
    after = {**asked, "game_date": ends + 1}
    assert histories.form_state(stored, after)[0]["n"] == len(files)
