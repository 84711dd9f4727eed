"""Scoring micro-batches with the champion and joining outcomes: the stream's logic, no Kafka.

Kept apart from the Faust app so it can be tested and benchmarked on its own; the app only moves
bytes between topics and tables and calls these two methods.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.features import FEATURE_NAMES, build_features, columns_from_records, feature_dict
from models.online import (
    CHECKPOINT_FORMAT,
    LiveMetrics,
    RollingQuality,
    learner_features,
    learner_input,
    make_learner,
    read_checkpoint,
)
from models.registry import P_MAX, P_MIN, Champion
from parivision import schemas

log = logging.getLogger("parivision.stream")


class Scorer:
    """Scores shots with the champion and online learners; the learners learn when outcomes arrive.

    Every learner predicts a shot when it is scored and learns from it only when its outcome
    arrives, so its :class:`~models.online.LiveMetrics` are measured on the same shots, the same
    way, as the champion's.

    Args:
        champion: the loaded champion model.
        learner: name of the first River learner (see :data:`models.online.LEARNERS`); its
            probability is the record's ``p_online``.
        learners: the names of every learner kept side by side (``learner`` first if both are
            given). Neither given: ``["logreg"]``.
        window: how many recent labelled shots :attr:`recent` measures each model on.
    """

    def __init__(
        self,
        champion: Champion,
        learner: str | None = None,
        *,
        learners: Sequence[str] | None = None,
        window: int = 2000,
    ) -> None:
        names = [learner] if learner else []
        names += [name for name in (learners or []) if name not in names]
        names = names or ["logreg"]
        self.champion = champion
        # A version scored beside the champion on the same shots, not served (a challenger
        # before its promotion, or the champion a promotion replaced, watching the new one).
        self.shadow: Champion | None = None
        self.learners = {name: make_learner(name) for name in names}
        self.learner_metrics = {name: LiveMetrics() for name in names}
        self.learned = dict.fromkeys(names, 0)
        self.champion_metrics = LiveMetrics()
        # The same scores over the most recent labelled shots, by model, for the metrics.
        self.recent = {name: RollingQuality(window) for name in ("champion", *names)}
        self._window = window
        self.scored = 0
        self.labelled = 0

    @property
    def learner_name(self) -> str:
        """The first learner: the one behind ``p_online``."""
        return next(iter(self.learners))

    @property
    def learner(self) -> Any:
        return self.learners[self.learner_name]

    @property
    def online_metrics(self) -> LiveMetrics:
        return self.learner_metrics[self.learner_name]

    def score_batch(
        self, shots: Sequence[dict[str, Any]], form: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        """One scored record per shot, in order (see :class:`parivision.schemas.ScoredShot`).

        ``form`` is the shots' player-form values (:mod:`models.form`), computed by the stream
        from its table; without it the shots must carry ``made`` and be a time-ordered history.
        """
        if not shots:
            return []
        # One champion (and shadow) for the whole batch, even if another is swapped in after.
        champion, shadow = self.champion, self.shadow
        matrix = build_features(columns_from_records(shots), form=form)
        p_champion = np.clip(champion.predict(matrix), P_MIN, P_MAX).tolist()
        p_shadow = (
            np.clip(shadow.predict(matrix), P_MIN, P_MAX).tolist()
            if shadow is not None
            else [None] * len(shots)
        )
        shadow_version = shadow.version if shadow is not None else None
        now = time.time()
        version = champion.version
        learners = list(self.learners.items())
        first = self.learner_name
        out = []
        for shot, row, p, p_in_shadow in zip(shots, matrix, p_champion, p_shadow, strict=True):
            features = feature_dict(row)
            seen = learner_features(features)
            by_learner = {
                name: min(
                    max(
                        model.predict_proba_one(learner_input(model, seen, p, shot)).get(True, 0.5),
                        P_MIN,
                    ),
                    P_MAX,
                )
                for name, model in learners
            }
            produced_at = shot.get("produced_at") or now
            out.append(
                {
                    "shot_id": shot["shot_id"],
                    "game_id": shot["game_id"],
                    "player_id": shot["player_id"],
                    **{name: shot.get(name) for name in schemas.SCORED_CONTEXT},
                    "shot_value": 3 if str(shot.get("shot_type", "")).startswith("3") else 2,
                    "replay_id": shot.get("replay_id", ""),
                    "model_version": version,
                    "p_champion": p,
                    "p_online": by_learner[first],
                    "p_online_by_learner": by_learner,
                    "online_learner": first,
                    "fair_odds": 1.0 / p,
                    "shadow_version": shadow_version,
                    "p_shadow": p_in_shadow,
                    "features": features,
                    "produced_at": produced_at,
                    "scored_at": now,
                    "latency_ms": max(0.0, (now - produced_at) * 1000.0),
                    "labelled": False,
                }
            )
            if shot.get("warnings"):
                out[-1]["warnings"] = shot["warnings"]
        self.scored += len(out)
        return out

    def swap(self, champion: Champion) -> Champion:
        """Score from the next batch on with ``champion``; return the one it replaces.

        Call it from the thread that scores, between two batches: every shot is then scored
        once, by the old champion or the new, and its record names which.
        """
        previous, self.champion = self.champion, champion
        return previous

    def set_shadow(self, shadow: Champion | None) -> Champion | None:
        """Score from the next batch on beside ``shadow`` (None: no shadow); return the one it
        replaces.  Like :meth:`swap`, call it between two batches."""
        previous, self.shadow = self.shadow, shadow
        if (previous and previous.version) != (shadow and shadow.version):
            self.recent.pop("shadow", None)  # another model: its window starts afresh
            if shadow is not None:
                self.recent["shadow"] = RollingQuality(self._window)
        return previous

    def label(self, kept: dict[str, Any], made: int) -> dict[str, Any]:
        """Join an outcome to the scored record kept for it: learn, update metrics, and return
        the labelled record to publish."""
        features = learner_features(kept["features"])
        y = bool(made)
        # A record kept before this learner set existed carries only the first learner's p.
        by_learner = kept.get("p_online_by_learner") or {
            kept.get("online_learner", self.learner_name): kept["p_online"]
        }
        for name, model in self.learners.items():
            # Each learner predicted this shot when it was scored; only now may it learn from it.
            model.learn_one(learner_input(model, features, kept["p_champion"], kept), y)
            self.learned[name] += 1
            p = by_learner.get(name)
            if p is not None:
                self.learner_metrics[name].update(made, p)
                self.recent[name].update(made, p)
        self.champion_metrics.update(made, kept["p_champion"])
        self.recent["champion"].update(made, kept["p_champion"])
        p_shadow, shadow_version = kept.get("p_shadow"), kept.get("shadow_version")
        in_shadow = self.shadow is not None and shadow_version == self.shadow.version
        if p_shadow is not None and in_shadow and "shadow" in self.recent:
            self.recent["shadow"].update(made, p_shadow)
        self.labelled += 1
        return {
            "shot_id": kept["shot_id"],
            "game_id": kept["game_id"],
            "player_id": kept["player_id"],
            # Kept records from before these fields existed lack them; the feed shows None.
            **{name: kept.get(name) for name in (*schemas.SCORED_CONTEXT, "shot_value")},
            "replay_id": kept.get("replay_id", ""),
            "model_version": kept["model_version"],
            "p_champion": kept["p_champion"],
            "p_online": kept["p_online"],
            "p_online_by_learner": by_learner,
            "online_learner": kept.get("online_learner", self.learner_name),
            "fair_odds": kept["fair_odds"],
            # Kept records from before shadows existed lack them.
            "shadow_version": shadow_version,
            "p_shadow": p_shadow,
            "scored_at": kept["scored_at"],
            "labelled": True,
            "outcome": int(made),
            "labelled_at": time.time(),
        }

    def live_metrics(self) -> dict[str, Any]:
        return {
            "scored": self.scored,
            "labelled": self.labelled,
            "champion": {"version": self.champion.version, **self.champion_metrics.as_dict()},
            "shadow": {
                "version": self.shadow.version,
                **self.recent["shadow"].summary(),
            }
            if self.shadow is not None and "shadow" in self.recent
            else None,
            "online": {"learner": self.learner_name, **self.online_metrics.as_dict()},
            "learners": {
                name: {"learned": self.learned[name], **metrics.as_dict()}
                for name, metrics in self.learner_metrics.items()
            },
        }

    def learner_state(self) -> bytes:
        """The learners, what they learned from and their live metrics, pickled.

        The champion is not included: it comes from the registry. Call it between two batches
        (on the event loop) so the snapshot is one consistent moment.
        """
        state = {
            "format": CHECKPOINT_FORMAT,
            "saved_at": time.time(),
            "learners": {
                name: {
                    "model": model,
                    "metrics": self.learner_metrics[name],
                    "learned": self.learned[name],
                }
                for name, model in self.learners.items()
            },
        }
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    def restore_learners(self, data: bytes) -> dict[str, int]:
        """Take back the learners saved by :meth:`learner_state`; return ``{name: learned}`` of
        those restored. A learner not in the checkpoint keeps starting fresh; one in the
        checkpoint but no longer configured is dropped.

        Raises:
            ValueError: the data is not a checkpoint this version can read.
        """
        stored = read_checkpoint(data)
        saved = {name: stored[name] for name in self.learners if name in stored}
        for name, entry in saved.items():
            self.learners[name] = entry["model"]
            self.learner_metrics[name] = entry["metrics"]
            self.learned[name] = int(entry["learned"])
        return {name: self.learned[name] for name in saved}


def save_checkpoint(data: bytes, path: Path) -> None:
    """Write a checkpoint atomically: a reader (or a crash) sees the old file or the new one,
    never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name: a periodic save and the one at shutdown may overlap.
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_checkpoint(scorer: Scorer, path: Path) -> dict[str, int]:
    """Restore ``scorer``'s learners from ``path`` if it exists; ``{name: learned}`` of those
    restored. A checkpoint that cannot be read is logged and the learners start fresh."""
    if not path.exists():
        log.info("no online checkpoint at %s: learners %s start fresh", path, list(scorer.learners))
        return {}
    try:
        restored = scorer.restore_learners(path.read_bytes())
    except (OSError, ValueError) as error:
        log.error(
            "could not load the online checkpoint %s (%s); learners %s start fresh "
            "(delete or move the file to silence this)",
            path,
            error,
            list(scorer.learners),
        )
        return {}
    log.info(
        "restored online learners from %s: %s",
        path,
        ", ".join(f"{name} ({n} shots learned)" for name, n in restored.items()) or "none",
    )
    return restored


def compact(record: dict[str, Any]) -> dict[str, Any]:
    """The scored record as kept in the pending table: features as a list in
    :data:`FEATURE_NAMES` order (half the bytes of the dict in every changelog message)."""
    features = record["features"]
    return {**record, "features": [features.get(name) for name in FEATURE_NAMES]}


def expand(kept: dict[str, Any]) -> dict[str, Any]:
    """Undo :func:`compact`."""
    values = kept["features"]
    return {
        **kept,
        "features": {
            name: value
            for name, value in zip(FEATURE_NAMES, values, strict=True)
            if value is not None
        },
    }
