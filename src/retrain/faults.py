"""Crash points for the kill tests: RETRAIN_KILL_AT=<point> kills this process group there.

A point is `write:<path>` after a file is written, `<command>:<step>` inside promote and
rollback, or `partition:<i>` where a Dask worker reads the i-th partition of a file. Unset
(always, outside tests), a checkpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import time

ENV = "RETRAIN_KILL_AT"
PAUSE = "RETRAIN_PAUSE_AT"
RESUME = "RETRAIN_RESUME_FILE"


def checkpoint(point: str) -> None:
    """SIGKILL the whole process group (as when a CI runner dies) if `point` is the one set;
    wait there if RETRAIN_PAUSE_AT is `point:seconds`: that long, or until the file named by
    RETRAIN_RESUME_FILE exists, whichever comes first."""
    if os.environ.get(ENV) == point:
        os.killpg(os.getpgrp(), signal.SIGKILL)
    where, _, seconds = os.environ.get(PAUSE, "").rpartition(":")
    if where == point:
        resume = os.environ.get(RESUME)
        deadline = time.monotonic() + float(seconds)
        while time.monotonic() < deadline and not (resume and os.path.exists(resume)):
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
