"""A lineage records the files and filters a model was trained on; read again, it gives the same
shots (counted here with pandas on the same file)."""

from __future__ import annotations

import doctest

import pandas as pd
import pytest

from models import lineage as lineage_module
from models.data import training_frames
from models.lineage import FILE, SYNTHETIC, DataSource, Lineage, lineage_of, read_lineage


def test_docstring_examples():
    result = doctest.testmod(lineage_module)
    assert result.attempted > 0 and result.failed == 0


def test_a_file_s_lineage_reads_the_same_shots_as_train_did(nba_csv):
    lineage = lineage_of([str(nba_csv)], since=20181101, until=20181130, half_life_days=90)
    (source,) = lineage.sources
    assert (source.kind, source.location) == (FILE, str(nba_csv.resolve()))
    assert Lineage.from_json(lineage.to_json()) == lineage
    assert Lineage.from_json(lineage.to_json()).half_life_days == 90

    ((_, read),) = read_lineage(lineage)
    trained, _ = training_frames([str(nba_csv)], since=20181101, until=20181130)
    raw = pd.read_csv(nba_csv, usecols=["Game Date"])
    by_hand = int(raw["Game Date"].between(20181101, 20181130).sum())
    assert len(read) == len(trained) == by_hand
    assert read["game_date"].min() >= 20181101 and read["game_date"].max() <= 20181130


def test_the_first_rows_of_a_file_are_the_first_rows_read(nba_csv):
    lineage = lineage_of([str(nba_csv)], limit=500)
    ((_, read),) = read_lineage(lineage)
    assert len(read) == 500 and read["player_id"].nunique() == 1  # the file starts with Kobe


def test_the_synthetic_games_are_generated_again_alike():
    source = DataSource(SYNTHETIC, seed=20_240, shots=800)
    ((_, first),) = read_lineage(Lineage((source,)))
    ((_, again),) = read_lineage(Lineage((source,)))
    pd.testing.assert_frame_equal(first, again)
    assert len(first) == 800


def test_a_store_source_is_added_once_and_text_that_is_not_a_lineage_is_refused():
    store = DataSource("store", "parivision")
    lineage = Lineage(()).plus(store).plus(DataSource("store", "parivision"))
    assert lineage.sources == (store,)
    with pytest.raises(ValueError, match="not a lineage"):
        Lineage.from_json('{"files": []}')
    with pytest.raises(ValueError, match="unknown lineage source kind"):
        DataSource("s3")
