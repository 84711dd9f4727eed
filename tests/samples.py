"""A valid shot attempt (a real one: Curry's first shot of 2018-19) for tests to start from."""

GOOD_SHOT = {
    "shot_id": "21800001-7",
    "game_id": 21800001,
    "game_event_id": 7,
    "player_id": 201939,
    "player_name": "Stephen Curry",
    "period": 1,
    "minutes_remaining": 11,
    "seconds_remaining": 2,
    "action_type": "Jump Shot",
    "shot_type": "3PT Field Goal",
    "shot_zone_basic": "Above the Break 3",
    "shot_zone_area": "Center(C)",
    "shot_zone_range": "24+ ft.",
    "shot_distance": 26,
    "x": 10,
    "y": 258,
    "game_date": 20181016,
}
