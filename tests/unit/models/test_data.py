"""Training on several shot files at once: overlapping games count once, in time order."""

from __future__ import annotations

import pandas as pd
import pytest

from models.data import load_shots, training_frames


@pytest.fixture(scope="module")
def two_files(nba_csv, tmp_path_factory):
    """Two 22-column files that overlap: the second like the bulk file, without event ids, and
    holding the same games (and more) as the first's last rows."""
    raw = pd.read_csv(nba_csv, nrows=60_000).iloc[-6_000:]
    folder = tmp_path_factory.mktemp("files")
    first, second = folder / "first.csv", folder / "second.csv.gz"
    raw.iloc[:4_000].to_csv(first, index=False)
    bulk_like = raw.iloc[2_000:].assign(**{"Game Event ID": None})
    bulk_like.to_csv(second, index=False)
    return first, second


def test_a_player_game_in_two_files_counts_once_and_the_shots_stay_in_time_order(two_files):
    first, second = two_files
    frame, name = training_frames([str(first), str(second)])
    a, b = load_shots(first), load_shots(second)
    games_a = set(zip(a["game_id"], a["player_id"], strict=True))
    only_b = b[[g not in games_a for g in zip(b["game_id"], b["player_id"], strict=True)]]

    assert name == "first.csv+second.csv.gz"
    assert len(frame) == len(a) + len(only_b) < len(a) + len(b)
    assert frame.attrs["duplicate_rows"] == len(b) - len(only_b) > 0
    # Every shot of the first file is there with its event id, and each player's game comes
    # from one file only (all its shots with event ids, or none).
    assert frame["game_event_id"].notna().sum() == len(a)
    from_first = frame["game_event_id"].notna().groupby([frame["game_id"], frame["player_id"]])
    assert (from_first.nunique() == 1).all()
    assert frame["game_date"].is_monotonic_increasing


def test_since_keeps_the_later_shots_and_names_the_cut(two_files):
    first, second = two_files
    whole, _ = training_frames([str(first), str(second)])
    cut = int(whole["game_date"].iloc[len(whole) // 2])
    later, name = training_frames([str(first), str(second)], since=cut)
    assert name.endswith(f"since {cut}")
    assert len(later) == int((whole["game_date"] >= cut).sum()) < len(whole)
    with pytest.raises(ValueError, match="no shots on or after 21000101"):
        training_frames([str(first)], since=21_000_101)
