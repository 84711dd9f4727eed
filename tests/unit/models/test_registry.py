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
            booster, name="model", registered_model_name=settings.model_name, pip_requirements=[]
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
    client.set_registered_model_alias(settings.model_name, "best", version)
    assert registry.resolve_version(settings, "best") == version


def test_a_missing_version_or_alias_says_what_to_do(legacy_version):
    settings, _, _, _ = legacy_version
    with pytest.raises(LookupError, match="has no version 99.*parivision train"):
        registry.resolve_version(settings, "99")
    with pytest.raises(registry.NoChampionError, match="alias 'champion'"):
        registry.resolve_version(settings, "champion")
    with pytest.raises(LookupError, match="alias 'staging'"):
        registry.resolve_version(settings, "staging")
