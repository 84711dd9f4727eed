"""The MLflow model registry: which version is the champion, and loading it for scoring.

The stream scores micro-batches with the native LightGBM booster; the MLflow pyfunc wrapper is
only how the model is stored and found, never on the per-shot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from models.features import FEATURE_NAMES, FEATURE_SET
from parivision.settings import Settings


class NoChampionError(LookupError):
    """The registry has no version with the champion alias yet."""


@dataclass
class Champion:
    """A loaded champion: its registry version and a batch ``predict`` returning P(made)."""

    name: str
    version: str
    model: Any

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(features), dtype=np.float64)


def client(settings: Settings):
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(settings.mlflow())
    mlflow.set_registry_uri(settings.mlflow())
    return MlflowClient(tracking_uri=settings.mlflow(), registry_uri=settings.mlflow())


def champion_version(settings: Settings) -> str | None:
    """The version number holding the champion alias, or None when there is none."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client(settings).get_model_version_by_alias(
            settings.model_name, settings.champion_alias
        )
    except MlflowException:
        return None
    return str(mv.version)


def load_version(settings: Settings, version: str) -> Champion:
    """Load one registered version as a :class:`Champion` (checks its feature set)."""
    import mlflow.lightgbm

    c = client(settings)
    mv = c.get_model_version(settings.model_name, version)
    run = c.get_run(mv.run_id) if mv.run_id else None
    feature_set = run.data.tags.get("feature_set") if run else None
    if feature_set not in (None, FEATURE_SET):
        raise ValueError(
            f"model {settings.model_name} v{version} was trained on feature set {feature_set!r}, "
            f"this code computes {FEATURE_SET!r}: retrain it with `parivision train`"
        )
    model = mlflow.lightgbm.load_model(f"models:/{settings.model_name}/{version}")
    names = tuple(model.feature_name())
    if names != FEATURE_NAMES:
        raise ValueError(
            f"model {settings.model_name} v{version} expects features {names}, "
            f"not {FEATURE_NAMES}: retrain it with `parivision train`"
        )
    return Champion(name=settings.model_name, version=str(version), model=model)


def load_champion(settings: Settings) -> Champion:
    """Load the version that holds the champion alias."""
    version = champion_version(settings)
    if version is None:
        raise NoChampionError(
            f"no version of {settings.model_name!r} has the alias "
            f"{settings.champion_alias!r} in {settings.mlflow()}: run `parivision train`"
        )
    return load_version(settings, version)


def set_champion(settings: Settings, version: str) -> None:
    client(settings).set_registered_model_alias(
        settings.model_name, settings.champion_alias, str(version)
    )
