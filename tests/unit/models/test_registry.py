import shutil
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from models import registry
from models.features import CATEGORICAL, FEATURE_NAMES, FEATURE_SET


@pytest.fixture(scope="module")
def legacy_version(tmp_path_factory, fit_and_check):
    """A version registered the old way: a native LightGBM model, before the candidates.

    The store has no champion alias (tests here may set other aliases).
    """
    import mlflow
    import mlflow.lightgbm

    from infra.mlflow_store import configure_mlflow
    from parivision.settings import Settings

    tmp = tmp_path_factory.mktemp("legacy")
    settings = Settings(home=tmp / "home", mlflow_tracking_uri=f"sqlite:///{tmp}/mlflow.db")
    configure_mlflow(settings)
    x_fit, y_fit, x_check, _ = fit_and_check
    data = lgb.Dataset(
        x_fit, y_fit, feature_name=list(FEATURE_NAMES), categorical_feature=list(CATEGORICAL)
    )
    booster = lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1}, data, 20)
    with mlflow.start_run():
        mlflow.set_tags({"feature_set": FEATURE_SET})
        info = mlflow.lightgbm.log_model(
            booster,
            name="model",
            registered_model_name=settings.registered_model(),
            pip_requirements=[],
        )
    return settings, str(info.registered_model_version), booster, x_check


def test_versions_registered_as_native_lightgbm_still_load(legacy_version):
    settings, version, booster, x = legacy_version
    champion = registry.load_version(settings, version)
    np.testing.assert_allclose(champion.predict(x[:100]), booster.predict(x[:100]))


def test_a_version_is_named_by_number_or_alias(legacy_version):
    settings, version, _, _ = legacy_version
    assert registry.resolve_version(settings, version) == version
    assert registry.resolve_version(settings, f"v{version}") == version
    client = registry.client(settings)
    client.set_registered_model_alias(settings.registered_model(), "best", version)
    assert registry.resolve_version(settings, "best") == version


def test_a_missing_version_or_alias_says_what_to_do(legacy_version):
    settings, _, _, _ = legacy_version
    with pytest.raises(LookupError, match="has no version 99.*parivision train"):
        registry.resolve_version(settings, "99")
    with pytest.raises(registry.NoChampionError, match="alias 'champion'"):
        registry.resolve_version(settings, "champion")
    with pytest.raises(LookupError, match="alias 'staging'"):
        registry.resolve_version(settings, "staging")


# --- versions that cannot be served are refused when loaded ----------------------------------


class _RawScores:
    """A regressor's face on a classifier: answers log-odds, not probabilities."""

    def __init__(self, booster):
        self.booster = booster

    def predict(self, matrix, **kwargs):
        return self.booster.predict(matrix, raw_score=True)


class _SometimesNaN(_RawScores):
    def predict(self, matrix, **kwargs):
        p = self.booster.predict(matrix)
        p[::2] = np.nan
        return p


def _register(settings, model, *, feature_set=FEATURE_SET, example=None) -> str:
    import mlflow

    from models.shot_model import log_shot_model

    example = np.zeros((5, len(model.feature_names))) if example is None else example
    with mlflow.start_run():
        mlflow.set_tags({"feature_set": feature_set})
        info = log_shot_model(model, example, registered_model_name=settings.registered_model())
    return str(info.registered_model_version)


def _artifact(settings, version) -> Path:
    uri = registry.client(settings).get_model_version_download_uri(
        settings.registered_model(), version
    )
    assert uri.startswith("file://"), uri
    return Path(uri.removeprefix("file://"))


@pytest.fixture(scope="module")
def store(tmp_path_factory, fit_and_check):
    """One good version and one of each kind a worker must refuse, on a fresh SQLite store."""
    import mlflow

    from infra.mlflow_store import configure_mlflow
    from models.original import ORIGINAL_FEATURE_NAMES
    from models.shot_model import ShotModel
    from parivision.settings import Settings

    tmp = tmp_path_factory.mktemp("bad-models")
    settings = Settings(
        home=tmp / "home",
        mlflow_tracking_uri=f"sqlite:///{tmp}/mlflow.db",
        model_name="bad-models-unit",
    )
    configure_mlflow(settings)
    x_fit, y_fit, x_check, _ = fit_and_check
    booster = lgb.train(
        {"objective": "binary", "verbosity": -1, "num_threads": 1},
        lgb.Dataset(x_fit[:3000], y_fit[:3000], feature_name=list(FEATURE_NAMES)),
        5,
    )
    seven = lgb.train(
        {"objective": "binary", "verbosity": -1, "num_threads": 1},
        lgb.Dataset(x_fit[:3000, :7], y_fit[:3000], feature_name=list(ORIGINAL_FEATURE_NAMES)),
        5,
    )
    versions = {
        "good": _register(settings, ShotModel("lightgbm", booster), example=x_check),
        "missing": _register(settings, ShotModel("lightgbm", booster), example=x_check),
        "corrupt": _register(settings, ShotModel("lightgbm", booster), example=x_check),
        "feature_set": _register(
            settings, ShotModel("lightgbm", booster), feature_set="v1", example=x_check
        ),
        # Fitted on the original app's seven columns and tagged as if it were current.
        "columns": _register(
            settings,
            ShotModel("lightgbm", seven, ORIGINAL_FEATURE_NAMES),
            example=x_check[:, :7],
        ),
        "raw_scores": _register(
            settings, ShotModel("lightgbm", _RawScores(booster)), example=x_check
        ),
        "nan": _register(settings, ShotModel("lightgbm", _SometimesNaN(booster)), example=x_check),
    }
    shutil.rmtree(_artifact(settings, versions["missing"]))
    (_artifact(settings, versions["corrupt"]) / "python_model.pkl").write_bytes(b"\x80\x05garbage")
    mlflow.end_run()
    return settings, versions, booster, x_check


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("missing", r"its artifact is missing at file://\S+ \(MlflowException: No such artifact"),
        ("corrupt", r"its artifact at file://\S+ does not load, it is damaged or not a model \("),
        ("feature_set", f"it was trained on feature set 'v1', this code computes '{FEATURE_SET}'"),
        ("columns", r"fitted on 7 feature columns, this code computes \d+: without "),
        ("raw_scores", r"answers -?\d.* for \d+ of 8 probe shots: not probabilities in \[0, 1\]"),
        ("nan", r"answers nan, nan, nan for 4 of 8 probe shots: not probabilities"),
    ],
)
def test_a_version_that_cannot_be_served_is_refused_naming_it_and_why(store, kind, why):
    settings, versions, _, _ = store
    version = versions[kind]
    with pytest.raises(registry.BadModelError, match=why) as refused:
        registry.load_version(settings, version)
    error = refused.value
    assert str(error).startswith(f"model bad-models-unit v{version} cannot be served: ")
    assert "`parivision" in str(error)  # says what to do
    assert (error.model, error.version) == ("bad-models-unit", version)
    assert isinstance(error, ValueError)  # what callers of load_version already catch


def test_a_good_version_loads_and_scores_as_its_booster(store):
    settings, versions, booster, x = store
    champion = registry.load_version(settings, versions["good"])
    np.testing.assert_allclose(champion.predict(x[:100]), booster.predict(x[:100]))


def test_a_worker_started_on_a_bad_champion_scores_with_the_newest_earlier_good_one(store, caplog):
    settings, versions, _, _ = store
    good, missing, corrupt = versions["good"], versions["missing"], versions["corrupt"]
    # What two promotions recorded: good replaced by missing, then missing by corrupt.
    registry.tag_version(settings, good, {"replaced_at": "2026-01-01T00:00:00+00:00"})
    registry.tag_version(settings, missing, {"replaced_at": "2026-01-02T00:00:00+00:00"})
    registry.set_alias(settings, registry.PREVIOUS_CHAMPION_ALIAS, missing)
    registry.set_champion(settings, corrupt)
    try:
        assert registry.earlier_champions(settings, corrupt) == [missing, good]
        with caplog.at_level("ERROR", logger="parivision.registry"):
            champion = registry.load_champion(settings)
        assert champion.version == good
        text = caplog.text
        assert f"v{corrupt} cannot be served: its artifact at" in text
        assert f"v{missing} cannot be served: its artifact is missing" in text
        assert f"scoring with v{good} instead" in text
    finally:
        registry.tag_version(settings, good, {"replaced_at": None})
        registry.tag_version(settings, missing, {"replaced_at": None})
        registry.delete_alias(settings, registry.PREVIOUS_CHAMPION_ALIAS)


def test_with_no_earlier_champion_that_loads_the_error_names_the_champion(store):
    settings, versions, _, _ = store
    registry.set_champion(settings, versions["feature_set"])
    registry.set_alias(settings, registry.PREVIOUS_CHAMPION_ALIAS, versions["nan"])
    try:
        with pytest.raises(registry.BadModelError) as refused:
            registry.load_champion(settings)
        assert refused.value.version == versions["feature_set"]
        assert "trained on feature set 'v1'" in str(refused.value)
    finally:
        registry.delete_alias(settings, registry.PREVIOUS_CHAMPION_ALIAS)
