"""``WS /ws/live``: one WebSocket client served from the :class:`~consumers.api.live_hub.Hub`.

Each client has its own sender task, so a client that reads nothing blocks only its own task; it
is told how many messages it missed when it reads again, and closed (code 1008, with the reason)
once it has missed ``max_missed`` in a row.

What a client sends is read only if it is a text frame of at most :data:`MAX_FRAME` bytes (a
filter is a few dozen); anything else is answered with an error and the connection stays open.
A filter naming an unknown team or player is answered with an error naming the nearest ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from fastapi import WebSocket
from pymongo.errors import PyMongoError

from consumers.api.live_filter import Filter
from consumers.api.live_hub import Client, Hub
from consumers.api.names import PlayerDirectory, UnknownName

log = logging.getLogger("parivision.api.live")

# The largest text frame a client's message is read from; filters are far smaller.
MAX_FRAME = 4096
FILTER_HELP = 'send {"filter": {...}} to choose what to receive'


async def serve_client(
    websocket: WebSocket, hub: Hub, players: PlayerDirectory | None = None
) -> None:
    """Run one WebSocket client until it leaves or is too slow; ``players`` looks up the
    player names its filters use."""
    await websocket.accept()
    client = hub.connect()
    await _send(websocket, {"type": "hello", "filter": {}, "queue": hub.queue_size})
    sender = asyncio.create_task(_pump(websocket, client))
    receiver = asyncio.create_task(_listen(websocket, client, players))
    slow = asyncio.create_task(client.too_slow.wait())
    try:
        done, _ = await asyncio.wait({sender, receiver, slow}, return_when=asyncio.FIRST_COMPLETED)
        if slow in done:
            reason = client.slow_reason
            log.warning("closing a live client: %s", reason)
            hub.closed_slow += 1
            sender.cancel()
            # The close frame waits behind what the client has not read; a client that
            # never reads never gets it, and the connection is dropped after the timeout.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(code=1008, reason=reason), timeout=10.0)
    finally:
        hub.disconnect(client)
        for task in (sender, receiver, slow):
            task.cancel()
        await asyncio.gather(sender, receiver, slow, return_exceptions=True)


async def _send(websocket: WebSocket, message: dict[str, Any]) -> None:
    await websocket.send_text(orjson.dumps(message).decode())


async def _pump(websocket: WebSocket, client: Client) -> None:
    while True:
        encoded = await client.queue.get()
        if client.missed:
            missed, client.missed = client.missed, 0
            await _send(
                websocket, {"type": "missed", "count": missed, "total": client.total_missed}
            )
        await websocket.send_text(encoded.decode())
        client.sent += 1


async def _listen(websocket: WebSocket, client: Client, players: PlayerDirectory | None) -> None:
    while True:
        frame = await websocket.receive()
        if frame["type"] == "websocket.disconnect":
            return
        text = frame.get("text")
        if text is None:
            await _error(websocket, f"binary frames are not read: {FILTER_HELP} as JSON text")
            continue
        if len(text) > MAX_FRAME or len(text.encode()) > MAX_FRAME:
            await _error(
                websocket,
                f"message of {len(text):,} characters not read: the limit is {MAX_FRAME:,} "
                f"bytes; {FILTER_HELP}",
            )
            continue
        try:
            request = orjson.loads(text)
            if not isinstance(request, dict) or "filter" not in request:
                raise ValueError(FILTER_HELP)
            # A player name may need the store: looked up off the event loop.
            client.filter = await asyncio.to_thread(Filter, request["filter"], players)
        except UnknownName as error:
            await _error(websocket, str(error), nearest=error.nearest)
            continue
        except PyMongoError as error:
            await _error(websocket, f"player names cannot be looked up now: {error}"[:300])
            continue
        except (ValueError, orjson.JSONDecodeError) as error:
            await _error(websocket, str(error))
            continue
        # Messages queued under the old filter are dropped: the client asked for other ones.
        while not client.queue.empty():
            client.queue.get_nowait()
        await _send(websocket, {"type": "filter", "filter": client.filter.as_dict()})


async def _error(websocket: WebSocket, msg: str, **extra: Any) -> None:
    await _send(websocket, {"type": "error", "msg": msg, **extra})
