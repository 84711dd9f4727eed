import numpy as np
import pandas as pd

from models.original import ORIGINAL_FEATURE_NAMES, original_features, zone_combined
from parivision.schemas import CSV_COLUMNS
from tests.conftest import shared_file


def test_reproduces_the_original_projects_preprocessed_sample_exactly():
    raw = pd.read_csv(shared_file("virtualbets_sample_1000.csv")).rename(columns=CSV_COLUMNS)
    silver = pd.read_csv(shared_file("virtualbets_sample_1000_silver.csv"))
    ours = original_features(raw)
    assert ours.shape == (1000, len(ORIGINAL_FEATURE_NAMES))
    for i, name in enumerate(ORIGINAL_FEATURE_NAMES):
        np.testing.assert_allclose(ours[:, i], silver[name].to_numpy(), err_msg=name)


def test_mid_range_is_split_by_side_and_unknown_zones_are_missing():
    assert zone_combined("Mid-Range", "Left Side Center(LC)") == 3
    assert zone_combined("Mid-Range", "Right Side(R)") == 4
    assert zone_combined("Left Corner 3", "Left Side(L)") == zone_combined(
        "Right Corner 3", "Right Side(R)"
    )
    assert np.isnan(zone_combined("Moon", "Center(C)"))
