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


def checkpoint(point: str) -> None:
    """SIGKILL the whole process group (as when a CI runner dies) if `point` is the one set;
    sleep there if RETRAIN_PAUSE_AT is `point:seconds`."""
    if os.environ.get(ENV) == point:
        os.killpg(os.getpgrp(), signal.SIGKILL)
    where, _, seconds = os.environ.get(PAUSE, "").rpartition(":")
    if where == point:
        time.sleep(float(seconds))
