"""The MLflow model registry: which version is the champion, and loading it for scoring.

Versions are stored as MLflow pyfuncs around a :class:`models.shot_model.ShotModel` (whatever
candidate won); versions registered before that are native LightGBM models.  Either way the loaded
model answers ``predict(matrix)`` with P(made) and ``feature_name()`` with its feature columns, and
the stream calls that directly: the pyfunc layer is only how the model is stored and found, never
on the per-shot path.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.features import FEATURE_NAMES, FEATURE_SET
from parivision.settings import Settings

# Served probabilities are clipped to these, so fair odds stay finite and log loss defined.
P_MIN, P_MAX = 1e-4, 1 - 1e-4


# What the registry answers for a model or an alias that does not exist.
_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


class NoChampionError(LookupError):
    """The registry has no version with the champion alias yet."""


@dataclass
class Champion:
    """A loaded champion: its registry version and a batch ``predict`` returning P(made).

    ``model`` is a :class:`models.shot_model.ShotModel` or a LightGBM ``Booster``: anything whose
    ``predict(matrix)`` returns P(made).
    """

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
    """The version number holding the champion alias, or None when there is none.

    Raises:
        MlflowException: the registry did not answer (only "not found" means no champion).
    """
    return alias_version(settings, settings.champion_alias)


def resolve_version(settings: Settings, model: str) -> str:
    """The version number ``model`` names: a number (or ``v3``) is a version, else an alias.

    Raises:
        LookupError: with what to do, when there is no such version or alias.
    """
    from mlflow.exceptions import MlflowException

    model = str(model).strip()
    if model[:1] in ("v", "V") and model[1:].isdigit():  # "v3" as the CLI prints versions
        model = model[1:]
    c = client(settings)
    if model.isdigit():
        try:
            c.get_model_version(settings.model_name, str(model))
        except MlflowException:
            raise LookupError(
                f"{settings.model_name!r} has no version {model} in {settings.mlflow()}: "
                "`parivision train` registers one"
            ) from None
        return str(model)
    try:
        return str(c.get_model_version_by_alias(settings.model_name, model).version)
    except MlflowException:
        exc = NoChampionError if model == settings.champion_alias else LookupError
        raise exc(
            f"no version of {settings.model_name!r} has the alias {model!r} in "
            f"{settings.mlflow()}: run `parivision train`, or pass a version number"
        ) from None


def stale_feature_set(settings: Settings, version: str) -> str | None:
    """Why this code cannot serve ``version`` (it was trained on another feature set), or None."""
    c = client(settings)
    mv = c.get_model_version(settings.model_name, version)
    run = c.get_run(mv.run_id) if mv.run_id else None
    feature_set = run.data.tags.get("feature_set") if run else None
    if feature_set in (None, FEATURE_SET):
        return None
    return (
        f"model {settings.model_name} v{version} was trained on feature set {feature_set!r}, "
        f"this code computes {FEATURE_SET!r}"
    )


def load_version(settings: Settings, version: str) -> Champion:
    """Load one registered version as a :class:`Champion` (checks its feature set)."""
    stale = stale_feature_set(settings, version)
    if stale:
        raise ValueError(f"{stale}: retrain it with `parivision train`")
    model = _load_model(f"models:/{settings.model_name}/{version}")
    names = tuple(model.feature_name())
    if names != FEATURE_NAMES:
        raise ValueError(
            f"model {settings.model_name} v{version} expects features {names}, "
            f"not {FEATURE_NAMES}: retrain it with `parivision train`"
        )
    return Champion(name=settings.model_name, version=str(version), model=model)


def _load_model(uri: str) -> Any:
    from mlflow.models import get_model_info

    if "lightgbm" in get_model_info(uri).flavors:  # registered before the candidates existed
        import mlflow.lightgbm

        return mlflow.lightgbm.load_model(uri)
    from models.shot_model import load_shot_model

    return load_shot_model(uri)


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


# The champion a promotion replaced, kept so `parivision rollback` can restore it.
PREVIOUS_CHAMPION_ALIAS = "previous-champion"


def alias_version(settings: Settings, alias: str) -> str | None:
    """The version number holding ``alias``, or None when no version has it (or no model).

    Raises:
        MlflowException: the registry did not answer; an outage is not "no version".
    """
    from mlflow.exceptions import MlflowException

    try:
        return str(client(settings).get_model_version_by_alias(settings.model_name, alias).version)
    except MlflowException as error:
        if error.error_code in _NOT_FOUND:
            return None
        raise


def set_alias(settings: Settings, alias: str, version: str) -> None:
    """Give ``alias`` to ``version`` (moving it from whichever version had it)."""
    client(settings).set_registered_model_alias(settings.model_name, alias, str(version))


def delete_alias(settings: Settings, alias: str) -> None:
    """Remove ``alias`` from the registered model; nothing happens when no version has it."""
    from mlflow.exceptions import MlflowException

    with suppress(MlflowException):
        client(settings).delete_registered_model_alias(settings.model_name, alias)


def tag_version(settings: Settings, version: str, tags: dict[str, Any]) -> None:
    """Set tags on one version; a value of None deletes that tag."""
    from mlflow.exceptions import MlflowException

    c = client(settings)
    for key, value in tags.items():
        if value is not None:
            c.set_model_version_tag(settings.model_name, str(version), key, str(value))
            continue
        with suppress(MlflowException):  # it was not set
            c.delete_model_version_tag(settings.model_name, str(version), key)


def version_tags(settings: Settings, version: str) -> dict[str, str]:
    """The tags of one version."""
    return dict(client(settings).get_model_version(settings.model_name, str(version)).tags)


def reference_log_loss(settings: Settings, version: str) -> float | None:
    """The log loss a version earned its place with: on the promotion window when a challenge
    promoted it, else on its validation window; None when neither was recorded."""
    tags = version_tags(settings, version)
    promoted = tags.get("challenge.decision") == "promoted"
    for name in (("challenge.challenger_log_loss",) if promoted else ()) + ("log_loss",):
        try:
            value = float(tags[name])
        except (KeyError, ValueError):
            continue
        if value == value:  # not NaN
            return value
    return None
