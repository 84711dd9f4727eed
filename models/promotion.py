"""Champion and challenger: a registered version takes the champion alias only when it does better
on the same recent labelled shots, and the promotion can be rolled back.

The evidence is what the pipeline stored: the most recent ``window`` labelled predictions in
MongoDB, joined by shot id to the raw shots, turned into features by the same
:func:`models.features.build_features` the stream uses, and scored by both versions.  The rule
(:func:`decide`) puts log loss first -- the stream sells fair odds, so the probabilities must be
right -- with ROC-AUC as a guard: a challenger must lower log loss by at least ``margin`` and must
not rank the shots worse.

Every decision is recorded three ways: tags on the versions, the aliases (``champion`` and
``previous-champion``) and one JSON event on ``models.events``, on which the running stream
workers swap models.  The aliases are the truth; the event is the notice.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from models import registry
from models.features import FEATURE_NAMES, build_features, columns_from_records
from models.form import FORM_NAMES
from models.metrics import score
from parivision import schemas
from parivision.settings import Settings
from parivision.store import PREDICTIONS, RAW, SHOTS

# What decide() asks when not told (challenge() takes Settings.promotion_margin and
# Settings.promotion_calibration_margin instead).
DEFAULT_MARGIN = 0.002
DEFAULT_CALIBRATION_MARGIN = 0.01
# Below this many labelled shots, a difference of a few thousandths in log loss is noise.
MIN_LABELLED = 200
_IN_CHUNK = 100

PROMOTED, REFUSED, ROLLED_BACK = "promoted", "refused", "rolled_back"
EVENTS = (PROMOTED, REFUSED, ROLLED_BACK)
# The events after which the champion alias names another version.
SWAP_EVENTS = (PROMOTED, ROLLED_BACK)

# Tags written on the challenger; a later challenge of the same version overwrites them.
TAG_PREFIX = "challenge."

Publisher = Callable[[Settings, dict[str, Any]], None]


class PromotionError(RuntimeError):
    """A promotion or rollback could not be carried out; the message says what to do."""


@dataclass(frozen=True)
class Verdict:
    """What :func:`decide` concluded, and why, in words a person can check."""

    promote: bool
    reason: str


def chance_calibration_error(rows: int, bins: int = 10) -> float:
    """The calibration error a perfectly calibrated model shows by chance on ``rows`` shots.

    Each of the ``bins`` equal-count bins misses its make rate by about ``sqrt(p(1-p)/size)``
    (p near 0.5 for shots) and the mean absolute value of that is ``sqrt(2/pi)`` of it: about
    0.018 on 5,000 shots, 0.09 on 200.

    Example:
        >>> round(chance_calibration_error(5000), 3)
        0.018
    """
    return math.sqrt(2 / math.pi) * 0.5 * math.sqrt(bins / max(rows, 1))


def decide(
    champion: Mapping[str, float] | None,
    challenger: Mapping[str, float],
    margin: float = DEFAULT_MARGIN,
    calibration_margin: float = DEFAULT_CALIBRATION_MARGIN,
) -> Verdict:
    """Whether the challenger replaces the champion, from their metrics on the same shots.

    The challenger wins when its log loss is at least ``margin`` below the champion's, its
    ROC-AUC is not lower, and (when both carry ``ece``) its expected calibration error is not
    worse than the champion's by more than ``calibration_margin`` or the error chance alone
    gives on this many shots (``rows``), whichever is larger: fair odds from a model that is
    better on average but off by several points for a whole band of shots are not better odds.
    With no champion (None) it wins outright.

    Example:
        >>> champion = {"log_loss": 0.640, "roc_auc": 0.660}
        >>> decide(champion, {"log_loss": 0.630, "roc_auc": 0.670}).promote
        True
        >>> decide(champion, {"log_loss": 0.639, "roc_auc": 0.670}).reason
        "log loss 0.6390 is not at least 0.0020 below the champion's 0.6400"
        >>> decide(champion, {"log_loss": 0.600, "roc_auc": 0.650}).reason
        "ROC-AUC 0.6500 is below the champion's 0.6600"
    """
    if not margin >= 0:
        raise ValueError(f"the log-loss margin must be 0 or more, not {margin}")
    if not calibration_margin >= 0:
        raise ValueError(f"the calibration margin must be 0 or more, not {calibration_margin}")
    if champion is None:
        return Verdict(True, "there is no champion yet")
    values = [champion["log_loss"], champion["roc_auc"], challenger["log_loss"]]
    values.append(challenger["roc_auc"])
    if any(not math.isfinite(v) for v in values):
        return Verdict(False, "a metric is undefined on this window (one outcome only?)")
    ll_champion, ll_challenger = champion["log_loss"], challenger["log_loss"]
    auc_champion, auc_challenger = champion["roc_auc"], challenger["roc_auc"]
    # A hair of tolerance so "exactly the margin" counts despite floating point.
    if ll_challenger > ll_champion - margin + 1e-12:
        return Verdict(
            False,
            f"log loss {ll_challenger:.4f} is not at least {margin:.4f} below the champion's "
            f"{ll_champion:.4f}",
        )
    if auc_challenger < auc_champion:
        return Verdict(
            False, f"ROC-AUC {auc_challenger:.4f} is below the champion's {auc_champion:.4f}"
        )
    ece_champion, ece_challenger = champion.get("ece"), challenger.get("ece")
    if ece_champion is not None and ece_challenger is not None:
        rows = int(challenger.get("rows") or champion.get("rows") or 0)
        allowed = calibration_margin
        if rows:
            allowed = max(allowed, chance_calibration_error(rows))
        if math.isfinite(ece_champion) and not ece_challenger <= ece_champion + allowed + 1e-12:
            return Verdict(
                False,
                f"calibration error {ece_challenger:.4f} is worse than the champion's "
                f"{ece_champion:.4f} by more than {allowed:.4f}",
            )
    return Verdict(
        True,
        f"log loss {ll_challenger:.4f} vs {ll_champion:.4f} (lower by "
        f"{ll_champion - ll_challenger:.4f} >= {margin:.4f}) and ROC-AUC {auc_challenger:.4f} "
        f">= {auc_champion:.4f}",
    )


@dataclass
class Window:
    """The labelled shots both versions are measured on: features, outcomes and where from."""

    features: np.ndarray
    outcomes: np.ndarray
    game_dates: np.ndarray
    requested: int
    labelled_found: int
    # Labelled predictions whose raw shot is missing from shots_raw or no longer validates.
    missing_raw: int = 0
    first_labelled_at: float | None = None
    last_labelled_at: float | None = None
    # Where player form came from: "stream" (stored with the shots) or "window" (recomputed).
    form_source: str = "stream"

    @property
    def rows(self) -> int:
        return len(self.outcomes)

    def describe(self) -> dict[str, Any]:
        dates = self.game_dates
        return {
            "requested": self.requested,
            "shots": self.rows,
            "labelled_found": self.labelled_found,
            "missing_raw": self.missing_raw,
            "first_labelled_at": self.first_labelled_at,
            "last_labelled_at": self.last_labelled_at,
            "form_source": self.form_source,
            "first_game_date": int(dates.min()) if len(dates) else None,
            "last_game_date": int(dates.max()) if len(dates) else None,
        }


def window_from_documents(
    predictions: Iterable[Mapping[str, Any]],
    raw_shots: Iterable[Mapping[str, Any]],
    *,
    requested: int,
    stored_features: Iterable[Mapping[str, Any]] = (),
) -> Window:
    """Join labelled predictions to their raw shots by shot id and compute the features.

    ``predictions`` carry ``shot_id``, ``outcome`` and ``labelled_at``; ``raw_shots`` are the
    attempts as the sink stored them.  A prediction without a valid raw shot is counted in
    ``missing_raw`` and left out.

    Player form is taken from ``stored_features`` (the sink's ``shots`` documents: what the
    stream computed with the player's whole history) when every shot has it; otherwise it is
    computed from the window itself, in time order, and ``form_source`` says so.
    """
    stored_by_id = {
        doc["shot_id"]: doc.get("features") or {} for doc in stored_features if "shot_id" in doc
    }
    raw_by_id = {doc["shot_id"]: doc for doc in raw_shots if "shot_id" in doc}
    shots, outcomes, labelled_at = [], [], []
    found = missing = 0
    for prediction in predictions:
        found += 1
        raw = raw_by_id.get(prediction["shot_id"])
        try:
            shot = schemas.Shot.model_validate(raw).model_dump() if raw is not None else None
        except schemas.ValidationError:
            shot = None
        if shot is None or prediction.get("outcome") not in (0, 1, True, False):
            missing += 1
            continue
        shots.append(shot)
        outcomes.append(int(prediction["outcome"]))
        if isinstance(prediction.get("labelled_at"), int | float):
            labelled_at.append(float(prediction["labelled_at"]))
    # Oldest first: the order the stream saw them, and the order player form is computed in.
    order = sorted(
        range(len(shots)),
        key=lambda i: (shots[i]["game_date"], shots[i]["game_id"], shots[i]["game_event_id"] or 0),
    )
    shots = [{**shots[i], "made": outcomes[i]} for i in order]
    outcomes = [outcomes[i] for i in order]
    stored = [stored_by_id.get(shot["shot_id"], {}) for shot in shots]
    form_source = "stream" if all(FORM_NAMES[0] in f for f in stored) else "window"
    form = (
        np.array([[f.get(name, np.nan) for name in FORM_NAMES] for f in stored], dtype=np.float64)
        if form_source == "stream" and shots
        else None
    )
    features = (
        build_features(columns_from_records(shots), form=form)
        if shots
        else np.empty((0, len(FEATURE_NAMES)), dtype=np.float64)
    )
    return Window(
        features=features,
        outcomes=np.asarray(outcomes, dtype=np.int64),
        game_dates=np.asarray([s["game_date"] for s in shots], dtype=np.int64),
        requested=requested,
        labelled_found=found,
        missing_raw=missing,
        first_labelled_at=min(labelled_at) if labelled_at else None,
        last_labelled_at=max(labelled_at) if labelled_at else None,
        form_source=form_source,
    )


def labelled_window(db, window: int) -> Window:
    """The most recent ``window`` labelled shots in a PariVision MongoDB database ``db``."""
    from pymongo import DESCENDING

    # Named, so nothing depends on a generated index name; creating it again is a no-op.
    db[PREDICTIONS].create_index([("labelled_at", DESCENDING)], name="labelled_at")
    predictions = list(
        db[PREDICTIONS]
        .find(
            {"outcome": {"$exists": True}},
            {"_id": 0, "shot_id": 1, "outcome": 1, "labelled_at": 1},
        )
        .sort("labelled_at", DESCENDING)
        .limit(window)
    )
    ids = [p["shot_id"] for p in predictions]
    # Small $in lists: the local wire-protocol server slows down with the square of the list
    # (5,000 ids take 20 s, 50 lists of 100 under a second); MongoDB does not mind either way.
    raw = [
        doc
        for start in range(0, len(ids), _IN_CHUNK)
        for doc in db[RAW].find({"shot_id": {"$in": ids[start : start + _IN_CHUNK]}}, {"_id": 0})
    ]
    stored = [
        doc
        for start in range(0, len(ids), _IN_CHUNK)
        for doc in db[SHOTS].find(
            {"shot_id": {"$in": ids[start : start + _IN_CHUNK]}},
            {"_id": 0, "shot_id": 1, "features": 1},
        )
    ]
    return window_from_documents(predictions, raw, requested=window, stored_features=stored)


@dataclass
class Decision:
    """One promotion, refusal or rollback, as recorded in the registry and on models.events."""

    event: str
    model: str
    # The champion after the decision, and before it (the same when refused).
    version: str | None
    previous_version: str | None
    challenger_version: str | None
    reason: str
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    window: dict[str, Any] = field(default_factory=dict)
    margin: float | None = None
    at: float = field(default_factory=time.time)

    @property
    def promoted(self) -> bool:
        return self.event == PROMOTED

    def as_event(self) -> dict[str, Any]:
        """The JSON object published on ``models.events`` (NaN becomes null)."""
        return {
            "event": self.event,
            "model": self.model,
            "version": self.version,
            "previous_version": self.previous_version,
            "challenger_version": self.challenger_version,
            "reason": self.reason,
            "metrics": {
                side: {k: _finite(v) for k, v in values.items()}
                for side, values in self.metrics.items()
            },
            "window": self.window,
            "margin": self.margin,
            "at": self.at,
        }


def _finite(value: float) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _measure(model: registry.Champion, window: Window) -> dict[str, float]:
    return {**score(window.outcomes, model.predict(window.features)), "rows": window.rows}


def _dated_within(tags: Mapping[str, str], dates: np.ndarray) -> int | None:
    """How many window shots are dated inside a version's training and validation windows."""
    start, end = tags.get("train_from"), tags.get("valid_to") or tags.get("train_to")
    if not (start and end and start.isdigit() and end.isdigit()):
        return None
    return int(((dates >= int(start)) & (dates <= int(end))).sum())


def _database(settings: Settings):
    from pymongo import MongoClient

    return MongoClient(settings.mongodb(), serverSelectionTimeoutMS=10_000)


def _read_window(settings: Settings, db, window: int) -> Window:
    from pymongo.errors import PyMongoError

    try:
        if db is not None:
            return labelled_window(db, window)
        with _database(settings) as mongo:
            return labelled_window(mongo[settings.mongodb_database], window)
    except PyMongoError as error:
        raise PromotionError(
            f"cannot read labelled shots from MongoDB (database {settings.mongodb_database!r}): "
            f"{error}; start it with `parivision up` or set PARIVISION_MONGODB_URI"
        ) from error


def challenge(
    settings: Settings,
    challenger_version: str,
    *,
    window: int | None = None,
    margin: float | None = None,
    min_labelled: int = MIN_LABELLED,
    db=None,
    publish: Publisher | None = None,
) -> Decision:
    """Measure a registered version against the champion on recent labelled shots; promote it
    if :func:`decide` says so.

    Args:
        settings: where the registry, MongoDB and Kafka are, and the model name.
        challenger_version: a version number (``3`` or ``v3``) or an alias.
        window: how many of the most recently labelled shots to measure on (default
            ``settings.promotion_window``).
        margin: how much lower the challenger's log loss must be (default
            ``settings.promotion_margin``).
        min_labelled: refuse when the window holds fewer labelled shots than this.
        db: the MongoDB database to read (default: the one the settings name).
        publish: sends the event (default :func:`publish_event` to ``models.events``).

    Returns:
        The decision; it is also tagged on the versions and published.

    Raises:
        LookupError: there is no such version.
        ValueError: a version was trained on other features, or ``window`` is not positive.
        PromotionError: MongoDB or Kafka could not be used.
    """
    window = settings.promotion_window if window is None else window
    margin = settings.promotion_margin if margin is None else margin
    if window < 1:
        raise ValueError(f"the window must hold at least one shot, not {window}")
    if not margin >= 0:
        raise ValueError(f"the log-loss margin must be 0 or more, not {margin}")
    publish = publish or publish_event
    challenger = registry.resolve_version(settings, str(challenger_version))
    before = registry.champion_version(settings)
    base = {
        "model": settings.model_name,
        "previous_version": before,
        "challenger_version": challenger,
        "margin": margin,
    }
    if challenger == before:
        decision = Decision(
            REFUSED, version=before, reason=f"v{challenger} is already the champion", **base
        )
        publish(settings, decision.as_event())
        return decision

    data = _read_window(settings, db, window)
    described = data.describe()
    challenger_model = registry.load_version(settings, challenger)
    metrics: dict[str, dict[str, float]] = {}
    enough = data.rows >= min_labelled and len(np.unique(data.outcomes)) == 2
    if enough:
        metrics["challenger"] = _measure(challenger_model, data)
    in_training = {
        "challenger": _dated_within(registry.version_tags(settings, challenger), data.game_dates)
    }

    stale = registry.stale_feature_set(settings, before) if before is not None else None
    if before is None:
        verdict = Verdict(True, "there is no champion yet")
    elif stale:
        verdict = Verdict(True, f"the champion cannot be served any more: {stale}")
    elif not enough:
        verdict = Verdict(
            False,
            f"only {data.rows} usable labelled shots in MongoDB "
            f"({settings.mongodb_database!r}) with "
            f"{len(np.unique(data.outcomes))} outcome(s); at least {min_labelled} with both "
            "made and missed are needed to compare: replay shots through the stream and sink "
            "until their outcomes arrive, then run promote again",
        )
    else:
        try:
            champion_model = registry.load_version(settings, before)
        except registry.BadModelError as error:
            # A champion that cannot be served any more (its artifact lost or damaged) is no
            # bar to clear: the workers already refuse it and score with an older one.
            champion_model = None
            verdict = Verdict(True, f"the champion cannot be served any more: {error.reason}")
        if champion_model is not None:
            metrics["champion"] = _measure(champion_model, data)
            in_training["champion"] = _dated_within(
                registry.version_tags(settings, before), data.game_dates
            )
            verdict = decide(
                metrics["champion"],
                metrics["challenger"],
                margin,
                settings.promotion_calibration_margin,
            )
    described["dated_in_training_window"] = in_training

    if verdict.promote and registry.champion_version(settings) != before:
        current = registry.champion_version(settings)
        verdict = Verdict(
            False,
            f"the champion changed from v{before} to v{current} while this challenge ran; "
            "run promote again",
        )
    decision = Decision(
        PROMOTED if verdict.promote else REFUSED,
        version=challenger if verdict.promote else before,
        reason=verdict.reason,
        metrics=metrics,
        window=described,
        **base,
    )
    stamp = _iso(decision.at)
    if verdict.promote:
        # previous-champion always names the version this promotion replaced (or none).
        if before is not None:
            registry.set_alias(settings, registry.PREVIOUS_CHAMPION_ALIAS, before)
        else:
            registry.delete_alias(settings, registry.PREVIOUS_CHAMPION_ALIAS)
        registry.set_champion(settings, challenger)
        if before is not None:
            registry.tag_version(
                settings, before, {"replaced_by": challenger, "replaced_at": stamp}
            )
    champion_metrics, challenger_metrics = (
        metrics.get("champion", {}),
        metrics.get("challenger", {}),
    )
    registry.tag_version(
        settings,
        challenger,
        {
            f"{TAG_PREFIX}decision": decision.event,
            f"{TAG_PREFIX}reason": decision.reason[:4000],
            f"{TAG_PREFIX}champion_version": before or "none",
            **{
                f"{TAG_PREFIX}{side}_{name}": _tag_number(values.get(name))
                for side, values in (
                    ("champion", champion_metrics),
                    ("challenger", challenger_metrics),
                )
                for name in ("log_loss", "roc_auc")
            },
            f"{TAG_PREFIX}window_shots": data.rows,
            f"{TAG_PREFIX}window_requested": window,
            f"{TAG_PREFIX}window_first_labelled_at": _iso(data.first_labelled_at),
            f"{TAG_PREFIX}window_last_labelled_at": _iso(data.last_labelled_at),
            f"{TAG_PREFIX}margin": f"{margin:g}",
            f"{TAG_PREFIX}decided_at": stamp,
            # Champion again: no longer replaced by anyone.
            **({"replaced_by": None, "replaced_at": None} if verdict.promote else {}),
        },
    )
    publish(settings, decision.as_event())
    return decision


def _tag_number(value: float | None) -> str | None:
    value = _finite(value) if value is not None else None
    return None if value is None else f"{value:.6f}"


def rollback(settings: Settings, *, publish: Publisher | None = None) -> Decision:
    """Give the champion alias back to the version the last promotion replaced.

    One level deep: the ``previous-champion`` alias is removed by the rollback, so a second
    rollback in a row is refused rather than undoing the first.

    Raises:
        PromotionError: there is no previous champion to restore.
    """
    publish = publish or publish_event
    current = registry.champion_version(settings)
    previous = registry.alias_version(settings, registry.PREVIOUS_CHAMPION_ALIAS)
    if previous is None or previous == current:
        if previous is not None:
            registry.delete_alias(settings, registry.PREVIOUS_CHAMPION_ALIAS)
        raise PromotionError(
            f"{settings.model_name!r} has no previous champion to roll back to (only the last "
            f"promotion can be undone, once); the champion is "
            f"{'v' + current if current else 'not set'}: `parivision promote VERSION` names one"
        )
    decision = Decision(
        ROLLED_BACK,
        model=settings.model_name,
        version=previous,
        previous_version=current,
        challenger_version=None,
        reason=f"rolled back from v{current} to v{previous}",
    )
    stamp = _iso(decision.at)
    registry.set_champion(settings, previous)
    registry.delete_alias(settings, registry.PREVIOUS_CHAMPION_ALIAS)
    if current is not None:
        registry.tag_version(
            settings,
            current,
            {"replaced_by": previous, "replaced_at": stamp, "rolled_back_at": stamp},
        )
    registry.tag_version(
        settings, previous, {"replaced_by": None, "replaced_at": None, "restored_at": stamp}
    )
    publish(settings, decision.as_event())
    return decision


def publish_event(settings: Settings, event: dict[str, Any]) -> None:
    """Send one decision to ``models.events`` (keyed by model name) and wait for the broker.

    Raises:
        PromotionError: the broker did not take it; the registry is already updated, so the
            workers still pick the champion up at their next registry check.
    """
    from confluent_kafka import KafkaException, Producer

    topic = settings.topic(schemas.MODEL_EVENTS)
    errors: list[str] = []
    try:
        producer = Producer(
            {
                "bootstrap.servers": settings.kafka(),
                "enable.idempotence": True,
                "message.timeout.ms": 15_000,
            }
        )
        producer.produce(
            topic,
            key=str(event["model"]).encode(),
            value=json.dumps(event).encode(),
            on_delivery=lambda error, _message: errors.append(str(error)) if error else None,
        )
        remaining = producer.flush(20)
    except KafkaException as error:
        errors.append(str(error))
        remaining = 0
    if remaining or errors:
        raise PromotionError(
            f"the registry records the {event['event']} decision, but its event did not reach "
            f"{topic} at {settings.kafka()} ({errors[0] if errors else 'timed out'}); running "
            "stream workers see the new champion at their next registry check, or on restart"
        )


def parse_event(value: bytes | str | None, model: str) -> dict[str, Any] | None:
    """A models.events record about ``model``, or None for anything else (other models,
    malformed records): the stream never stops on a bad event."""
    try:
        event = json.loads(value) if value else None
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(event, dict) or event.get("model") != model:
        return None
    if event.get("event") not in EVENTS:
        return None
    return event
