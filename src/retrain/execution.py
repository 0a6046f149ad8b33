"""Execution settings read from the environment: they change how fast a result comes, never
the result, so they are not params keys and changing them reruns no stage."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from retrain.errors import DataError

THREADS = "RETRAIN_THREADS"
_LIBRARY_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads() -> int:
    """RETRAIN_THREADS, or the CPUs available; a value that is not a positive whole number is
    one clear error."""
    value = os.environ.get(THREADS, "").strip()
    if not value:
        return available_cpus()
    if not value.isdigit() or int(value) < 1:
        raise DataError(f"{THREADS} is {value!r}, expected a whole number of threads of at least 1")
    return int(value)


@contextmanager
def limited_threads() -> Iterator[int]:
    """Run the block with BLAS and OpenMP limited to threads(): libraries already loaded through
    threadpoolctl, libraries loaded later through their environment variables. Idle OpenMP
    threads sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE unless set), so a busy machine
    does not make every parallel region wait for a descheduled spinner. Arrow's CPU pool (CSV
    and Parquet reading) gets the same limit."""
    import pyarrow
    from threadpoolctl import threadpool_limits

    n = threads()
    pyarrow.set_cpu_count(n)
    for name in _LIBRARY_THREADS:
        os.environ[name] = str(n)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    with threadpool_limits(limits=n):
        yield n


FIT_ROWS_PER_THREAD = 150_000


def fit_threads(rows: int) -> int:
    """Threads for fitting a model on `rows` rows: one per FIT_ROWS_PER_THREAD, at most
    threads(). Waking passive OpenMP threads costs more than a second thread saves below about
    250,000 rows (on two idle cores, a gradient-boosting fit of 20,000 rows takes 0.28 s on one
    thread and 1.41 s on two, of 300,000 rows 3.1 s and 2.9 s); the fitted model is the same."""
    return max(1, min(threads(), rows // FIT_ROWS_PER_THREAD))


ENGINE = "RETRAIN_ENGINE"
ENGINES = ("local", "dask")
SCHEDULER = "RETRAIN_DASK_SCHEDULER"
WORKERS = "RETRAIN_DASK_WORKERS"
PARTITION_ROWS = "RETRAIN_DASK_PARTITION_ROWS"


def one_malloc_arena_for_dask() -> None:
    """Under RETRAIN_ENGINE=dask, have glibc serve every thread of this process from one
    allocation arena (M_ARENA_MAX = 1), as MALLOC_ARENA_MAX=1 would; called when the package is
    first imported, before Arrow starts its threads.

    The client's and the local scheduler's threads receive every partition the stage writes; with
    an arena per thread, the freed buffers stayed spread over the arenas and the stage's memory
    crept up with the partitions. Nothing is done on a C library without mallopt."""
    if _engine_named() != "dask":  # an unknown name is refused later, by engine()
        return
    mallopt = c_library("mallopt")
    if mallopt:
        mallopt(-8, 1)  # M_ARENA_MAX


def c_library(function: str) -> Callable[..., int] | None:
    """The C library's `function` (glibc's mallopt or malloc_trim), or None where it has none."""
    import ctypes

    try:
        return getattr(ctypes.CDLL(None), function)
    except (OSError, AttributeError, TypeError):
        return None


def _engine_named() -> str:
    return os.environ.get(ENGINE, "").strip().lower() or "local"


def engine() -> str:
    """RETRAIN_ENGINE: `local` (the default: this process) or `dask` (a cluster)."""
    value = _engine_named()
    if value not in ENGINES:
        raise DataError(f"{ENGINE} is {value!r}, expected one of: {', '.join(ENGINES)}")
    return value


def _whole_number(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise DataError(f"{name} is {value!r}, expected a whole number of at least 1")
    return int(value)


def dask_workers() -> int:
    """RETRAIN_DASK_WORKERS: worker processes of the local cluster; else threads()."""
    return _whole_number(WORKERS) or threads()


def partition_rows() -> int | None:
    """RETRAIN_DASK_PARTITION_ROWS: most rows per partition; else one Parquet row group each."""
    return _whole_number(PARTITION_ROWS)


MMAP_THRESHOLD = "RETRAIN_MMAP_THRESHOLD_MB"


def mmap_threshold_bytes() -> int:
    """RETRAIN_MMAP_THRESHOLD_MB: a stage and its local workers map each buffer of this many MB
    or more on its own, so that it leaves the process when freed (log.return_freed_memory); else
    4. Lower holds less memory between tasks and costs time: each such buffer is new pages."""
    return (_whole_number(MMAP_THRESHOLD) or 4) * 2**20


def scheduler() -> str | None:
    """RETRAIN_DASK_SCHEDULER: the address of a running scheduler (tcp://host:8786); else the
    stage starts a local cluster."""
    return os.environ.get(SCHEDULER, "").strip() or None


SCRATCH = "RETRAIN_DASK_SCRATCH"
MEMORY_LIMIT = "RETRAIN_DASK_MEMORY_LIMIT"


def scratch_dir() -> str | None:
    """RETRAIN_DASK_SCRATCH: where Dask workers write the partitions prepare cleans (a directory
    every worker reads, such as a shared mount); else the system's temporary directory."""
    value = os.environ.get(SCRATCH, "").strip()
    if value and not os.path.isdir(value):
        raise DataError(f"{SCRATCH} is {value!r}, which is not a directory; expected one every worker reads")
    return value or None


def dask_memory_limit() -> str:
    """RETRAIN_DASK_MEMORY_LIMIT: memory per worker of the local cluster (such as 2GiB); past
    it a worker spills, then restarts. Else Dask's default: the machine's memory shared out."""
    value = os.environ.get(MEMORY_LIMIT, "").strip()
    if not value:
        return "auto"
    from dask.utils import parse_bytes

    try:
        parse_bytes(value)
    except ValueError:
        raise DataError(f"{MEMORY_LIMIT} is {value!r}, expected an amount of memory such as 2GiB") from None
    return value
