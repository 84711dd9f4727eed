"""Summary tables behind :mod:`parivision.sources.synthetic`, computed once from the real
``nba_shots.csv``.

Only aggregates are kept (shares, make rates, quantiles), never rows.  They came from the
232,410 rows of ``../shared/data/nba_shots.csv`` with a one-off pandas script:

- ``ZONE_SHARES``: share of attempts per Shot Zone Basic (all rows).
- ``ACTIONS``: per zone, the action types with at least 1% of that zone's attempts, as
  ``(action, share within the kept ones, make rate)``.  Each zone's rates carry one small logit
  shift so the zone's overall make rate equals the real one despite the dropped rare actions.
- ``DISTANCE_QUANTILES`` / ``ANGLE_QUANTILES``: the 0, 5, ..., 100th percentiles of the
  distance from the hoop (tenths of a foot) and of the angle (degrees, 0 straight out,
  negative to the left) per zone, from the 2017-18 and 2018-19 rows, whose locations are
  exact (older Kobe Bryant rows often sit at X = Y = 0).
- ``SHOTS_PER_GAME``, ``OVERTIME_SHARE``, ``PLAYERS_PER_TEAM_GAME``: 2018-19 regular season.
- ``TEAMS``: the 30 franchises of 2018-19 as ``(team id, name, abbreviation)``.
"""

from __future__ import annotations

__all__ = [
    "ACTIONS",
    "ANGLE_QUANTILES",
    "DISTANCE_QUANTILES",
    "OVERTIME_SHARE",
    "PLAYERS_PER_TEAM_GAME",
    "SHOTS_PER_GAME",
    "TEAMS",
    "ZONE_SHARES",
]

SHOTS_PER_GAME = (178.1, 11.6)  # mean, standard deviation
OVERTIME_SHARE = 0.054  # games going to a fifth period
PLAYERS_PER_TEAM_GAME = (7, 13)  # fewest and most players with an attempt (mean 10.2)

ZONE_SHARES: dict[str, float] = {
    "Restricted Area": 0.3182,
    "Above the Break 3": 0.2614,
    "Mid-Range": 0.1838,
    "In The Paint (Non-RA)": 0.1602,
    "Left Corner 3": 0.0381,
    "Right Corner 3": 0.0363,
    "Backcourt": 0.0021,
}

ACTIONS: dict[str, tuple[tuple[str, float, float], ...]] = {
    "Restricted Area": (  # real make rate 0.629; top actions cover 90%
        ("Driving Layup Shot", 0.2716, 0.547),
        ("Layup Shot", 0.1733, 0.483),
        ("Cutting Layup Shot", 0.0701, 0.742),
        ("Tip Layup Shot", 0.0682, 0.485),
        ("Running Layup Shot", 0.0621, 0.671),
        ("Driving Finger Roll Layup Shot", 0.0525, 0.686),
        ("Cutting Dunk Shot", 0.0456, 0.947),
        ("Putback Layup Shot", 0.0369, 0.694),
        ("Dunk Shot", 0.0366, 0.869),
        ("Driving Reverse Layup Shot", 0.0313, 0.606),
        ("Driving Dunk Shot", 0.0310, 0.862),
        ("Reverse Layup Shot", 0.0291, 0.616),
        ("Alley Oop Dunk Shot", 0.0270, 0.895),
        ("Running Dunk Shot", 0.0244, 0.958),
        ("Alley Oop Layup shot", 0.0154, 0.657),
        ("Hook Shot", 0.0137, 0.528),
        ("Driving Floating Jump Shot", 0.0112, 0.444),
    ),
    "Above the Break 3": (  # real make rate 0.347; top actions cover 99%
        ("Jump Shot", 0.7980, 0.340),
        ("Pullup Jump shot", 0.1307, 0.364),
        ("Step Back Jump shot", 0.0485, 0.396),
        ("Running Jump Shot", 0.0115, 0.413),
        ("Running Pull-Up Jump Shot", 0.0112, 0.387),
    ),
    "Mid-Range": (  # real make rate 0.404; top actions cover 95%
        ("Jump Shot", 0.4511, 0.359),
        ("Pullup Jump shot", 0.2847, 0.445),
        ("Step Back Jump shot", 0.0830, 0.437),
        ("Fadeaway Jump Shot", 0.0607, 0.445),
        ("Turnaround Jump Shot", 0.0454, 0.440),
        ("Turnaround Fadeaway shot", 0.0394, 0.454),
        ("Driving Floating Jump Shot", 0.0198, 0.385),
        ("Floating Jump shot", 0.0160, 0.388),
    ),
    "In The Paint (Non-RA)": (  # real make rate 0.409; top actions cover 95%
        ("Jump Shot", 0.1555, 0.294),
        ("Driving Floating Jump Shot", 0.1501, 0.439),
        ("Floating Jump shot", 0.1058, 0.446),
        ("Pullup Jump shot", 0.0880, 0.466),
        ("Driving Layup Shot", 0.0763, 0.243),
        ("Hook Shot", 0.0721, 0.436),
        ("Turnaround Jump Shot", 0.0559, 0.452),
        ("Turnaround Hook Shot", 0.0533, 0.485),
        ("Fadeaway Jump Shot", 0.0448, 0.442),
        ("Layup Shot", 0.0446, 0.218),
        ("Driving Floating Bank Jump Shot", 0.0357, 0.535),
        ("Turnaround Fadeaway shot", 0.0328, 0.494),
        ("Driving Hook Shot", 0.0272, 0.457),
        ("Running Jump Shot", 0.0202, 0.602),
        ("Step Back Jump shot", 0.0140, 0.454),
        ("Jump Bank Shot", 0.0118, 0.616),
        ("Driving Finger Roll Layup Shot", 0.0118, 0.456),
    ),
    "Left Corner 3": (  # real make rate 0.387; top actions cover 99%
        ("Jump Shot", 0.9357, 0.382),
        ("Step Back Jump shot", 0.0359, 0.385),
        ("Pullup Jump shot", 0.0178, 0.482),
        ("Running Jump Shot", 0.0106, 0.614),
    ),
    "Right Corner 3": (  # real make rate 0.375; top actions cover 98%
        ("Jump Shot", 0.9480, 0.375),
        ("Step Back Jump shot", 0.0332, 0.350),
        ("Pullup Jump shot", 0.0188, 0.456),
    ),
    "Backcourt": (  # real make rate 0.028; top actions cover 94%
        ("Jump Shot", 0.6867, 0.004),
        ("Running Jump Shot", 0.1931, 0.030),
        ("Pullup Jump shot", 0.1202, 0.163),
    ),
}

# fmt: off
DISTANCE_QUANTILES: dict[str, tuple[int, ...]] = {
    "Restricted Area": (
        0, 4, 6, 6, 7, 9, 10, 12, 13, 14, 16, 17, 18, 20, 21, 23, 25, 28, 31, 35, 40
    ),
    "Above the Break 3": (
        238, 245, 247, 249, 250, 252, 253, 254, 255, 256, 257, 259, 260, 262, 263, 266, 268,
        271, 276, 285, 467
    ),
    "Mid-Range": (
        81, 101, 114, 126, 136, 144, 150, 156, 160, 165, 170, 174, 179, 184, 189, 193, 198, 203,
        209, 218, 237
    ),
    "In The Paint (Non-RA)": (
        40, 43, 46, 49, 53, 56, 60, 64, 68, 71, 75, 79, 84, 90, 96, 103, 110, 118, 126, 135, 159
    ),
    "Left Corner 3": (
        220, 223, 225, 226, 227, 228, 228, 229, 230, 231, 231, 232, 233, 234, 234, 236, 237,
        238, 240, 243, 259
    ),
    "Right Corner 3": (
        220, 224, 226, 227, 228, 229, 230, 230, 231, 232, 232, 233, 234, 235, 236, 237, 238,
        240, 242, 244, 261
    ),
    "Backcourt": (
        421, 438, 455, 464, 473, 479, 488, 498, 508, 520, 532, 552, 567, 586, 601, 619, 646,
        673, 699, 746, 887
    ),
}
# fmt: on

# fmt: off
ANGLE_QUANTILES: dict[str, tuple[int, ...]] = {
    "Restricted Area": (
        -176, -85, -67, -55, -44, -32, -22, -13, -5, 0, 7, 15, 24, 33, 43, 52, 63, 75, 104, 180,
        180
    ),
    "Above the Break 3": (
        -70, -53, -45, -39, -35, -30, -26, -21, -14, -6, -1, 5, 13, 19, 24, 29, 33, 38, 43, 53,
        70
    ),
    "Mid-Range": (
        -107, -85, -75, -64, -52, -43, -34, -26, -15, -5, 1, 7, 17, 26, 34, 42, 51, 63, 75, 85,
        110
    ),
    "In The Paint (Non-RA)": (
        -143, -65, -49, -37, -29, -23, -17, -11, -6, -2, 1, 4, 8, 14, 20, 26, 32, 40, 52, 67,
        135
    ),
    "Left Corner 3": (
        -100, -94, -93, -92, -91, -90, -90, -89, -88, -87, -86, -86, -85, -84, -83, -82, -80,
        -78, -76, -73, -69
    ),
    "Right Corner 3": (
        69, 72, 74, 76, 77, 78, 80, 81, 82, 83, 84, 85, 86, 86, 87, 88, 89, 90, 91, 92, 99
    ),
    "Backcourt": (
        -27, -21, -19, -17, -14, -10, -7, -3, -1, -1, 0, 1, 3, 5, 9, 12, 14, 17, 19, 21, 26
    ),
}
# fmt: on

TEAMS: tuple[tuple[int, str, str], ...] = (
    (1610612737, "Atlanta Hawks", "ATL"),
    (1610612738, "Boston Celtics", "BOS"),
    (1610612739, "Cleveland Cavaliers", "CLE"),
    (1610612740, "New Orleans Pelicans", "NOP"),
    (1610612741, "Chicago Bulls", "CHI"),
    (1610612742, "Dallas Mavericks", "DAL"),
    (1610612743, "Denver Nuggets", "DEN"),
    (1610612744, "Golden State Warriors", "GSW"),
    (1610612745, "Houston Rockets", "HOU"),
    (1610612746, "LA Clippers", "LAC"),
    (1610612747, "Los Angeles Lakers", "LAL"),
    (1610612748, "Miami Heat", "MIA"),
    (1610612749, "Milwaukee Bucks", "MIL"),
    (1610612750, "Minnesota Timberwolves", "MIN"),
    (1610612751, "Brooklyn Nets", "BKN"),
    (1610612752, "New York Knicks", "NYK"),
    (1610612753, "Orlando Magic", "ORL"),
    (1610612754, "Indiana Pacers", "IND"),
    (1610612755, "Philadelphia 76ers", "PHI"),
    (1610612756, "Phoenix Suns", "PHX"),
    (1610612757, "Portland Trail Blazers", "POR"),
    (1610612758, "Sacramento Kings", "SAC"),
    (1610612759, "San Antonio Spurs", "SAS"),
    (1610612760, "Oklahoma City Thunder", "OKC"),
    (1610612761, "Toronto Raptors", "TOR"),
    (1610612762, "Utah Jazz", "UTA"),
    (1610612763, "Memphis Grizzlies", "MEM"),
    (1610612764, "Washington Wizards", "WAS"),
    (1610612765, "Detroit Pistons", "DET"),
    (1610612766, "Charlotte Hornets", "CHA"),
)
