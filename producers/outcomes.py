"""When a replay sends each shot's outcome: in game time, or after a fixed wall-clock delay.

In a game the ball is in or out a second or two of game time after the shot, long before the
shooter's next attempt.  A replay that sent every outcome a fixed two seconds of *wall* time after
its attempt made every player's next attempt, replayed a few milliseconds later at ``--max``,
wait up to two seconds for it (the stream holds an attempt until the outcome its player form
needs has arrived): the demo's latency was the replay's, not the pipeline's.

:class:`GameTimeOutcomes` sends an outcome ``delay`` game seconds after its attempt, on the
replay's own clock: as soon as an attempt of the same game ``delay`` or more game seconds later
is sent, before the same player's next attempt in any case, and at the latest ``delay / speed``
wall seconds after the attempt (``speed`` 1 at ``--max`` and ``--rate``, where the game clock has
no wall time).  So it always follows its attempt, on its own topic, and precedes the next shot
it would have preceded in the game.

:class:`WallTimeOutcomes` is the late-label drill: each outcome ``delay`` wall seconds after its
attempt, whatever comes in between (``parivision replay --outcome-delay``).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from itertools import count
from typing import Any

from producers.pacing import game_seconds

# (key, value) of an outcome message.
Message = tuple[bytes, bytes]


class WallTimeOutcomes:
    """Each outcome ``delay_s`` wall seconds after its attempt."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self._due: list[tuple[float, int, Message]] = []
        self._tie = count()

    def __len__(self) -> int:
        return len(self._due)

    def before_attempt(self, shot: Mapping[str, Any]) -> list[Message]:
        """Outcomes to send before ``shot``'s attempt: none, the delay alone decides."""
        return []

    def add(self, shot: Mapping[str, Any], message: Message, now: float) -> None:
        heapq.heappush(self._due, (now + self.delay_s, next(self._tie), message))

    def due(self, now: float) -> list[Message]:
        """Outcomes whose time has come by wall time ``now``, oldest first."""
        out = []
        while self._due and self._due[0][0] <= now:
            out.append(heapq.heappop(self._due)[2])
        return out

    def next_due(self) -> float | None:
        return self._due[0][0] if self._due else None


class GameTimeOutcomes(WallTimeOutcomes):
    """Each outcome ``delay_s`` game seconds after its attempt (see the module's text).

    Example:
        >>> outcomes = GameTimeOutcomes(delay_s=2.0)
        >>> shot = {"game_id": 1, "player_id": 7, "period": 1, "minutes_remaining": 11,
        ...         "seconds_remaining": 0}
        >>> outcomes.add(shot, (b"7", b"made"), now=0.0)
        >>> outcomes.before_attempt({**shot, "player_id": 8, "seconds_remaining": 59})
        []
        >>> outcomes.before_attempt({**shot, "player_id": 8, "minutes_remaining": 10})
        [(b'7', b'made')]
    """

    def __init__(self, delay_s: float, speed: float = 1.0) -> None:
        super().__init__(delay_s / speed)
        self.game_delay_s = delay_s
        self._by_player: dict[Any, int] = {}
        self._by_game: dict[Any, list[tuple[float, int]]] = {}
        self._messages: dict[int, Message] = {}
        self._calls = 0

    def __len__(self) -> int:
        return len(self._messages)

    def before_attempt(self, shot: Mapping[str, Any]) -> list[Message]:
        out = []
        mine = self._by_player.pop(shot["player_id"], None)
        if mine is not None:
            out += self._take(mine)
        game = self._by_game.get(shot["game_id"])
        if game:
            # The whole game's pending list, not only its front: rows of a game are in event
            # order, and the clock of a few runs backwards.  Few wait at once (those of the
            # last couple of game seconds), so the scan is short.
            now, kept = game_seconds(shot), []
            for at, ticket in game:
                if ticket not in self._messages:
                    continue
                if at + self.game_delay_s <= now:
                    out += self._take(ticket)
                else:
                    kept.append((at, ticket))
            if kept:
                self._by_game[shot["game_id"]] = kept
            else:
                del self._by_game[shot["game_id"]]
        return out

    def add(self, shot: Mapping[str, Any], message: Message, now: float) -> None:
        ticket = next(self._tie)
        self._messages[ticket] = message
        self._by_player[shot["player_id"]] = ticket
        self._by_game.setdefault(shot["game_id"], []).append((game_seconds(shot), ticket))
        heapq.heappush(self._due, (now + self.delay_s, ticket, message))

    def due(self, now: float) -> list[Message]:
        out = []
        while self._due and self._due[0][0] <= now:
            out += self._take(heapq.heappop(self._due)[1])
        self._calls += 1
        if self._calls % 4096 == 0:
            self._forget_sent()
        return out

    def next_due(self) -> float | None:
        # Entries already sent on the game clock are skipped lazily.
        while self._due and self._due[0][1] not in self._messages:
            heapq.heappop(self._due)
        return self._due[0][0] if self._due else None

    def _take(self, ticket: int) -> list[Message]:
        """The outcome of ``ticket`` if it has not been sent yet (each one is taken once)."""
        message = self._messages.pop(ticket, None)
        return [] if message is None else [message]

    def _forget_sent(self) -> None:
        """Drop what was sent by another rule from the game and player indexes, so a long replay
        keeps only what is still pending (a finished game gets no attempt to clear it)."""
        pending = self._messages
        for game in list(self._by_game):
            left = [item for item in self._by_game[game] if item[1] in pending]
            if left:
                self._by_game[game] = left
            else:
                del self._by_game[game]
        self._by_player = {p: t for p, t in self._by_player.items() if t in pending}


class Outbox:
    """Outcomes whose time has come, sent together once the oldest has waited ``hold_s``, and
    at once before an attempt of a player whose outcome waits here.

    librdkafka sends one produce request a partition (its requests never carry two), so at a
    few hundred shots a second each outcome went to the broker alone, as did each attempt: two
    requests a shot, ~0.5 ms of the broker's CPU each (``bench/kafka_cpu.py``).  Attempts must
    go at once (the stream's latency is measured from them); an outcome can wait a few tens of
    milliseconds, so the ones due within ``hold_s`` share a request a partition.  It never
    waits past its player's next attempt: the stream holds that attempt until the outcome its
    player form needs is in.

    Example:
        >>> box = Outbox(hold_s=0.05)
        >>> box.put([(b"7", b"made")], now=0.0)
        >>> box.take(now=0.01), box.take(now=0.01, before=b"8")
        ([], [])
        >>> box.take(now=0.01, before=b"7")
        [(b'7', b'made')]
        >>> box.put([(b"8", b"missed"), (b"9", b"made")], now=1.0)
        >>> box.take(now=1.06)
        [(b'8', b'missed'), (b'9', b'made')]
        >>> len(box)
        0
    """

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self._messages: list[Message] = []
        self._keys: set[bytes] = set()
        self._since = 0.0

    def __len__(self) -> int:
        return len(self._messages)

    def put(self, messages: list[Message], now: float) -> None:
        if messages and not self._messages:
            self._since = now
        for message in messages:
            self._messages.append(message)
            self._keys.add(message[0])

    def take(self, now: float, *, before: bytes | None = None) -> list[Message]:
        """What to send now: everything held when the oldest has waited ``hold_s``, or when
        ``before`` (the key of the attempt about to be sent) has an outcome held; else none."""
        if not self._messages:
            return []
        if now - self._since < self.hold_s and before not in self._keys:
            return []
        return self.take_all()

    def take_all(self) -> list[Message]:
        messages, self._messages = self._messages, []
        self._keys.clear()
        return messages
