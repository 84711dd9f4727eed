"""The sink's MongoDB client: a server that is away fails a write in seconds, so the runner's
retries (logged, counted, stoppable) take over instead of one write blocking through an outage."""

from __future__ import annotations

from consumers.mongo_sink import SERVER_SELECTION_TIMEOUT_MS, connect


def test_the_sink_gives_up_on_an_unreachable_server_in_seconds():
    client = connect("mongodb://127.0.0.1:27027/?journal=true")  # lazy: connects to nothing
    try:
        assert client.options.server_selection_timeout == SERVER_SELECTION_TIMEOUT_MS / 1000
        assert client.options.server_selection_timeout < 30  # pymongo's default
    finally:
        client.close()


def test_a_timeout_in_the_uri_wins():
    client = connect("mongodb://127.0.0.1:27027/?serverSelectionTimeoutMS=900")
    try:
        assert client.options.server_selection_timeout == 0.9
    finally:
        client.close()
