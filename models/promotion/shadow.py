"""Shadow scoring: a model scored live beside the champion on the same shots, not served, and
judged on their outcomes.

Two kinds of shadow, one at a time, named by the registry alias ``shadow``:

- a **challenger** that passed the offline gate (:func:`models.promotion.challenge`) shadows the
  champion for ``shadow_shots`` labelled shots and is promoted only if its live log loss on them
  is lower than the champion's by more than ``shadow_margin``; otherwise it is refused;
- after any promotion the **previous champion** shadows the new one (a *watch*) as long; the
  new one is rolled back when its live log loss is above the previous one's by more than
  ``rollback_margin``, or above the base rate's (a constant at those shots' make rate), and kept
  (``confirmed``) otherwise.  One far worse than the base rate is rolled back early.

The stream workers score the version holding the alias beside the champion (``p_shadow`` and
``shadow_version`` on every scored record, so the sink stores them); the retrain loop's
:class:`ShadowJudge` reads the labelled predictions and decides.  Nothing here depends on how
many workers there are: the evidence is what the store holds.

The shadow's terms are tags on its version (``shadow.role``, ``shadow.champion``,
``shadow.started_at``, ``shadow.shots``) and its end is recorded there too (``shadow.decision``,
``shadow.reason``, both live log losses).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from models import registry
from models.promotion.events import finite
from parivision.settings import Settings
from parivision.store import OUTCOME_INDEX, SHOTS, read_range

SHADOW_ALIAS = "shadow"
CHALLENGER, WATCH = "challenger", "watch"
TAG_PREFIX = "shadow."
# A watched champion this far above the base rate's log loss after EARLY_SHOTS is rolled back
# at once: a model that inverts its probabilities shows it within a couple of hundred shots.
EARLY_SHOTS, EARLY_MARGIN = 200, 0.05
# The terms of a shadow, as tags on its version; its end adds the decision tags.
TERM_TAGS = ("role", "champion", "started_at", "shots")
END_TAGS = ("decision", "reason", "labelled", "log_loss", "champion_log_loss", "decided_at")
PROMOTE, REFUSE, ROLL_BACK, CONFIRM = "promote", "refuse", "roll_back", "confirm"
# A shadow the stream never scored (refused when loaded, say) is given up after this many times
# its shots in labelled shots without it.
GIVE_UP_AFTER = 5


@dataclass(frozen=True)
class Shadow:
    """One shadow: which version, against which champion, since when, judged on how many."""

    version: str
    role: str
    champion: str
    started_at: float
    shots: int

    @property
    def key(self) -> tuple[str, str, float]:
        return (self.version, self.champion, self.started_at)

    def describe(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "role": self.role,
            "champion": self.champion,
            "started_at": self.started_at,
            "shots": self.shots,
        }


def current_shadow(settings: Settings) -> Shadow | None:
    """The shadow the registry names, or None.

    Raises:
        MlflowException: the registry did not answer.
    """
    version = registry.alias_version(settings, SHADOW_ALIAS)
    if version is None:
        return None
    tags = registry.version_tags(settings, version)
    try:
        return Shadow(
            version=version,
            role=tags[f"{TAG_PREFIX}role"],
            champion=tags[f"{TAG_PREFIX}champion"],
            started_at=float(tags[f"{TAG_PREFIX}started_at"]),
            shots=int(tags[f"{TAG_PREFIX}shots"]),
        )
    except (KeyError, ValueError):
        # The alias given by hand, without terms: shadow it against the champion, from now.
        champion = registry.champion_version(settings)
        if champion is None or champion == version:
            return None
        return Shadow(version, CHALLENGER, champion, time.time(), settings.shadow_shots)


def begin(settings: Settings, version: str, role: str, champion: str) -> Shadow:
    """Give ``version`` the shadow alias with its terms (the event is the caller's)."""
    shadow = Shadow(str(version), role, str(champion), time.time(), settings.shadow_shots)
    registry.tag_version(
        settings,
        shadow.version,
        {
            **{f"{TAG_PREFIX}{name}": None for name in END_TAGS},
            f"{TAG_PREFIX}role": role,
            f"{TAG_PREFIX}champion": shadow.champion,
            f"{TAG_PREFIX}started_at": repr(shadow.started_at),
            f"{TAG_PREFIX}shots": shadow.shots,
        },
    )
    registry.set_alias(settings, SHADOW_ALIAS, shadow.version)
    return shadow


def end(settings: Settings, shadow: Shadow, decision: str, reason: str, evidence=None) -> None:
    """Take the alias from the shadow (if it still has it) and record how it ended."""
    if registry.alias_version(settings, SHADOW_ALIAS) == shadow.version:
        registry.delete_alias(settings, SHADOW_ALIAS)
    measured = evidence.metrics() if evidence is not None else {}
    registry.tag_version(
        settings,
        shadow.version,
        {
            f"{TAG_PREFIX}decision": decision,
            f"{TAG_PREFIX}reason": reason[:4000],
            f"{TAG_PREFIX}labelled": evidence.n if evidence is not None else None,
            f"{TAG_PREFIX}log_loss": _tag(measured.get("shadow", {}).get("log_loss")),
            f"{TAG_PREFIX}champion_log_loss": _tag(measured.get("champion", {}).get("log_loss")),
            f"{TAG_PREFIX}decided_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )


def _tag(value: float | None) -> str | None:
    value = finite(value) if value is not None else None
    return None if value is None else f"{value:.6f}"


def _loss(outcome: int, p: float) -> float:
    p = min(max(float(p), 1e-15), 1.0 - 1e-15)
    return -math.log(p if outcome else 1.0 - p)


@dataclass
class Evidence:
    """The labelled shots both models scored, as running sums of their log losses."""

    n: int = 0
    made: int = 0
    shadow_loss: float = 0.0
    champion_loss: float = 0.0
    seen: set[str] = field(default_factory=set)
    # Labelled since the shadow began, but not scored with it beside the champion (the stream
    # had not loaded it yet, or refused it).
    others: int = 0

    def add(self, shot_id: str, outcome: int, p_shadow: float, p_champion: float) -> None:
        if shot_id in self.seen:
            return  # a label stored twice counts once
        self.seen.add(shot_id)
        self.n += 1
        self.made += int(bool(outcome))
        self.shadow_loss += _loss(outcome, p_shadow)
        self.champion_loss += _loss(outcome, p_champion)

    def metrics(self) -> dict[str, dict[str, float]]:
        """Both log losses and the base rate's (a constant at these shots' make rate).

        Example:
            >>> e = Evidence()
            >>> e.add("a", 1, 0.8, 0.5); e.add("b", 0, 0.4, 0.5)
            >>> m = e.metrics()
            >>> round(m["shadow"]["log_loss"], 4), round(m["champion"]["log_loss"], 4)
            (0.367, 0.6931)
            >>> round(m["base_rate"]["log_loss"], 4), m["base_rate"]["make_rate"]
            (0.6931, 0.5)
        """
        if not self.n:
            return {}
        rate = self.made / self.n
        base = -(rate * math.log(rate) + (1 - rate) * math.log(1 - rate)) if 0 < rate < 1 else 0.0
        return {
            "shadow": {"log_loss": self.shadow_loss / self.n, "rows": self.n},
            "champion": {"log_loss": self.champion_loss / self.n, "rows": self.n},
            "base_rate": {"log_loss": base, "make_rate": rate, "rows": self.n},
        }


def counts(doc: Mapping[str, Any], shadow: Shadow) -> bool:
    """Whether a labelled prediction is evidence about ``shadow``: scored by its champion with
    the shadow beside it, after the shadow began."""
    return (
        str(doc.get("shadow_version")) == shadow.version
        and str(doc.get("model_version")) == shadow.champion
        and isinstance(doc.get("p_shadow"), int | float)
        and isinstance(doc.get("p_champion"), int | float)
        and doc.get("outcome") in (0, 1, True, False)
        and float(doc.get("scored_at") or 0.0) >= shadow.started_at
    )


def observe(
    evidence: Evidence,
    docs: Iterable[Mapping[str, Any]],
    shadow: Shadow,
    settings: Settings | None = None,
) -> Judgement | None:
    """Add labelled predictions (in the order they were labelled) to the evidence.

    Given ``settings``, the rule is asked after every shot added, and the first verdict stops
    it: the evidence is then exactly the shots it was reached on, as if the judge had looked
    after each one, however many labels one poll reads (a judge that starts late, or polls
    slowly, still decides within ``shadow.shots``).
    """
    for doc in docs:
        if counts(doc, shadow):
            before = evidence.n
            evidence.add(doc["shot_id"], doc["outcome"], doc["p_shadow"], doc["p_champion"])
            if evidence.n == before:
                continue
        elif float(doc.get("labelled_at") or 0.0) >= shadow.started_at:
            evidence.others += 1
        else:
            continue
        if settings is not None:
            verdict = judge(shadow, evidence, settings)
            if verdict.action is not None:
                return verdict
    return None


EVIDENCE_FIELDS = {
    "_id": 0,
    "shot_id": 1,
    "outcome": 1,
    "p_champion": 1,
    "p_shadow": 1,
    "shadow_version": 1,
    "model_version": 1,
    "scored_at": 1,
    "labelled_at": 1,
}


def labelled_since(db, shadow: Shadow, limit: int | None = None) -> list[dict[str, Any]]:
    """The predictions whose outcome was stored since ``shadow`` began, in that order (a range
    on the ``outcome_stored_at`` index), at most ``limit`` of them.  Those labelled before it
    began (stored late) are among them; :func:`observe` leaves them out."""
    db[SHOTS].create_index(**OUTCOME_INDEX)
    since = read_range(
        db[SHOTS], "outcome_stored_at", shadow.started_at, EVIDENCE_FIELDS, inclusive=True
    )
    return list(itertools.islice(since, limit or None))


def gather(db, shadow: Shadow, limit: int | None = None) -> Evidence:
    """The evidence the store holds about ``shadow`` (all of it, up to ``limit`` labels)."""
    evidence = Evidence()
    observe(evidence, labelled_since(db, shadow, limit), shadow)
    return evidence


@dataclass(frozen=True)
class Judgement:
    """What the evidence says: keep waiting (``action`` None), or what to do and why."""

    action: str | None
    reason: str


def judge(shadow: Shadow, evidence: Evidence, settings: Settings) -> Judgement:
    """The rule, on the evidence so far (pure: the caller acts on it).

    Example:
        >>> from parivision.settings import Settings
        >>> shadow = Shadow("2", WATCH, "3", 0.0, 1000)
        >>> e = Evidence()
        >>> for i in range(1000):
        ...     e.add(str(i), i % 2, 0.5, 0.5 + (0.3 if i % 2 == 0 else -0.3))  # inverted
        >>> judge(shadow, e, Settings()).action
        'roll_back'
    """
    measured = evidence.metrics()
    if evidence.n < shadow.shots and evidence.others >= GIVE_UP_AFTER * max(shadow.shots, 1):
        return Judgement(
            REFUSE if shadow.role == CHALLENGER else CONFIRM,
            f"the stream scored v{shadow.version} in shadow on only {evidence.n:,} of "
            f"{evidence.n + evidence.others:,} labelled shots since the shadow began (did it "
            "refuse to load it? see the stream's log): not judged",
        )
    if not measured:
        return Judgement(None, f"no labelled shot scored by both yet (of {shadow.shots:,})")
    ll_shadow = measured["shadow"]["log_loss"]
    ll_champion = measured["champion"]["log_loss"]
    base = measured["base_rate"]["log_loss"]
    n = evidence.n
    so_far = (
        f"v{shadow.version} {ll_shadow:.4f} against champion v{shadow.champion} "
        f"{ll_champion:.4f} (base rate {base:.4f}) on {n:,} labelled shots"
    )
    if shadow.role == WATCH:
        # The champion is the new one; the shadow is the one it replaced.
        if n >= EARLY_SHOTS and ll_champion > max(ll_shadow, base) + EARLY_MARGIN:
            return Judgement(
                ROLL_BACK,
                f"live log loss of the new champion v{shadow.champion} {ll_champion:.4f} is "
                f"above the base rate's {base:.4f} and the previous champion v{shadow.version}'s "
                f"{ll_shadow:.4f} by more than {EARLY_MARGIN} after {n:,} labelled shots",
            )
        if n < shadow.shots:
            return Judgement(None, f"watching: {so_far}, of {shadow.shots:,}")
        if ll_champion > ll_shadow + settings.rollback_margin:
            return Judgement(
                ROLL_BACK,
                f"live log loss of the new champion v{shadow.champion} {ll_champion:.4f} is above "
                f"the previous champion v{shadow.version}'s {ll_shadow:.4f} by more than "
                f"{settings.rollback_margin:g} on the same {n:,} labelled shots",
            )
        if ll_champion > base:
            return Judgement(
                ROLL_BACK,
                f"live log loss of the new champion v{shadow.champion} {ll_champion:.4f} is above "
                f"the base rate's {base:.4f} on {n:,} labelled shots",
            )
        return Judgement(
            CONFIRM,
            f"live log loss of the new champion v{shadow.champion} {ll_champion:.4f} against the "
            f"previous champion v{shadow.version}'s {ll_shadow:.4f} and the base rate's "
            f"{base:.4f} on {n:,} labelled shots",
        )
    if n < shadow.shots:
        return Judgement(None, f"shadowing: {so_far}, of {shadow.shots:,}")
    if ll_shadow < ll_champion - settings.shadow_margin:
        return Judgement(
            PROMOTE,
            f"live log loss {ll_shadow:.4f} below the champion v{shadow.champion}'s "
            f"{ll_champion:.4f} on the same {n:,} labelled shots, in shadow",
        )
    return Judgement(
        REFUSE,
        f"live log loss in shadow {ll_shadow:.4f} is not below the champion "
        f"v{shadow.champion}'s {ll_champion:.4f}"
        + (f" by more than {settings.shadow_margin:g}" if settings.shadow_margin else "")
        + f" on the same {n:,} labelled shots",
    )


def progress(settings: Settings, db, shadow: Shadow | None = None) -> dict[str, Any] | None:
    """The shadow now, for ``GET /models`` and ``parivision status``: its terms, the labelled
    shots both models scored so far and their live log losses (from the store)."""
    shadow = shadow or current_shadow(settings)
    if shadow is None:
        return None
    evidence = gather(db, shadow, limit=(GIVE_UP_AFTER + 1) * max(shadow.shots, 1))
    measured = evidence.metrics()
    return {
        **shadow.describe(),
        "labelled": evidence.n,
        "live_log_loss": {side: finite(values["log_loss"]) for side, values in measured.items()},
        "verdict_so_far": judge(shadow, evidence, settings).reason,
    }
