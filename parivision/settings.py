"""One settings object for every PariVision process.

Built once (by the CLI or a test) and passed down; nothing here touches the network, the disk or
the environment at import time.  Every field can be set with a ``PARIVISION_`` environment
variable or in a git-ignored ``.env`` file.

A service whose address is given (``kafka_bootstrap``, ``mongodb_uri``, ``mlflow_tracking_uri``)
is used as it is; a service whose address is empty is started locally by ``infra/`` under
``home``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DEPLOYMENT = "default"


class Settings(BaseSettings):
    """Where the services are and how the pipeline behaves."""

    model_config = SettingsConfigDict(
        env_prefix="PARIVISION_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Where state lives when services run locally: Kafka logs, MongoDB files, MLflow store, pids.
    home: Path = Field(default=Path(".parivision"))

    # External services; empty means "start one locally".
    kafka_bootstrap: str | None = None
    mongodb_uri: SecretStr | None = None
    mlflow_tracking_uri: str | None = None

    # Local service ports (loopback only).
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    # The local Kafka: this many brokers, each also a KRaft controller, on loopback (1 for one
    # machine; 3 to try a broker failure).  Node N listens on kafka_port + 100*(N-1) and its
    # controller on kafka_controller_port + 100*(N-1).
    kafka_brokers: int = Field(default=1, ge=1, le=9)
    kafka_version: str = "4.1.1"
    kafka_heap: str = "512m"
    # Where the broker's jars are cached once fetched (default ~/.cache/parivision).
    kafka_cache: Path | None = None
    mongodb_port: int = 27027

    # A deployment is a name: its topics (unless topic_prefix says otherwise), registered model,
    # database, consumer groups, reports and logs folders and the `deployment` label Prometheus
    # puts on its metrics all come from it, so several deployments share one machine and one
    # home without touching each other.  Unset: from topic_prefix ("a." -> "a"), or "default"
    # when that is empty too; the default deployment keeps the plain names.
    deployment: str = Field(default="", pattern=r"^([A-Za-z0-9][A-Za-z0-9_-]{0,47})?$")

    # Unset: the deployment's own ("parivision", "parivision-<deployment>").
    mongodb_database: str | None = None

    # Topics: one prefix lets tests and parallel deployments keep their own set.  Unset: empty
    # for the default deployment, "<deployment>." for a named one.
    topic_prefix: str | None = None
    partitions: int = 4
    # Copies of every topic PariVision creates, Faust's changelogs included; 0: the cluster's
    # default.replication.factor, capped by its number of brokers (1 on one local broker).
    kafka_replication_factor: int = Field(default=0, ge=0)

    # Model registry.  Unset: the deployment's own entry ("parivision-shot",
    # "parivision-shot-<deployment>"); set the same name in two deployments to share a champion
    # on purpose (`parivision status` says so).
    model_name: str | None = None
    champion_alias: str = "champion"
    # Unset: the deployment's own MLflow experiment ("parivision", "parivision-<deployment>").
    experiment_name: str | None = None

    # Stream behaviour.
    app_id: str = "parivision-stream"
    batch_size: int = 500
    batch_within_s: float = 0.005
    # The worker's input fetches wait up to this long for more records at the broker (fewer,
    # larger fetches and micro-batches; streams/fetching.py); 0: each returns at the first one.
    stream_fetch_wait_ms: int = 20
    # at_least_once: a worker killed mid-batch may publish that batch's scored records again
    # (the store keeps one copy).  exactly_once: each batch's scored and dead-letter records, its
    # tables' changes and its input offsets are one Kafka transaction, so a read_committed
    # reader of shots.scored sees each shot scored once, whatever dies (streams/transactions.py).
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    # A shot's outcome follows its attempt this many seconds later in replays: of game time
    # (outcome_timing "game": scaled by --speed, and always before the player's next attempt),
    # or of wall time ("wall": the late-label drill, whatever comes in between).
    outcome_delay_s: float = 2.0
    outcome_timing: Literal["game", "wall"] = "game"
    # A player's next attempt waits for the outcome of the last one (so its player form is the
    # one batch training computes) for at most this long, then is scored without it.
    form_wait_s: float = 30.0
    # Shot files (comma-separated, as `parivision train --data` takes them) whose players' form
    # the stream, `evaluate` and the API start from, instead of from nothing: set it to the
    # files the champion was trained on, so a player's form means what it meant in training.
    form_history: str = ""

    # Online learners run side by side on every shot, comma-separated (a plain string so it
    # passes through the environment as it is); the first one's probability is p_online.  "bias"
    # corrects the champion per league, action type, team and player (models/online_bias.py);
    # "on_champion" beside it is the cheap yardstick.
    online_learners: str = "bias,on_champion"
    # Learner state is saved every this many labelled shots or seconds, whichever comes first,
    # and when the worker stops.
    online_checkpoint_every: int = 10_000
    online_checkpoint_s: float = 30.0

    # Sink behaviour.
    sink_batch_size: int = 5000
    sink_flush_s: float = 0.1
    # A prediction waits up to this long for its outcome, so both are stored in one insert
    # (0: store each prediction at once, and set its outcome later with an update).
    sink_label_wait_s: float = 2.5
    # Unset: the deployment's own ("parivision-sink", "parivision-sink-<deployment>").
    sink_group: str | None = None

    # Training (`parivision train`, the retrain loop): a shot this many days older than the
    # newest training shot counts half as much (0: all count the same).
    train_half_life_days: float = 0.0

    # Champion/challenger (`parivision promote`, and the retrain loop's challenges): the
    # challenger's log loss on the most recent labelled shots must be at least this much lower.
    promotion_margin: float = 0.002
    # ... and its expected calibration error no worse than the champion's by more than this (or
    # than chance gives on the window, whichever is larger).
    promotion_calibration_margin: float = 0.01
    promotion_window: int = 5000
    # ... and on the champion's own validation window (logged with it in MLflow: shots of the
    # league it was trained for), its log loss no more than this above the champion's: a recent
    # window of one player or one team cannot buy a model that is worse everywhere else.
    promotion_reference_margin: float = 0.001
    # A recent window from fewer distinct players, teams or games than these says little about
    # the league: the challenge waits (and says why) until the window covers more; 0: no check.
    promotion_min_players: int = Field(30, ge=0)
    promotion_min_teams: int = Field(6, ge=0)
    promotion_min_games: int = Field(3, ge=0)
    # Shadow: a challenger that passes offline is scored live beside the champion (not served)
    # and promoted only if its live log loss on this many labelled shots is lower than the
    # champion's by more than shadow_margin; after any promotion the previous champion shadows
    # the new one as long, and the new one is rolled back when its live log loss is above the
    # previous one's by more than rollback_margin, or above the base rate's.  0: promote at once,
    # and no watch after a promotion.
    shadow_shots: int = Field(1000, ge=0)
    shadow_margin: float = Field(0.0, ge=0)
    rollback_margin: float = Field(0.005, ge=0)

    # Retrain loop (`parivision retrain-loop`); a threshold of 0 turns its trigger off.
    retrain_min_new_labelled: int = 5000
    retrain_every_s: float = 86_400.0
    # Evidently's dataset drift: this share of the 39 features drifted.  Most features (the
    # action words, period, clock) do not move when shot location and accuracy do, so a real
    # shift (8 ft further, fewer makes) drifts about a third of them.
    retrain_drift_share: float = 0.25
    retrain_adwin: bool = True
    retrain_cooldown_s: float = 600.0
    retrain_window: int = 2000
    retrain_holdout: int = 2000
    retrain_poll_s: float = 30.0
    # An Evidently drift report costs seconds of CPU: the loop makes one every this many new
    # stored shots (unset: the window), and one more when shots stop arriving; 0: every poll
    # that finds a new shot or label.
    retrain_drift_every: int | None = None
    # The running loop lowers its CPU priority by this much (os.nice): its reports and
    # retrains yield to the stream, the sink and the store; 0 keeps it.
    retrain_nice: int = Field(10, ge=0, le=19)
    # Comma-separated, like online_learners: the candidates a retrain fits.
    retrain_candidates: str = "lightgbm"
    # A retrain learns what the champion learned (its recorded lineage) plus the newly labelled
    # stored shots; true: from the store alone (a store of one player makes a model of one
    # player: only when that is what you want).
    retrain_store_only: bool = False

    # The live API (`parivision serve`): REST predictions, the WebSocket feed and the court page.
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    # Admin routes (retrain, promote, roll back) need this key in X-API-Key; unset: refused.
    api_key: SecretStr | None = None
    # The CSV the original VirtualBets routes (/getdata/{n}, /reset) serve; unset: 404.
    virtualbets_csv: Path | None = None
    # Per WebSocket client: messages queued before they are dropped (and counted), and how many
    # dropped in a row close the connection.
    live_queue: int = 1000
    live_max_missed: int = 10_000

    # Metrics: every process serves Prometheus's /metrics on its own port (the API on its own app,
    # at /metrics); a port of 0 turns that process's endpoint off.  Several workers of one
    # process kind on one host each need their own port (PARIVISION_STREAM_METRICS_PORT=...).
    metrics_host: str = "127.0.0.1"
    stream_metrics_port: int = 9101
    sink_metrics_port: int = 9102
    replay_metrics_port: int = 9103
    retrain_metrics_port: int = 9104
    # Live model quality is measured over this many most recent labelled shots per model.
    metrics_window: int = 2000
    # Local Prometheus and Alertmanager (`parivision up`, when Debian's packages are installed),
    # and the small receiver of alerts (`parivision alerts-webhook`).
    prometheus_port: int = 9090
    alertmanager_port: int = 9093
    alerts_webhook_port: int = 9105
    # Where Alertmanager sends alerts; unset: to the local `parivision alerts-webhook`.  Never
    # commit it: it comes from the environment or the git-ignored .env.
    alerts_webhook_url: SecretStr | None = None
    # Evidently drift reports (`parivision drift`, the retrain loop): saved under home/reports.
    drift_report_keep: int = 20

    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    def local_kafka_nodes(self) -> list[tuple[int, int, int]]:
        """(node id, client port, controller port) of each local broker."""
        steps = [(node, 100 * (node - 1)) for node in range(1, self.kafka_brokers + 1)]
        return [
            (node, self.kafka_port + step, self.kafka_controller_port + step)
            for node, step in steps
        ]

    def local_kafka_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for _node, port, _cport in self.local_kafka_nodes())

    def local_mongodb_uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongodb_port}/?journal=true"

    def local_mlflow_tracking_uri(self) -> str:
        return f"sqlite:///{self.resolved_home() / 'mlflow' / 'mlflow.db'}"

    def mlflow_artifact_root(self) -> Path:
        return self.resolved_home() / "mlflow" / "artifacts"

    # The three below are what every process connects to.
    def kafka(self) -> str:
        return self.kafka_bootstrap or self.local_kafka_bootstrap()

    def mongodb(self) -> str:
        return self.mongodb_uri.get_secret_value() if self.mongodb_uri else self.local_mongodb_uri()

    def mlflow(self) -> str:
        return self.mlflow_tracking_uri or self.local_mlflow_tracking_uri()

    # The names a deployment owns.
    def deployment_name(self) -> str:
        """This deployment's name: ``deployment``, else the topic prefix's, else "default".

        >>> Settings(_env_file=None, topic_prefix="west.").deployment_name()
        'west'
        >>> Settings(_env_file=None).deployment_name()
        'default'
        """
        if self.deployment:
            return self.deployment
        derived = re.sub(r"[^A-Za-z0-9_-]+", "-", self.topic_prefix or "").strip("-_")
        return derived[:48] or DEFAULT_DEPLOYMENT

    def is_default_deployment(self) -> bool:
        return self.deployment_name() == DEFAULT_DEPLOYMENT

    def _own(self, name: str) -> str:
        return name if self.is_default_deployment() else f"{name}-{self.deployment_name()}"

    def prefix(self) -> str:
        """The topic prefix: ``topic_prefix`` when set, else "" or "<deployment>."."""
        if self.topic_prefix is not None:
            return self.topic_prefix
        return "" if not self.deployment else f"{self.deployment}."

    def topic(self, name: str) -> str:
        return f"{self.prefix()}{name}"

    def registered_model(self) -> str:
        """The model's name in the registry: ``model_name`` when set, else the deployment's.

        >>> Settings(_env_file=None, deployment="west").registered_model()
        'parivision-shot-west'
        """
        return self.model_name or self._own("parivision-shot")

    def shares_registered_model(self) -> bool:
        """The registered model was named on purpose, not this deployment's own."""
        return bool(self.model_name) and self.model_name != self._own("parivision-shot")

    def experiment(self) -> str:
        """The MLflow experiment its training runs are logged in."""
        return self.experiment_name or self._own("parivision")

    def database(self) -> str:
        """The MongoDB database: ``mongodb_database`` when set, else the deployment's."""
        return self.mongodb_database or self._own("parivision")

    def consumer_group(self, name: str) -> str:
        """The deployment's own Kafka consumer group of ``name`` ("parivision-api-live", ...)."""
        return self._own(name)

    def sink_consumer_group(self) -> str:
        return self.sink_group or self.consumer_group("parivision-sink")

    def stream_group(self) -> str:
        """The Faust app id (its consumer group and the prefix of its changelog topics): a
        deployment with its own topics gets its own tables too."""
        return f"{self.prefix()}{self.app_id}"

    def deployment_home(self) -> Path:
        """The deployment's own part of the home: the home itself for the default deployment,
        home/deployments/<name> for the others (the services' state stays in the home)."""
        if self.is_default_deployment():
            return self.resolved_home()
        return self.resolved_home() / "deployments" / self.deployment_name()

    def deployment_dir(self, kind: str) -> Path:
        """The deployment's own folder of ``kind`` (reports, logs, ...)."""
        return self.deployment_home() / kind
