"""Logging for stages and commands: one format, the level set by RETRAIN_LOG_LEVEL or --log-level."""

from __future__ import annotations

import functools
import gc
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from retrain.errors import DataError
from retrain.execution import c_library, limited_threads, mmap_threshold_bytes

ENV = "RETRAIN_LOG_LEVEL"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        name = record.name.removeprefix("retrain.")
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return f"{name}: {level}{record.getMessage()}"


def logged(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Set up logging for stage `name` and log how long its main took. Once it is done, what the
    stage built is left out of garbage collection (`gc.freeze`): the process is about to exit,
    and collecting a million-row stage's objects at exit took up to half a second. BLAS and
    OpenMP threads are limited to RETRAIN_THREADS (execution.limited_threads) while it runs.
    A stage takes no arguments (`refuse_arguments`)."""

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            refuse_arguments(name, func.__globals__.get("__doc__"))
            logger = setup(name)
            return_freed_memory()
            start, before = time.perf_counter(), peak_rss_mb()
            with limited_threads():
                result = func(*args, **kwargs)
            logger.info(
                "done in %.2f s, peak memory %d MB (%d MB before it read anything)",
                time.perf_counter() - start,
                peak_rss_mb(),
                before,
            )
            gc.freeze()
            return result

        return wrapper

    return wrap


def refuse_arguments(name: str, doc: str | None) -> None:
    """Stop before any work when a stage script is given arguments: its settings are params.yaml
    and environment variables, so `python stages/NAME.py --help` prints what the stage does
    (exit 0) and any other argument is an error (exit 2); neither reads or writes a file."""
    given = sys.argv[1:]
    if not given:
        return
    usage = f"usage: dvc repro {name}  (or python stages/{name}.py, with no arguments)"
    if given in (["-h"], ["--help"]):
        print(f"{usage}\n\n{(doc or '').strip()}\n\nSettings: params.yaml; RETRAIN_* environment variables.")
        raise SystemExit(0)
    print(f"{usage}\nerror: stage {name} takes no arguments, got {' '.join(given)!r}", file=sys.stderr)
    raise SystemExit(2)


def return_freed_memory() -> None:
    """Let a stage (or a worker of the local cluster it starts) give large freed buffers back to
    the system at once, so that its peak resident memory follows the data it holds: Arrow
    allocates through the C library instead of its own pool (which keeps what it frees), and
    glibc maps each buffer of 4 MB or more on its own (by default its threshold grows with use,
    up to 32 MB, and freed column-sized buffers stay in the heap); RETRAIN_MMAP_THRESHOLD_MB
    sets another size. Smaller allocations, such as a booster's per-iteration arrays, are left
    alone; a C library without mallopt keeps its defaults. Results are unchanged."""
    import pyarrow as pa

    threshold = mmap_threshold_bytes()
    pa.set_memory_pool(pa.system_memory_pool())
    mallopt = c_library("mallopt")
    if mallopt:
        mallopt(-3, threshold)  # M_MMAP_THRESHOLD


def peak_rss_mb() -> int:
    """Peak resident set of this process so far, in MB (Linux reports kB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def level_from(value: str | None) -> int:
    """The logging level named by `value` (default INFO); a wrong name is one clear error."""
    name = (value or "INFO").strip().upper()
    if name not in LEVELS:
        raise DataError(
            f"log level {value!r} (from --log-level or {ENV}), expected one of {', '.join(LEVELS)}"
        )
    return getattr(logging, name)


def dvc_verbosity(argv: list[str]) -> str | None:
    """WARNING for a `dvc ... -q` command line, DEBUG for `-v`, None for any other."""
    for i, arg in enumerate(argv):
        if os.path.basename(arg) == "dvc":
            flags = [a for a in argv[i + 1 :] if re.fullmatch(r"-[A-Za-z]+|--quiet|--verbose", a)]
            if any(a == "--quiet" or (a[1] != "-" and "q" in a) for a in flags):
                return "WARNING"
            if any(a == "--verbose" or (a[1] != "-" and "v" in a) for a in flags):
                return "DEBUG"
            return None
    return None


def stage_default_level() -> str | None:
    """The level of `dvc repro -q` or `-v` for a stage DVC runs: DVC passes neither flag to a
    stage's command, so the stage reads it from the dvc process that started it."""
    if "DVC_STAGE" not in os.environ:
        return None
    import psutil

    try:
        for parent in psutil.Process().parents():
            level = dvc_verbosity(parent.cmdline())
            if level or any(os.path.basename(a) == "dvc" for a in parent.cmdline()):
                return level
    except psutil.Error:
        return None
    return None


def setup(name: str, level: str | None = None) -> logging.Logger:
    """The logger of stage or command `name`: `name: message` lines, progress on stdout,
    warnings on stderr (where an error is one line of its own). The level is `level`, else
    RETRAIN_LOG_LEVEL, else that of the `dvc repro -q`/`-v` that runs the stage, else INFO."""
    root = logging.getLogger("retrain")
    root.setLevel(level_from(level or os.environ.get(ENV) or stage_default_level()))
    if not root.handlers:
        progress = logging.StreamHandler(sys.stdout)
        progress.addFilter(lambda record: record.levelno < logging.WARNING)
        problems = logging.StreamHandler(sys.stderr)
        problems.setLevel(logging.WARNING)
        for handler in (progress, problems):
            handler.setFormatter(_Format())
            root.addHandler(handler)
        root.propagate = False
    return logging.getLogger(f"retrain.{name}")


def get(name: str) -> logging.Logger:
    return logging.getLogger(f"retrain.{name}")


@contextmanager
def timed(logger: logging.Logger, what: str, level: int = logging.INFO) -> Iterator[None]:
    """Log `what` when it starts (DEBUG) and how long it took when it ends."""
    logger.debug("%s ...", what)
    start = time.perf_counter()
    yield
    logger.log(level, "%s took %.2f s", what, time.perf_counter() - start)
