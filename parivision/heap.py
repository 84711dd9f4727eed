"""Keeping the garbage collector's full passes short in the long-running processes.

A process of ours imports Faust or FastAPI, MLflow, scikit-learn, LightGBM, SciPy and River, and
loads a champion: about 300,000 objects before it handles its first record.  Python's full
collection walks every one of them, with everything else stopped: 130 ms here, and it comes
again each time the objects made since have grown by a quarter.  In the stream worker at 250
shots a second that was about sixty shots in a row delayed by the same pause, the largest part of
the scored p99 of a demo after its first second.

:func:`freeze_startup_objects` moves what exists at start-up out of the collector's reach
(``gc.freeze``): the passes then walk only what was made since.  None of it is garbage, and none
of it would be freed before the process ends.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> int:
    """Collect once, then leave every object that exists now out of later collections; return
    how many were frozen.  Call it once a process has loaded what it keeps for its lifetime."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
