"""Player form rebuilt from stored shots equals the batch values, and stays equal as outcomes
arrive on the feed (``tests/integration/test_api_contract.py`` checks it against the stream)."""

from __future__ import annotations

import numpy as np
import pytest

from consumers.api.history import PlayerHistories, build_history
from models.data import load_shots
from models.form import FORM_INPUT_COLUMNS, form_values, player_form


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
        state, used = histories[shot["player_id"]].form_state(shot["shot_id"])
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
    assert form_values(folded.form_state("new")[0], nxt) == form_values(whole.state, nxt)


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
        state, _ = histories[shot["player_id"]].form_state(shot["shot_id"])
        np.testing.assert_array_equal(form_values(state, shot), expected)
        differs += form_values(build_history(0, []).state, shot)[0] != expected[0]
    assert differs > len(stored) // 2  # most players had earlier shots
