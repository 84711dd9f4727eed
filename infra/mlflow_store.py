"""The MLflow tracking store: a local SQLite file plus an artifact folder, or a given server.

Locally no server runs: every process opens ``sqlite:///{home}/mlflow/mlflow.db`` itself and
writes artifacts under ``{home}/mlflow/artifacts``.  With ``PARIVISION_MLFLOW_TRACKING_URI`` set
(the compose stack sets ``http://mlflow:5000``) that store is used as it is.
"""

from __future__ import annotations

from pathlib import Path

from infra.process import ServiceError
from parivision.settings import Settings

SERVICE = "MLflow"


def is_local(settings: Settings) -> bool:
    """True when no tracking URI is given and the store under ``settings.home`` is used."""
    return not settings.mlflow_tracking_uri


def local_artifact_root(settings: Settings) -> Path | None:
    """Where a SQLite store keeps artifacts: beside its file; None for any other store.

    For the default store this is ``settings.mlflow_artifact_root()``; a ``sqlite:///`` URI given
    explicitly (the test session hands its store around that way) gets the same layout.
    """
    if is_local(settings):
        return settings.mlflow_artifact_root()
    uri = settings.mlflow()
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).parent / "artifacts"
    return None


def prepare_local_store(settings: Settings) -> str:
    """Create the SQLite store (folders, tables, default experiment) and return its URI.

    Opening the store here with our artifact root means the tables are migrated once, now, and
    even MLflow's "Default" experiment keeps its artifacts beside the store rather than in a
    ``./mlruns`` folder wherever a process happens to run.  Any other store is returned as is.
    """
    uri = settings.mlflow()
    artifacts = local_artifact_root(settings)
    if artifacts is None:
        return uri
    artifacts.mkdir(parents=True, exist_ok=True)
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        SqlAlchemyStore(uri, artifacts.as_uri())
    except ImportError:  # an MLflow without this class: let the client create the store
        pass
    except Exception as exc:  # a broken or locked file: say where it is
        raise ServiceError(
            SERVICE,
            uri,
            f"the local tracking store cannot be opened ({exc})",
            f"if {uri.removeprefix('sqlite:///')} is damaged, move it away and run "
            "`parivision up` again (a new, empty store is created)",
        ) from exc
    return uri


def probe(uri: str, timeout: float = 5.0) -> str | None:
    """None if the tracking store at ``uri`` answers, else what went wrong."""
    if uri.startswith(("http://", "https://")):
        import httpx

        try:
            response = httpx.get(uri.rstrip("/") + "/health", timeout=timeout)
        except httpx.HTTPError as exc:
            return f"no answer from its /health endpoint ({type(exc).__name__}: {exc})"
        if response.status_code != 200:
            return f"its /health endpoint answered HTTP {response.status_code}"
        return None
    from mlflow import MlflowClient

    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # MLflow raises many kinds here; any of them means "not usable"
        return f"the store cannot be read ({type(exc).__name__}: {str(exc)[:300]})"
    return None


def ensure_experiment(settings: Settings) -> str:
    """The id of ``settings.experiment()``, created if absent (locally: with our artifacts)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=settings.mlflow())
    experiment = client.get_experiment_by_name(settings.experiment())
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return str(experiment.experiment_id)
    root = local_artifact_root(settings)
    location = (root / settings.experiment()).as_uri() if root is not None else None
    try:
        return str(client.create_experiment(settings.experiment(), artifact_location=location))
    except MlflowException:  # created meanwhile by another process
        experiment = client.get_experiment_by_name(settings.experiment())
        if experiment is None:
            raise
        return str(experiment.experiment_id)


def configure_mlflow(settings: Settings) -> str:
    """Point this process's MLflow at the store in ``settings``; return the tracking URI.

    Sets the tracking and registry URIs and the active experiment.  For a local SQLite store it
    also creates the store and makes sure the experiment writes its artifacts beside it (for the
    default store: under ``settings.mlflow_artifact_root()``).
    """
    import mlflow

    uri = prepare_local_store(settings)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    ensure_experiment(settings)
    mlflow.set_experiment(settings.experiment())
    return uri
