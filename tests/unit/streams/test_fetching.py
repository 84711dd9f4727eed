"""streams.fetching on a real Faust app: the aiokafka consumer its consumer thread creates asks
the broker to wait for records.  It reaches into Faust's private consumer thread, so this is
what says so when a Faust upgrade moves it; the worker's integration tests run it on a broker."""

from __future__ import annotations

import asyncio

import faust
import pytest

from streams import fetching


def _app() -> faust.App:
    return faust.App("fetching-test", broker="kafka://127.0.0.1:1", web_enabled=False)


def _created(app: faust.App):
    """The aiokafka consumer the app's consumer thread creates (inside a loop, as it does)."""

    async def create():
        return app.consumer._thread._create_worker_consumer(app.transport)

    return asyncio.run(create())


@pytest.mark.parametrize("wait_ms", [10, 40])
def test_the_worker_s_fetches_wait_for_records_up_to_the_setting(wait_ms):
    app = _app()
    fetching.wait_for_records(app.consumer, wait_ms)
    client = _created(app)
    assert (client._fetch_max_wait_ms, client._fetch_min_bytes) == (wait_ms, fetching.MIN_BYTES)


def test_zero_keeps_faust_s_fetches_that_return_at_the_first_record():
    app = _app()
    fetching.wait_for_records(app.consumer, 0)
    client = _created(app)
    assert client._fetch_min_bytes == 1 and client._fetch_max_wait_ms == 1500
