"""The champion's training reference: a sample of the features a model learned from, logged with
it in MLflow, so that drift is measured against what the champion was trained on.

Training logs up to :data:`REFERENCE_ROWS` rows of its training features (and their outcomes)
as ``reference/features.parquet`` in the run of the version it registers; the drift check reads
that file back for the champion.  Versions registered before this have no such file: for them
the drift check falls back to the stored shots before the recent window (see
:func:`consumers.retrain_trigger.stored_reference`), and says so.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models.features import FEATURE_NAMES
from parivision.settings import Settings

REFERENCE_ARTIFACT = "reference/features.parquet"
REFERENCE_ROWS = 5000
CHAMPION, STORED = "champion", "stored"


@dataclass
class Reference:
    """What recent shots are compared with: feature columns (and ``made`` where known)."""

    frame: pd.DataFrame
    kind: str  # CHAMPION (its training sample) or STORED (shots from the store)
    description: str
    version: str | None = None


def reference_sample(
    matrix: np.ndarray, made: np.ndarray, rows: int = REFERENCE_ROWS, seed: int = 7
) -> pd.DataFrame:
    """Up to ``rows`` training rows drawn uniformly (in their original order), with ``made``.

    Example:
        >>> x = np.arange(3 * len(FEATURE_NAMES), dtype=float).reshape(3, -1)
        >>> sample = reference_sample(x, np.array([0, 1, 1]), rows=2)
        >>> len(sample), list(sample.columns[-2:])
        (2, ['secs_since_prev_in_game', 'made'])
    """
    keep = np.arange(len(matrix))
    if len(matrix) > rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(matrix), rows, replace=False))
    frame = pd.DataFrame(matrix[keep], columns=list(FEATURE_NAMES))
    frame["made"] = np.asarray(made)[keep].astype("int64")
    return frame


def log_reference(matrix: np.ndarray, made: np.ndarray, rows: int = REFERENCE_ROWS) -> int:
    """Log a sample of the training features in the active MLflow run; returns its rows."""
    import mlflow

    sample = reference_sample(matrix, made, rows)
    with tempfile.TemporaryDirectory(prefix="parivision-reference-") as folder:
        path = Path(folder) / Path(REFERENCE_ARTIFACT).name
        sample.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=str(Path(REFERENCE_ARTIFACT).parent))
    mlflow.set_tags({"reference_rows": len(sample), "reference_of_rows": len(matrix)})
    return len(sample)


def champion_reference(settings: Settings, version: str) -> Reference | None:
    """The training sample logged with ``version``, or None when it has none (older versions).

    Raises:
        MlflowException: the registry or its artifact store did not answer.
    """
    from models import registry

    client = registry.client(settings)
    run_id = client.get_model_version(settings.registered_model(), str(version)).run_id
    found = _logged(client, run_id, REFERENCE_ARTIFACT)
    if found is None:
        return None  # registered before training logged its reference
    (frame,) = found
    missing = [name for name in FEATURE_NAMES if name not in frame.columns]
    if missing:
        return None  # another feature set; the stream would refuse this model anyway
    tags = client.get_run(run_id).data.tags
    of_rows = tags.get("reference_of_rows")
    of = f" of {int(of_rows):,}" if of_rows and of_rows.isdigit() else ""
    return Reference(
        frame=frame,
        kind=CHAMPION,
        description=f"champion v{version}'s training sample ({len(frame):,}{of} rows)",
        version=str(version),
    )


# The champion's validation window, logged with it: the fixed reference set a challenger must not
# be worse on (models.promotion.reference), whatever the recent window holds.
VALIDATION_ARTIFACT = "reference/validation.parquet"
VALIDATION_ROWS = 50_000
# Every validation shot's id (the features above may be a sample): a retrain leaves them out, so
# the challenger is measured there on shots it never learned from.
VALIDATION_IDS_ARTIFACT = "reference/validation_ids.parquet"


@dataclass
class ValidationSet:
    """A version's validation shots: their features, outcomes and shot ids, and the ids of all
    of them (``all_ids``; the features may be of a sample)."""

    version: str
    features: np.ndarray
    outcomes: np.ndarray
    shot_ids: np.ndarray
    game_dates: np.ndarray
    all_ids: frozenset[str] = frozenset()

    @property
    def rows(self) -> int:
        return len(self.outcomes)

    def describe(self) -> str:
        if not self.rows:
            return f"v{self.version}'s validation window (empty)"
        return (
            f"v{self.version}'s validation window ({self.rows:,} shots, "
            f"{int(self.game_dates.min())}-{int(self.game_dates.max())})"
        )


def log_validation(
    matrix: np.ndarray,
    made: np.ndarray,
    shot_ids: np.ndarray,
    game_dates: np.ndarray,
    rows: int = VALIDATION_ROWS,
) -> int:
    """Log up to ``rows`` validation shots (drawn uniformly, kept in order) in the active run."""
    import mlflow

    frame = reference_sample(matrix, made, rows)
    keep = np.arange(len(matrix))
    if len(matrix) > rows:
        keep = np.sort(np.random.default_rng(7).choice(len(matrix), rows, replace=False))
    frame["shot_id"] = np.asarray(shot_ids, dtype=object)[keep].astype(str)
    frame["game_date"] = np.asarray(game_dates, dtype=np.int64)[keep]
    ids = pd.DataFrame({"shot_id": np.asarray(shot_ids, dtype=object).astype(str)})
    with tempfile.TemporaryDirectory(prefix="parivision-validation-") as folder:
        for data, artifact in ((frame, VALIDATION_ARTIFACT), (ids, VALIDATION_IDS_ARTIFACT)):
            path = Path(folder) / Path(artifact).name
            data.to_parquet(path, index=False)
            mlflow.log_artifact(str(path), artifact_path=str(Path(artifact).parent))
    mlflow.set_tags({"validation_rows_logged": len(frame)})
    return len(frame)


def validation_set(settings: Settings, version: str) -> ValidationSet | None:
    """The validation shots logged with ``version``; None for a version trained before they
    were logged (or by hand).

    Raises:
        MlflowException: the registry or its artifact store did not answer.
    """
    from models import registry

    client = registry.client(settings)
    run_id = client.get_model_version(settings.registered_model(), str(version)).run_id
    found = _logged(client, run_id, VALIDATION_ARTIFACT, VALIDATION_IDS_ARTIFACT)
    if found is None:
        return None
    frame, ids = found
    all_ids = frozenset(ids["shot_id"].astype(str))
    if any(name not in frame.columns for name in (*FEATURE_NAMES, "made", "shot_id")):
        return None
    return ValidationSet(
        version=str(version),
        features=frame[list(FEATURE_NAMES)].to_numpy(dtype=np.float64),
        outcomes=frame["made"].to_numpy(dtype=np.int64),
        shot_ids=frame["shot_id"].to_numpy(dtype=object),
        game_dates=frame["game_date"].to_numpy(dtype=np.int64),
        all_ids=all_ids,
    )


def _logged(client, run_id: str | None, *artifacts: str) -> list[pd.DataFrame] | None:
    """The parquet artifacts of a run, read; None when the run has not logged them all."""
    from mlflow.exceptions import MlflowException

    if not run_id:
        return None
    with tempfile.TemporaryDirectory(prefix="parivision-reference-") as folder:
        try:
            paths = [client.download_artifacts(run_id, artifact, folder) for artifact in artifacts]
        except (MlflowException, OSError):
            return None
        return [pd.read_parquet(path) for path in paths]
