"""The retrain request: a file that asks a running retrain loop to retrain at its next poll.

``parivision retrain-loop --request`` writes it in the deployment's home; the loop
(:mod:`consumers.retrain_trigger`) takes it, removing it, so a request retrains once.
"""

from __future__ import annotations

from pathlib import Path

from models.drift import MANUAL
from parivision.settings import Settings

REQUEST_FILE = "retrain.request"


def request_retrain(settings: Settings, reason: str = MANUAL) -> Path:
    """Ask a running loop to retrain at its next poll (a file it picks up and removes)."""
    path = settings.deployment_home() / REQUEST_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(reason)
    return path


def take_request(settings: Settings) -> str | None:
    """The reason of the request waiting, if one is, and remove it (it retrains once)."""
    path = settings.deployment_home() / REQUEST_FILE
    try:
        reason = path.read_text().strip() or MANUAL
        path.unlink()
    except FileNotFoundError:
        return None
    return reason
