"""Training a model on past shots and registering it in MLflow.

The split is by time: the model learns from the earlier shots and is measured on the most recent
window, the way it will be used.  Never a random split: shots from one game are correlated, and a
random split leaks the future into training.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

from models import registry
from models.features import CATEGORICAL, FEATURE_NAMES, FEATURE_SET, build_features
from parivision.settings import Settings

LGBM_PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbosity": -1,
    "num_threads": 2,
    "seed": 7,
}


@dataclass
class TrainResult:
    version: str
    run_id: str
    metrics: dict[str, float]
    champion: bool
    rows: int


def time_split(frame: pd.DataFrame, validation_share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The earlier part to learn from, the most recent part to measure on (frame is time-sorted)."""
    cut = int(len(frame) * (1.0 - validation_share))
    return frame.iloc[:cut], frame.iloc[cut:]


def score(y_true: np.ndarray, p: np.ndarray) -> dict[str, float]:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    metrics = {
        "log_loss": float(log_loss(y_true, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y_true, p)),
        "accuracy": float(accuracy_score(y_true, p >= 0.5)),
    }
    metrics["roc_auc"] = float(roc_auc_score(y_true, p)) if len(set(y_true)) == 2 else float("nan")
    return metrics


def fit_lightgbm(
    train: pd.DataFrame, valid: pd.DataFrame, *, rounds: int = 400, console: Console | None = None
) -> lgb.Booster:
    """Fit with early stopping on the validation window, showing a progress bar."""
    x_train, x_valid = build_features(train), build_features(valid)
    dtrain = lgb.Dataset(
        x_train,
        train["made"].to_numpy(),
        feature_name=list(FEATURE_NAMES),
        categorical_feature=list(CATEGORICAL),
        free_raw_data=False,
    )
    dvalid = dtrain.create_valid(x_valid, valid["made"].to_numpy())
    with Progress(
        TextColumn("training LightGBM"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=False,
    ) as progress:
        task = progress.add_task("train", total=rounds)

        def advance(env: lgb.callback.CallbackEnv) -> None:
            progress.update(task, completed=env.iteration + 1)

        booster = lgb.train(
            LGBM_PARAMS,
            dtrain,
            num_boost_round=rounds,
            valid_sets=[dvalid],
            callbacks=[lgb.early_stopping(40, verbose=False), advance],
        )
        progress.update(task, completed=rounds)
    return booster


def train_and_register(
    settings: Settings,
    frame: pd.DataFrame,
    *,
    data_name: str,
    validation_share: float = 0.15,
    make_champion: bool | None = None,
    console: Console | None = None,
) -> TrainResult:
    """Train on ``frame`` (time-sorted, with ``made``), log to MLflow, register a new version.

    ``make_champion`` None means: the new version becomes champion only when there is none yet
    (deciding between a champion and a challenger belongs to promotion, not to training).
    """
    import mlflow
    import mlflow.lightgbm

    from infra.mlflow_store import configure_mlflow

    if len(frame) < 200:
        raise ValueError(f"{data_name}: {len(frame)} labelled shots is too few to train on")
    configure_mlflow(settings)
    train, valid = time_split(frame, validation_share)
    started = time.perf_counter()
    with mlflow.start_run(run_name=f"lightgbm-{data_name}") as run:
        booster = fit_lightgbm(train, valid, console=console)
        p_valid = booster.predict(build_features(valid))
        metrics = score(valid["made"].to_numpy(), p_valid)
        metrics["base_rate_log_loss"] = score(
            valid["made"].to_numpy(), np.full(len(valid), train["made"].mean())
        )["log_loss"]
        mlflow.log_params(
            {
                **LGBM_PARAMS,
                "best_iteration": booster.best_iteration,
                "validation_share": validation_share,
            }
        )
        mlflow.log_params(
            {
                "data": data_name,
                "train_rows": len(train),
                "valid_rows": len(valid),
                "train_from": int(train["game_date"].iloc[0]),
                "train_to": int(train["game_date"].iloc[-1]),
                "valid_from": int(valid["game_date"].iloc[0]),
                "valid_to": int(valid["game_date"].iloc[-1]),
            }
        )
        mlflow.log_metrics({**metrics, "train_seconds": time.perf_counter() - started})
        mlflow.set_tags({"feature_set": FEATURE_SET, "model_type": "lightgbm"})
        info = mlflow.lightgbm.log_model(
            booster, name="model", registered_model_name=settings.model_name
        )
    version = str(info.registered_model_version)
    if make_champion is None:
        make_champion = registry.champion_version(settings) is None
    if make_champion:
        registry.set_champion(settings, version)
    return TrainResult(version, run.info.run_id, metrics, make_champion, len(frame))
