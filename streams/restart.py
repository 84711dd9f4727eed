"""A worker whose tables are ahead of what Kafka holds restarts itself in place: the same
process, a fresh start that recovers the committed state (:mod:`streams.transactions`)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from typing import Any

from confluent_kafka import KafkaException

# The transactions' logger: the restart is theirs to tell.
log = logging.getLogger("parivision.stream.transactions")

# A worker about to restart asks the broker whether it is back this often (and waits this long
# for an answer).
REACHABLE_PROBE_S = 2.0


def restart_in_place(why: str, *, once_reachable: str | None = None) -> None:
    """Restart this worker in place (never returns): the same process (pid, log, slot, and so
    transactional.id), a fresh start.

    Its tables already hold a batch that Kafka does not: carrying on would score the next shots
    from state no restart could rebuild.  A fresh start aborts the transaction left open,
    recovers the tables from what was committed and reads that batch again, as a supervisor
    restarting it would, without one.  A ``stream --workers N`` parent comes back as one
    worker: its other workers run on, and still end with it.

    ``once_reachable`` (a bootstrap address): first wait until Kafka there answers, blocking
    this process, which does nothing else meanwhile.  A worker started while its broker is down
    exits at once, saying so (the watchdog once fired 40 s into a 47 s outage, and the worker
    it started was gone before the broker came back)."""
    argv = _without_workers([sys.executable, *sys.orig_argv[1:]])
    if once_reachable is not None:
        _wait_until_reachable(once_reachable, why)
    log.error("the worker restarts in place (pid %d): %s", os.getpid(), why)
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


def _wait_until_reachable(bootstrap: str, why: str) -> None:
    """Block until Kafka at ``bootstrap`` answers.  The event loop is blocked too, so a stop
    signal meanwhile ends the process here: nothing it holds is worth keeping (its open
    transaction is aborted by the broker, or by the next worker in its slot)."""
    from confluent_kafka.admin import AdminClient

    def stop_now(signum: int, _frame: Any) -> None:
        log.warning("stopped (signal %d) while waiting for Kafka to restart in place", signum)
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop_now)
    signal.signal(signal.SIGINT, stop_now)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    waited = False
    while True:
        try:
            admin.list_topics(timeout=REACHABLE_PROBE_S)
            return
        except KafkaException:
            if not waited:
                log.error(
                    "the worker will restart in place once Kafka at %s answers (%s)",
                    bootstrap,
                    why,
                )
                waited = True
            time.sleep(REACHABLE_PROBE_S)


def _without_workers(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out
