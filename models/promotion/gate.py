"""The two checks a recent window cannot fool: that it covers the league, and that the challenger
is not worse than the champion on the champion's own validation window.

Beating the champion on the recent window is not enough.  A deployment that replayed 20,000
shots of one player had its retrain loop train on them, beat the champion on 2,000 more of that
player's shots, and promote a model that was worse than a coin flip on the league's.  So:

- a recent window from too few distinct players, teams or games (``promotion_min_*``) makes the
  challenge wait, and says why (:func:`coverage_problem`);
- the challenger is also measured on a fixed reference set, the champion's validation window
  logged with it (:func:`models.reference.validation_set`), and refused when its log loss there
  is more than ``promotion_reference_margin`` above the champion's, or its calibration worse
  (:func:`reference_verdict`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from models.metrics import score
from models.promotion.decision import Verdict, chance_calibration_error
from models.reference import ValidationSet
from parivision.settings import Settings

DEFAULT_REFERENCE_MARGIN = 0.001


def coverage_problem(coverage: Mapping[str, int], settings: Settings) -> str | None:
    """Why a recent window is too narrow to judge a challenger on, or None when it is not.

    Example:
        >>> from parivision.settings import Settings
        >>> coverage_problem({"players": 1, "teams": 1, "games": 96}, Settings())
        'the recent window does not cover the league: 1 player (at least 30), 1 team (at least 6)'
        >>> coverage_problem({"players": 203, "teams": 20, "games": 12}, Settings()) is None
        True
    """
    short = []
    for name, least in (
        ("player", settings.promotion_min_players),
        ("team", settings.promotion_min_teams),
        ("game", settings.promotion_min_games),
    ):
        found = int(coverage.get(f"{name}s", 0))
        if found < least:
            short.append(f"{found:,} {name}{'' if found == 1 else 's'} (at least {least:,})")
    if not short:
        return None
    return "the recent window does not cover the league: " + ", ".join(short)


def measure_reference(reference: ValidationSet, champion, challenger) -> dict[str, dict]:
    """Both models' metrics on the reference set (each a :class:`models.registry.Champion`)."""
    out = {}
    for side, model in (("champion", champion), ("challenger", challenger)):
        out[side] = {
            **score(reference.outcomes, model.predict(reference.features)),
            "rows": reference.rows,
        }
    return out


def reference_verdict(
    champion: Mapping[str, float],
    challenger: Mapping[str, float],
    margin: float = DEFAULT_REFERENCE_MARGIN,
    calibration_margin: float = 0.01,
) -> Verdict:
    """Whether the challenger is no worse than the champion on the champion's reference set.

    Not worse, rather than better: the challenger learned from newer shots than these, and
    the champion's own calibration was fitted on them, so the champion has the advantage here.
    What this catches is a challenger that lost the league while learning a narrow window.

    Example:
        >>> champion = {"log_loss": 0.632, "ece": 0.008, "rows": 20_000}
        >>> reference_verdict(champion, {"log_loss": 0.6325, "ece": 0.010, "rows": 20_000}).promote
        True
        >>> worse = reference_verdict(champion, {"log_loss": 0.703, "ece": 0.06, "rows": 20_000})
        >>> worse.promote, worse.reason[-66:]
        (False, "log loss 0.7030 is above the champion's 0.6320 by more than 0.0010")
    """
    ll_champion, ll_challenger = champion["log_loss"], challenger["log_loss"]
    if not (math.isfinite(ll_champion) and math.isfinite(ll_challenger)):
        return Verdict(False, "a log loss on the champion's validation window is undefined")
    if ll_challenger > ll_champion + margin + 1e-12:
        return Verdict(
            False,
            f"on the champion's validation window its log loss {ll_challenger:.4f} is above the "
            f"champion's {ll_champion:.4f} by more than {margin:.4f}",
        )
    ece_champion, ece_challenger = champion.get("ece"), challenger.get("ece")
    if ece_champion is not None and ece_challenger is not None and math.isfinite(ece_champion):
        rows = int(challenger.get("rows") or 0)
        allowed = max(calibration_margin, chance_calibration_error(rows) if rows else 0.0)
        if not ece_challenger <= ece_champion + allowed + 1e-12:
            return Verdict(
                False,
                f"on the champion's validation window its calibration error {ece_challenger:.4f} "
                f"is worse than the champion's {ece_champion:.4f} by more than {allowed:.4f}",
            )
    return Verdict(
        True,
        f"on the champion's validation window log loss {ll_challenger:.4f} vs {ll_champion:.4f}",
    )
