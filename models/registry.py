"""The MLflow model registry: which version is the champion, and loading it for scoring.

Versions are stored as MLflow pyfuncs around a :class:`models.shot_model.ShotModel` (whatever
candidate won); versions registered before that are native LightGBM models.  Either way the loaded
model answers ``predict(matrix)`` with P(made) and ``feature_name()`` with its feature columns, and
the stream calls that directly: the pyfunc layer is only how the model is stored and found, never
on the per-shot path.

A version is checked when it is loaded (:func:`load_version`): its artifact must be there and
load, it must have been trained on the feature set this code computes, and it must answer
probabilities for a probe batch (:mod:`models.servable`).  One that fails is refused with a
:class:`BadModelError` naming it and why; a worker keeps the champion it has.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.features import FEATURE_SET
from models.servable import feature_mismatch, prediction_problem
from parivision.settings import Settings

log = logging.getLogger("parivision.registry")

# Served probabilities are clipped to these, so fair odds stay finite and log loss defined.
P_MIN, P_MAX = 1e-4, 1 - 1e-4


# What the registry answers for a model or an alias that does not exist.
_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


class NoChampionError(LookupError):
    """The registry has no version with the champion alias yet."""


RETRAIN = "retrain it with `parivision train`"
REPLACE = (
    "register it again with `parivision train`, or give the champion alias back to a good "
    "version with `parivision rollback`"
)


class BadModelError(ValueError):
    """A registered version this code cannot serve; the message names it, says why and what to do.

    Attributes:
        model: the registered model's name.
        version: the version refused.
        reason: why, in a few words ("its artifact is missing (...)").
    """

    def __init__(self, model: str, version: str, reason: str, hint: str = REPLACE) -> None:
        self.model, self.version, self.reason = model, str(version), reason
        super().__init__(f"model {model} v{version} cannot be served: {reason}; {hint}")


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
            c.get_model_version(settings.registered_model(), str(model))
        except MlflowException:
            raise LookupError(
                f"{settings.registered_model()!r} has no version {model} in {settings.mlflow()}: "
                "`parivision train` registers one"
            ) from None
        return str(model)
    try:
        return str(c.get_model_version_by_alias(settings.registered_model(), model).version)
    except MlflowException:
        exc = NoChampionError if model == settings.champion_alias else LookupError
        raise exc(
            f"no version of {settings.registered_model()!r} has the alias {model!r} in "
            f"{settings.mlflow()}: run `parivision train`, or pass a version number"
        ) from None


def stale_feature_set(settings: Settings, version: str) -> str | None:
    """Why this code cannot serve ``version`` (it was trained on another feature set), or None."""
    feature_set = _recorded_feature_set(settings, version)
    if feature_set in (None, FEATURE_SET):
        return None
    return (
        f"model {settings.registered_model()} v{version} was trained on feature set "
        f"{feature_set!r}, this code computes {FEATURE_SET!r}"
    )


def _recorded_feature_set(settings: Settings, version: str) -> str | None:
    """The ``feature_set`` tag of the run that logged ``version`` (None if it has none)."""
    c = client(settings)
    mv = c.get_model_version(settings.registered_model(), str(version))
    run = c.get_run(mv.run_id) if mv.run_id else None
    return run.data.tags.get("feature_set") if run else None


def load_version(settings: Settings, version: str) -> Champion:
    """Load one registered version as a :class:`Champion`, checked before it scores a shot.

    Raises:
        BadModelError: the version cannot be served: trained on another feature set (its run's
            ``feature_set`` tag, or the feature columns the model records), its artifact missing
            or not loadable, or its answers for a probe batch not probabilities in [0, 1].
        MlflowException: the registry did not answer (the version may be fine).
    """
    name, version = settings.registered_model(), str(version)
    feature_set = _recorded_feature_set(settings, version)
    if feature_set not in (None, FEATURE_SET):
        reason = (
            f"it was trained on feature set {feature_set!r}, this code computes {FEATURE_SET!r}"
        )
        raise BadModelError(name, version, reason, RETRAIN)
    try:
        model = _load_model(f"models:/{name}/{version}")
    except Exception as error:
        raise BadModelError(name, version, _why_unloadable(settings, version, error)) from error
    try:
        names = tuple(model.feature_name())
    except Exception as error:
        reason = f"it loads as a {type(model).__name__}, which does not name its feature columns"
        raise BadModelError(name, version, f"{reason} ({error})") from error
    mismatch = feature_mismatch(names)
    if mismatch:
        raise BadModelError(name, version, mismatch, RETRAIN)
    champion = Champion(name=name, version=version, model=model)
    problem = prediction_problem(champion)
    if problem:
        raise BadModelError(name, version, problem, RETRAIN)
    return champion


def _why_unloadable(settings: Settings, version: str, error: Exception) -> str:
    """What a failed load says about the artifact: missing, or there but not loadable."""
    where = ""
    with suppress(Exception):
        uri = client(settings).get_model_version_download_uri(settings.registered_model(), version)
        where = f" at {uri}"
    text = f"{type(error).__name__}: {error}"
    missing = isinstance(error, FileNotFoundError) or any(
        words in str(error) for words in ("No such artifact", "No such file", "does not exist")
    )
    if missing:
        return f"its artifact is missing{where} ({text})"
    return f"its artifact{where} does not load, it is damaged or not a model ({text})"


def _load_model(uri: str) -> Any:
    from mlflow.models import get_model_info

    if "lightgbm" in get_model_info(uri).flavors:  # registered before the candidates existed
        import mlflow.lightgbm

        return mlflow.lightgbm.load_model(uri)
    from models.shot_model import load_shot_model

    return load_shot_model(uri)


def load_champion(settings: Settings) -> Champion:
    """Load the version that holds the champion alias; if that one cannot be served, the newest
    earlier champion that can.

    A worker that starts while the alias names a broken version then scores with the champion
    that version replaced, as the workers already running do (they refuse the swap).  Each
    version passed over is logged with why.

    Raises:
        NoChampionError: no version has the champion alias.
        BadModelError: the champion cannot be served and no earlier champion can either (the
            error names the champion).
    """
    version = champion_version(settings)
    if version is None:
        raise NoChampionError(
            f"no version of {settings.registered_model()!r} has the alias "
            f"{settings.champion_alias!r} in {settings.mlflow()}: run `parivision train`"
        )
    try:
        return load_version(settings, version)
    except BadModelError as error:
        refused = error
    for earlier in earlier_champions(settings, version):
        try:
            champion = load_version(settings, earlier)
        except BadModelError as error:
            log.error("not falling back to an earlier champion: %s", error)
            continue
        log.error(
            "%s; scoring with v%s instead, the newest earlier champion that can be served",
            refused,
            earlier,
        )
        return champion
    raise refused


# How many earlier champions load_champion tries before it gives up.
MAX_FALLBACKS = 5


def earlier_champions(settings: Settings, version: str) -> list[str]:
    """Versions that held the champion alias before ``version``, most recent first.

    What the registry remembers: the ``previous-champion`` alias, then every version a promotion
    or rollback took the alias from (its ``replaced_at`` tag), latest first.  A version given the
    alias by hand, outside `parivision promote`, leaves no trace here.
    """
    found = [alias_version(settings, PREVIOUS_CHAMPION_ALIAS)]
    replaced = [
        mv
        for mv in client(settings).search_model_versions(f"name='{settings.registered_model()}'")
        if mv.tags.get("replaced_at")
    ]
    replaced.sort(key=lambda mv: (mv.tags["replaced_at"], int(mv.version)), reverse=True)
    found += [str(mv.version) for mv in replaced]
    ordered = dict.fromkeys(v for v in found if v is not None and v != str(version))
    return list(ordered)[:MAX_FALLBACKS]


def set_champion(settings: Settings, version: str) -> None:
    client(settings).set_registered_model_alias(
        settings.registered_model(), settings.champion_alias, str(version)
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
        return str(
            client(settings).get_model_version_by_alias(settings.registered_model(), alias).version
        )
    except MlflowException as error:
        if error.error_code in _NOT_FOUND:
            return None
        raise


def set_alias(settings: Settings, alias: str, version: str) -> None:
    """Give ``alias`` to ``version`` (moving it from whichever version had it)."""
    client(settings).set_registered_model_alias(settings.registered_model(), alias, str(version))


def delete_alias(settings: Settings, alias: str) -> None:
    """Remove ``alias`` from the registered model; nothing happens when no version has it."""
    from mlflow.exceptions import MlflowException

    with suppress(MlflowException):
        client(settings).delete_registered_model_alias(settings.registered_model(), alias)


def tag_version(settings: Settings, version: str, tags: dict[str, Any]) -> None:
    """Set tags on one version; a value of None deletes that tag."""
    from mlflow.exceptions import MlflowException

    c = client(settings)
    gone = [key for key, value in tags.items() if value is None]
    # One read instead of a failed call per tag that was never set.
    present = (
        set(c.get_model_version(settings.registered_model(), str(version)).tags) if gone else set()
    )
    for key, value in tags.items():
        if value is not None:
            c.set_model_version_tag(settings.registered_model(), str(version), key, str(value))
        elif key in present:
            with suppress(MlflowException):  # deleted meanwhile
                c.delete_model_version_tag(settings.registered_model(), str(version), key)


def version_tags(settings: Settings, version: str) -> dict[str, str]:
    """The tags of one version."""
    return dict(client(settings).get_model_version(settings.registered_model(), str(version)).tags)


def reference_log_loss(settings: Settings, version: str) -> float | None:
    """The log loss a version earned its place with: on the promotion window when a challenge
    promoted it, else on its validation window; None when neither was recorded."""
    tags = version_tags(settings, version)
    # Promoted after a challenge (at once, or after its shadow): the window it won on.
    promoted = tags.get("challenge.decision") in ("promoted", "shadowing") and (
        tags.get("promoted.how") in (None, "challenge", "shadow", "first")
    )
    for name in (("challenge.challenger_log_loss",) if promoted else ()) + ("log_loss",):
        try:
            value = float(tags[name])
        except (KeyError, ValueError):
            continue
        if value == value:  # not NaN
            return value
    return None
