"""What the MongoDB store holds: its collections and the shape of their documents.

The sink (:mod:`consumers.mongo_sink`) writes them; the API, the retrain loop, promotion, the
demo and the benchmarks read them.

One document a shot, in ``shots``, keyed by the shot id (``_id`` is the shot id, so a record
delivered twice stays one document with no index of its own), with the three layers as its parts:

- bronze, ``raw``: the attempt as it came (:class:`parivision.schemas.Shot` fields), plus
  ``received_at``;
- silver, ``features``: the features the stream scored the shot with (the player's form
  included);
- gold, the top level: the ``shots.scored`` record (:class:`parivision.schemas.ScoredShot`,
  without its features) plus ``stored_at`` (when the prediction was stored); once the outcome
  is in, :func:`label_fields` too, and ``outcome_stored_at``: when the sink wrote the outcome.
  ``labelled_at`` is when the stream joined it, earlier, and not in the order the store gets
  outcomes: the sink writes a batch of shots from one partition after another's, a shot waits
  for its prediction, a write is retried.  A reader that polls for new outcomes polls on
  ``outcome_stored_at`` (see :data:`OUTCOME_VISIBLE_S`).
  ``game_id``, ``player_id`` and ``replay_id`` are at the top level from whichever part came.

The three are written together, by one insert, once the shot's prediction and its outcome are
in: the store's server inserts a document in a fifth of the time it takes to update one, and
one document with four indexes in a third of the time of three documents with twelve
(``bench/sink_ceiling.py``).  Read-only views give each layer under a name of its own:
:data:`RAW_VIEW` (the attempts as they came), :data:`FEATURES_VIEW` and :data:`PREDICTIONS_VIEW`.

A shot whose prediction is not in yet has only ``raw`` (and no ``scored_at``): readers of
predictions ask for :data:`SCORED`.

- ``retrain_events``: one document per retrain of the retrain loop: why, when, the challenger
  trained and the promotion decision (or the error).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

SHOTS = "shots"
RETRAIN_EVENTS = "retrain_events"
# The layers as views (read-only); the first and last have the names the collections had when
# each layer was a collection of its own (the store before one document a shot).
RAW_VIEW, FEATURES_VIEW, PREDICTIONS_VIEW = "shots_raw", "shot_features", "predictions"
VIEWS: dict[str, list[dict[str, Any]]] = {
    RAW_VIEW: [{"$match": {"raw": {"$exists": True}}}, {"$replaceRoot": {"newRoot": "$raw"}}],
    FEATURES_VIEW: [
        {"$match": {"features": {"$exists": True}}},
        {
            "$project": {
                "_id": 0,
                "shot_id": 1,
                "game_id": 1,
                "player_id": 1,
                "replay_id": 1,
                "features": 1,
                "stored_at": 1,
            }
        },
    ],  # fmt: skip
    PREDICTIONS_VIEW: [
        {"$match": {"scored_at": {"$exists": True}}},
        {"$project": {"_id": 0, "raw": 0, "features": 0}},
    ],
}
# The documents that hold a prediction (a shot stored before it was scored has only ``raw``).
SCORED: dict[str, Any] = {"scored_at": {"$exists": True}}
# Every secondary index costs each insert about a tenth of a millisecond on the local server,
# so only the ones a reader needs: shots by when their outcome was stored (the promotion window
# reads the newest labels, the retrain loop polls a range since its last look), by player (history,
# the what-if, names), by game, and newest first (``/shots``, the drift window).
INDEXES: list[dict[str, Any]] = [
    {"keys": [("outcome_stored_at", -1)], "name": "outcome_stored_at"},
    {"keys": [("player_id", 1)], "name": "player_id"},
    {"keys": [("game_id", 1)], "name": "game_id"},
    {"keys": [("scored_at", 1)], "name": "scored_at"},
]
OUTCOME_INDEX: dict[str, Any] = INDEXES[0]
# How long after the time a sink stamps on a batch (``outcome_stored_at``) its documents may
# still become visible to readers: the batch is stamped just before it is sent, and the write
# can take this long.  A reader polling for outcomes stored since its last look reads this far
# back again and skips the shots it has seen (``consumers.retrain_trigger``).
OUTCOME_VISIBLE_S = 5.0

# About how many documents one read of a range asks for.  The local server answers one request
# at a time and reads a range whole before it answers (a limit does not shorten it), about
# 0.05 ms a document: a poll that read its 2,500 new shots at once held every insert of the
# sink behind it for 0.2-0.7 s.  Read in slices of this size, a write waits 10-20 ms at most.
SLICE_DOCS = 250


def read_range(
    collection,
    field: str,
    after: float,
    projection: dict[str, Any],
    *,
    inclusive: bool = False,
    target: int = SLICE_DOCS,
    first_slice: float = 1.0,
    clock: Callable[[], float] = time.time,
) -> Iterator[dict[str, Any]]:
    """Every document whose ``field`` (a time in seconds, indexed) is above ``after`` (at or
    above when ``inclusive``), in ``field`` order, read in slices of the range of about
    ``target`` documents each, so no one request holds the server long (see
    :data:`SLICE_DOCS`).

    A slice starts ``first_slice`` seconds wide, doubles after one with fewer than half the
    target and halves after one with more than twice as many; the last, once a slice would
    reach the present, has no upper bound.  ``projection`` gets ``field`` added when it leaves
    it out.

    Example (a list of documents standing in for a collection):
        >>> class Docs(list):
        ...     def find(self, query, projection):
        ...         (field, bounds), = query.items()
        ...         low = bounds.get("$gt", bounds.get("$gte"))
        ...         return [d for d in self if (d[field] > low or "$gte" in bounds and
        ...                 d[field] == low) and d[field] <= bounds.get("$lte", 1e18)]
        >>> docs = Docs({"at": 100.0 + i / 4} for i in range(40))
        >>> now = lambda: 200.0
        >>> [d["at"] for d in read_range(docs, "at", 108.5, {}, clock=now)]
        [108.75, 109.0, 109.25, 109.5, 109.75]
        >>> len(list(read_range(docs, "at", 100.0, {}, inclusive=True, target=2, clock=now)))
        40
    """
    projection = dict(projection)
    if _includes(projection) and not projection.get(field):
        projection[field] = 1
    low, closed, width = after, inclusive, first_slice
    while True:
        bound: dict[str, float] = {"$gte" if closed else "$gt": low}
        last = low + width >= clock()
        if not last:
            bound["$lte"] = low + width
        docs = sorted(collection.find({field: bound}, projection), key=lambda d: d[field])
        yield from docs
        if last:
            return
        low, closed = low + width, False
        if len(docs) < target / 2:
            width *= 2
        elif len(docs) > 2 * target:
            width /= 2


def read_newest(
    collection,
    field: str,
    projection: dict[str, Any],
    *,
    after: float = 0.0,
    limit: int | None = None,
    target: int = SLICE_DOCS,
    first_slice: float = 1.0,
    clock: Callable[[], float] = time.time,
) -> Iterator[dict[str, Any]]:
    """The documents whose ``field`` is above ``after``, newest first, at most ``limit``: what
    ``find().sort(field, -1).limit(limit)`` gives, read in slices of the range from the present
    back (as :func:`read_range` does forwards).  The local server answers that sort by reading
    every document above ``after`` (1.2 s for the newest 2,000 of 24,000 shots, every write
    waiting); this reads about as many as it returns.

    Example (as in :func:`read_range`):
        >>> class Docs(list):
        ...     def find(self, query, projection):
        ...         (field, bounds), = query.items()
        ...         return [d for d in self if bounds["$gt"] < d[field] <= bounds.get("$lte", 1e18)]
        >>> docs = Docs({"at": 100.0 + i / 4} for i in range(40))
        >>> [d["at"] for d in read_newest(docs, "at", {}, limit=3, clock=lambda: 200.0)]
        [109.75, 109.5, 109.25]
        >>> len(list(read_newest(docs, "at", {}, after=105.0, clock=lambda: 200.0)))
        19
    """
    if limit is not None and limit <= 0:
        return
    projection = dict(projection)
    if _includes(projection) and not projection.get(field):
        projection[field] = 1
    high: float | None = None  # the first slice is open above: a clock behind the writer's
    width, given = first_slice, 0
    while True:
        low = (clock() if high is None else high) - width
        final = low <= after
        bound: dict[str, float] = {"$gt": after if final else low}
        if high is not None:
            bound["$lte"] = high
        docs = sorted(collection.find({field: bound}, projection), key=lambda d: -d[field])
        for doc in docs:
            yield doc
            given += 1
            if limit is not None and given >= limit:
                return
        if final:
            return
        high = low
        if len(docs) < target / 2:
            width *= 2
        elif len(docs) > 2 * target:
            width /= 2


def _includes(projection: dict[str, Any]) -> bool:
    """Whether a projection names the fields to return (rather than the ones to leave out)."""
    return any(v for k, v in projection.items() if k != "_id")


def shot_document(
    raw: dict[str, Any] | None,
    scored: dict[str, Any] | None,
    label: dict[str, Any] | None,
    now: float,
) -> dict[str, Any]:
    """A shot's document from the parts that came: its attempt (with ``received_at``), its
    scored record (with ``features``) and its labelled record; any may be missing.

    Example:
        >>> doc = shot_document({"shot_id": "1-2", "game_id": 1, "player_id": 7,
        ...     "received_at": 5.0}, None, None, 6.0)
        >>> doc["_id"], doc["raw"]["received_at"], "features" in doc
        ('1-2', 5.0, False)
    """
    first = scored or raw or label
    assert first is not None, "a shot's document needs one of its parts"
    doc: dict[str, Any] = {
        "_id": first["shot_id"],
        "shot_id": first["shot_id"],
        "game_id": first.get("game_id"),
        "player_id": first.get("player_id"),
        "replay_id": first.get("replay_id", ""),
    }
    if raw is not None:
        doc["raw"] = raw
    if scored is not None:
        doc.update(scored)
    if label is not None:
        doc.update(label_fields(label))
        doc["outcome_stored_at"] = now
    doc["stored_at"] = now
    return doc


def label_fields(label: dict[str, Any]) -> dict[str, Any]:
    """What a labelled ``shots.scored`` record sets on its shot's document."""
    return {
        "outcome": label["outcome"],
        "labelled_at": label["labelled_at"],
        "replay_id": label.get("replay_id", ""),
        "model_version": label["model_version"],
        "p_champion": label["p_champion"],
        "p_online": label["p_online"],
        "shadow_version": label.get("shadow_version"),
        "p_shadow": label.get("p_shadow"),
        "game_id": label["game_id"],
        "player_id": label["player_id"],
    }
