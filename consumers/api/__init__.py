"""The live API: REST predictions and history, the WebSocket feed and the court page."""

from consumers.api.app import create_app

__all__ = ["create_app"]
