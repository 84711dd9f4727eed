"""Event schemas and topic names, defined once for producers, streams and consumers.

Wire format is JSON (UTF-8).  A shot *attempt* never carries its outcome; the outcome travels
separately on ``shots.outcomes`` and arrives later, as it does in a live game.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal, Required

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

# pydantic reads a TypedDict's schema only from typing_extensions' on Python 3.11.
from typing_extensions import TypedDict

__all__ = [
    "ATTEMPTS",
    "CSV_COLUMNS",
    "DLQ",
    "DeadLetter",
    "MODEL_EVENTS",
    "OUTCOMES",
    "SCORED",
    "Outcome",
    "SCORED_CONTEXT",
    "ScoredShot",
    "Shot",
    "ValidationError",
    "describe_validation_error",
    "shot_id_for",
]

# The largest integer MongoDB (and every JSON encoder here) stores: ids above it are refused.
MAX_ID = 2**63 - 1
# Names, actions and zones in 23 seasons of shots are at most 34 characters; a longer text is a
# broken producer, not a shot, and is refused rather than stored.
MAX_TEXT = 100
# Epoch seconds of 2100-01-01, the last game date a shot may have: a later clock is not a clock.
LAST_TIME = 4_102_444_800.0

ATTEMPTS = "shots.attempts"
OUTCOMES = "shots.outcomes"
SCORED = "shots.scored"
DLQ = "shots.dlq"
MODEL_EVENTS = "models.events"

# The 22-column layout of the Kaggle "NBA Shot Locations 1997 - 2020" file, mapped to our fields.
CSV_COLUMNS: dict[str, str] = {
    "Game ID": "game_id",
    "Game Event ID": "game_event_id",
    "Player ID": "player_id",
    "Player Name": "player_name",
    "Team ID": "team_id",
    "Team Name": "team_name",
    "Period": "period",
    "Minutes Remaining": "minutes_remaining",
    "Seconds Remaining": "seconds_remaining",
    "Action Type": "action_type",
    "Shot Type": "shot_type",
    "Shot Zone Basic": "shot_zone_basic",
    "Shot Zone Area": "shot_zone_area",
    "Shot Zone Range": "shot_zone_range",
    "Shot Distance": "shot_distance",
    "X Location": "x",
    "Y Location": "y",
    "Shot Made Flag": "made",
    "Game Date": "game_date",
    "Home Team": "home_team",
    "Away Team": "away_team",
    "Season Type": "season_type",
}


# The shot's whole-number fields: JSON may carry them as numbers or numeric strings.
INT_FIELDS = (
    "game_id",
    "game_event_id",
    "player_id",
    "team_id",
    "period",
    "minutes_remaining",
    "seconds_remaining",
    "shot_distance",
    "x",
    "y",
    "game_date",
)


class Shot(BaseModel):
    """A field-goal attempt as it is taken: no outcome.

    Coordinates are stats.nba.com shot-chart units (tenths of a foot, hoop at the origin); the
    bounds are the court's, so a shot from outside it is rejected rather than scored.
    """

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    shot_id: str = Field(min_length=1, max_length=128)
    game_id: int = Field(gt=0, le=MAX_ID)
    game_event_id: int | None = Field(default=None, ge=0, le=MAX_ID)
    player_id: int = Field(gt=0, le=MAX_ID)
    player_name: str = Field(default="", max_length=MAX_TEXT)
    team_id: int = Field(default=0, ge=0, le=MAX_ID)
    team_name: str = Field(default="", max_length=MAX_TEXT)
    period: int = Field(ge=1, le=10)
    minutes_remaining: int = Field(ge=0, le=12)
    seconds_remaining: int = Field(ge=0, le=59)
    action_type: str = Field(min_length=1, max_length=MAX_TEXT)
    shot_type: Literal["2PT Field Goal", "3PT Field Goal"]
    shot_zone_basic: str = Field(min_length=1, max_length=MAX_TEXT)
    shot_zone_area: str = Field(min_length=1, max_length=MAX_TEXT)
    shot_zone_range: str = Field(min_length=1, max_length=MAX_TEXT)
    shot_distance: int = Field(ge=0, le=100)
    x: int = Field(ge=-250, le=250)
    y: int = Field(ge=-52, le=940)
    game_date: int = Field(ge=19460101, le=21001231)
    home_team: str = Field(default="", max_length=MAX_TEXT)
    away_team: str = Field(default="", max_length=MAX_TEXT)
    season_type: str = Field(default="Regular Season", max_length=MAX_TEXT)
    # Set by the producer: which replay sent it and when (epoch seconds).
    replay_id: str = Field(default="", max_length=128)
    produced_at: float = Field(default=0.0, ge=0, le=LAST_TIME, allow_inf_nan=False)

    @field_validator(*INT_FIELDS, "produced_at", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        return _refuse_boolean(value)

    @field_validator("minutes_remaining", "seconds_remaining")
    @classmethod
    def _on_the_clock(cls, value: int, info: ValidationInfo) -> int:
        # 12-minute quarters, 5-minute overtimes: 12:30 of a quarter or 7:00 of an overtime is
        # no moment of a game (not one of 232,410 real shots has either).
        period = info.data.get("period")
        if period is None:
            return value
        length = 12 if period <= 4 else 5
        if info.field_name == "minutes_remaining":
            late = value > length
            said = f"{value} minutes"
        else:
            minutes = info.data.get("minutes_remaining")
            late = minutes is not None and minutes * 60 + value > length * 60
            said = f"{minutes}:{value:02d}"
        if late:
            raise PydanticCustomError(
                "clock", f"{said} left is not on the clock of period {period} ({length} minutes)"
            )
        return value


class Outcome(BaseModel):
    """Made or missed, for a shot id, published after the attempt."""

    model_config = ConfigDict(extra="ignore")

    shot_id: str = Field(min_length=1, max_length=128)
    game_id: int = Field(gt=0, le=MAX_ID)
    # The key of both input topics; it names the player whose form the outcome updates.
    player_id: int = Field(gt=0, le=MAX_ID)
    made: int = Field(ge=0, le=1)
    replay_id: str = Field(default="", max_length=128)
    produced_at: float = Field(default=0.0, ge=0, le=LAST_TIME, allow_inf_nan=False)

    @field_validator("game_id", "player_id", "made", "produced_at", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        return _refuse_boolean(value)


def _refuse_boolean(value: Any) -> Any:
    """JSON ``true`` is not the number 1 (pydantic would take it for one): a producer sending
    it is broken, and its shot is refused like any other wrong type."""
    if value is True or value is False:
        raise PydanticCustomError("int_type", "Input should be a valid integer, not a boolean")
    return value


# Shot fields a scored record carries as they are, so the store, the live feed and the page can
# filter by team and date, draw the shot and order a game without joining the raw shot.
SCORED_CONTEXT = (
    "player_name",
    "team_id",
    "team_name",
    "game_date",
    "game_event_id",
    "period",
    "minutes_remaining",
    "seconds_remaining",
    "action_type",
    "shot_type",
    "shot_zone_basic",
    "x",
    "y",
)


class ScoredShot(TypedDict, total=False):
    """What the stream publishes on ``shots.scored``.

    One record when the shot is scored (``labelled`` false) and one more when its outcome has
    arrived (``labelled`` true, with ``outcome`` and the online learner's result).  Both carry
    the shot's context (team, date, clock, action, zone, X/Y) so the store and the live feed
    need no join; in a labelled record a context field is null when the shot was kept from
    before that field existed.  The features, the latency and ``produced_at`` are in the
    first record only.
    """

    shot_id: Required[str]
    game_id: Required[int]
    player_id: Required[int]
    player_name: str | None
    team_id: int | None
    team_name: str | None
    game_date: int | None
    game_event_id: int | None
    period: int | None
    minutes_remaining: int | None
    seconds_remaining: int | None
    action_type: str | None
    shot_type: str | None
    shot_zone_basic: str | None
    x: int | None
    y: int | None
    shot_value: int | None
    replay_id: Required[str]
    model_version: Required[str]
    p_champion: Required[float]
    p_online: Required[float]
    p_online_by_learner: dict[str, float]
    online_learner: str
    fair_odds: Required[float]
    # The version scored in shadow beside the champion and its probability (not served); null
    # when none shadows it (models.promotion.shadow).
    shadow_version: str | None
    p_shadow: float | None
    # What the model was not asked as sent (models.inputs): present only when something was.
    warnings: list[str]
    features: dict[str, float]
    latency_ms: float
    produced_at: float
    scored_at: Required[float]
    labelled: Required[bool]
    outcome: int
    labelled_at: float


class DeadLetter(TypedDict):
    """What goes to ``shots.dlq``: why a record failed, where it came from, and its bytes.

    ``original_b64`` holds the first 256 KiB of the original (all of it, unless
    ``original_truncated``); ``original_text`` is the same as text when the original is UTF-8
    and at most 64 KiB, so a person can read it without decoding anything.  A source's bad row
    has no topic, partition or offset.
    """

    reason: str
    stage: str
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    key: str | None
    original_b64: str
    original_text: str | None
    original_size: int
    original_truncated: bool
    failed_at: float


def shot_id_for(
    game_id: Any,
    game_event_id: Any = None,
    *,
    period: Any = "",
    minutes_remaining: Any = "",
    seconds_remaining: Any = "",
    player_id: Any = "",
    x: Any = "",
    y: Any = "",
) -> str:
    """``{game}-{event}``, or where a source has no event id a stable hash of the shot's moment.

    The hash covers game, period, clock, player and location, so the same row always gets the
    same id and a replay of it overwrites rather than duplicates.
    """
    if game_event_id not in (None, ""):
        return f"{int(game_id)}-{int(game_event_id)}"
    key = f"{game_id}|{period}|{minutes_remaining}|{seconds_remaining}|{player_id}|{x}|{y}"
    return f"{int(game_id)}-h{hashlib.blake2b(key.encode(), digest_size=6).hexdigest()}"


def describe_validation_error(error: ValidationError) -> str:
    """One line a person can act on: which fields were wrong and why."""
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item.get("loc", ())) or "record"
        parts.append(f"{where}: {item.get('msg', 'invalid')}")
    more = error.error_count() - len(parts)
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)
