"""A decision as it is recorded and sent: one JSON event on ``models.events``, on which the
running stream workers swap models.  The registry's aliases are the truth; the event is the notice.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from models.promotion.decision import PromotionError
from parivision import schemas
from parivision.settings import Settings

PROMOTED, REFUSED, ROLLED_BACK = "promoted", "refused", "rolled_back"
# A challenger that passed offline starts scoring in shadow; a watch after a promotion ends with
# the new champion kept.
SHADOWING, CONFIRMED = "shadowing", "confirmed"
EVENTS = (PROMOTED, REFUSED, ROLLED_BACK, SHADOWING, CONFIRMED)
# The events after which the champion alias names another version.
SWAP_EVENTS = (PROMOTED, ROLLED_BACK)

Publisher = Callable[[Settings, dict[str, Any]], None]


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
    # The shadow this decision starts, judges or ends (models.promotion.shadow), if any.
    shadow: dict[str, Any] | None = None
    # Made by the retrain loop's judge of a shadow, not by a person or a challenge.
    automatic: bool = False

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
                side: {k: finite(v) for k, v in values.items()}
                for side, values in self.metrics.items()
            },
            "window": self.window,
            "margin": self.margin,
            "at": self.at,
            "shadow": self.shadow,
            "automatic": self.automatic,
        }


def finite(value: float) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


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
