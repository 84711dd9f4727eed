"""What the retraining tests share: the CLI run as a user runs it, a league champion trained
with ``parivision train``, and the truth every decision is checked against (league shots no
model here learned from, scored with a log loss written out here, not the project's)."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from models import registry
from parivision.cli import app
from parivision.cli.processes import _child_env
from parivision.sources.base import Source

LEAGUE = ("20181101", "20181130")  # what the champions learn: every team, a month
UNSEEN = (20190201, 20190327)  # league shots no model here learned from: the truth


class Shots(Source):
    """Replayable shots from a list (a slice of a real file)."""

    def __init__(self, items, name):
        self.items, self.name = items, name

    def __iter__(self):
        return iter(self.items)


def cli(settings, services, *args) -> str:
    """Run a ``parivision`` command with this test's settings; its last line."""
    endpoints, _ = services
    result = CliRunner().invoke(app, list(args), env=_child_env(settings, endpoints))
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def train_league_champion(settings, services, nba_csv) -> str:
    """`parivision train` as a user runs it: the league's November 2018, recorded as such."""
    last = cli(
        settings,
        services,
        "train",
        "--data",
        str(nba_csv),
        "--since",
        LEAGUE[0],
        "--until",
        LEAGUE[1],
        "--candidate",
        "lightgbm",
        "--champion",
    )
    assert last.startswith(f"registered {settings.registered_model()} v") and "as champion" in last
    return registry.champion_version(settings)


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def on_unseen_league_shots(settings, shots_frame, *versions) -> dict[str, float]:
    """Each version's log loss on league shots none of them learned from, player form carried
    from every earlier shot in the file, as the stream would carry it."""
    from models.features import build_features

    frame = shots_frame[shots_frame["game_date"] <= UNSEEN[1]]
    matrix = build_features(frame)
    later = (frame["game_date"] >= UNSEEN[0]).to_numpy()
    x, y = matrix[later], frame["made"].to_numpy()[later]
    return {v: log_loss(y, registry.load_version(settings, v).predict(x)) for v in versions}
