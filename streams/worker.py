"""Running the worker in this process, and stopping it within :data:`STOP_TIMEOUT_S` of being told
to, whether or not its broker answers."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import faust

from parivision.heap import freeze_startup_objects
from streams import transactions

log = logging.getLogger("parivision.stream")

# A worker told to stop (SIGINT/SIGTERM) that has not stopped after this long exits anyway.
STOP_TIMEOUT_S = 30.0


def _exit_unless_stopped(app: faust.App, timeout: float) -> None:
    """Exit the process ``timeout`` seconds from now if it is still running then.

    Faust's consumer waits without end for a broker that is gone before it stops (a worker
    told to stop after the broker went away ran on for minutes).  Nothing is lost by exiting
    instead: the batch in hand was not acknowledged, so the next worker reads it again; the
    learners resume from their last checkpoint."""

    def watch() -> None:
        time.sleep(timeout)
        log.error(
            "the worker did not stop within %.0f s of being told to (does the broker at %s "
            "answer?); exiting without the rest of its shutdown: the next worker reads its last "
            "batch again",
            timeout,
            app.conf.broker[0] if app.conf.broker else "?",
        )
        logging.shutdown()
        os._exit(1)

    threading.Thread(target=watch, name="stop-deadline", daemon=True).start()


def run_worker(app: faust.App, *, loglevel: str = "info") -> None:
    """Run the worker in this process until it is stopped (SIGINT/SIGTERM), within
    :data:`STOP_TIMEOUT_S` of the signal."""
    from faust.worker import Worker

    class BoundedWorker(Worker):
        def _schedule_shutdown(self, signum: Any) -> None:
            if not self._signal_stop_time:
                _exit_unless_stopped(app, STOP_TIMEOUT_S)
            super()._schedule_shutdown(signum)

    if isinstance(app.output, transactions.TransactionalOutput):
        app.output.start()
    worker = BoundedWorker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    freeze_startup_objects()
    worker.execute_from_commandline()
