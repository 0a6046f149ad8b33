"""The Dask engine: a Parquet file's rows read by partition on the workers of a cluster, where
the same per-partition functions as in-process run, and only their small results (counts, the
sampled rows) come back to the stage."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retrain.engine.rows import local_positions
from retrain.errors import DataError
from retrain.execution import SCHEDULER, dask_memory_limit, dask_workers, scheduler
from retrain.faults import checkpoint

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

# What each worker process of a local cluster runs with: one thread per library, as the workers
# are already one per CPU.
WORKER_ENV = {
    "RETRAIN_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OMP_WAIT_POLICY": "PASSIVE",
}


@dataclass(frozen=True)
class Partition:
    """Rows `start` to `start + rows` of one row group of a Parquet file, the `index`-th
    partition of the file."""

    path: str
    row_group: int
    start: int
    rows: int
    index: int


def read_partition(part: Partition, columns: list[str] | None = None) -> pd.DataFrame:
    import pyarrow.parquet as pq

    checkpoint(f"partition:{part.index}")
    try:
        table = pq.ParquetFile(part.path).read_row_group(part.row_group, columns=columns)
    except FileNotFoundError:
        raise DataError(
            f"{part.path}: file not found by a Dask worker; expected storage every worker reads"
        ) from None
    except Exception as err:  # pyarrow raises several unrelated types for a broken file
        raise DataError(f"{part.path}: not a readable Parquet file ({type(err).__name__}: {err})") from None
    return table.slice(part.start, part.rows).to_pandas()


def _apply(
    part: Partition,
    extra: Any,
    *,
    func: Callable[..., Any],
    kwargs: dict[str, Any],
    columns: list[str] | None,
) -> Any:
    return func(read_partition(part, columns), extra, **kwargs)


def _take(
    part: Partition, positions: np.ndarray | None, columns: list[str] | None, first: int
) -> pd.DataFrame:
    frame = read_partition(part, columns)
    frame.index = pd.RangeIndex(first, first + len(frame))
    return frame if positions is None else frame.take(positions)


def partitions(path: str | Path, most_rows: int | None = None) -> list[Partition]:
    """The partitions of a Parquet file: its row groups, each cut in pieces of at most
    `most_rows` rows when given."""
    import pyarrow.parquet as pq

    try:
        metadata = pq.ParquetFile(path).metadata
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as err:
        raise DataError(f"{path}: not a readable Parquet file ({type(err).__name__}: {err})") from None
    where = str(Path(path).resolve())
    parts: list[Partition] = []
    for group in range(metadata.num_row_groups):
        n = metadata.row_group(group).num_rows
        step = most_rows or max(n, 1)
        parts += [
            Partition(where, group, start, min(step, n - start), len(parts) + i)
            for i, start in enumerate(range(0, n, step))
        ]
    return parts


class PartitionedRows:
    """A Parquet file's rows on a Dask cluster, one task per partition."""

    def __init__(self, client: Client, path: str | Path, most_rows: int | None = None):
        import pyarrow.parquet as pq

        self.client = client
        self.path = str(path)
        self.parts = partitions(path, most_rows)
        self.columns = set(pq.read_schema(path).names)

    @property
    def rows(self) -> int:
        return sum(part.rows for part in self.parts)

    def partition_rows(self) -> list[int]:
        return [part.rows for part in self.parts]

    def map_partitions(
        self,
        func: Callable[..., Any],
        extra: Sequence[Any] | None = None,
        read_columns: list[str] | None = None,
        **kwargs: Any,
    ) -> list[Any]:
        extras = [None] * len(self.parts) if extra is None else list(extra)
        columns = None if read_columns is None else [c for c in read_columns if c in self.columns]
        task = functools.partial(_apply, func=func, kwargs=kwargs, columns=columns)
        return list(self.client.gather(self.client.map(task, self.parts, extras, pure=False)))

    def take(self, positions: np.ndarray | None, columns: list[str] | None = None) -> pd.DataFrame:
        sizes = self.partition_rows()
        firsts = np.cumsum([0, *sizes[:-1]]).tolist()
        wanted = (
            [None] * len(self.parts) if positions is None else local_positions(np.asarray(positions), sizes)
        )
        futures = [
            self.client.submit(_take, part, rows, columns, first, pure=False)
            for part, rows, first in zip(self.parts, wanted, firsts, strict=True)
            if rows is None or len(rows)
        ]
        if not futures:
            return read_partition(self.parts[0], columns).iloc[:0] if self.parts else pd.DataFrame()
        pieces = self.client.gather(futures)
        return pieces[0] if len(pieces) == 1 else pd.concat(pieces)


@contextmanager
def dask_client() -> Iterator[Client]:
    """A client of the scheduler RETRAIN_DASK_SCHEDULER names, or of a local cluster of
    RETRAIN_DASK_WORKERS processes on 127.0.0.1 started for the stage and stopped after it."""
    try:
        from distributed import Client
    except ImportError:
        raise DataError(
            "RETRAIN_ENGINE=dask needs dask and distributed: pip install -c constraints.txt -e '.[dask]'"
        ) from None
    address = scheduler()
    if address:
        try:
            client = Client(address)  # waits distributed.comm.timeouts.connect (30 s)
        except (OSError, TimeoutError) as err:
            raise DataError(
                f"{SCHEDULER}={address}: no Dask scheduler answered ({err}); start one (dask scheduler) "
                "or unset it to run a local cluster"
            ) from None
        with client:
            yield client
        return
    with local_cluster(dask_workers(), dask_memory_limit()) as cluster, Client(cluster) as client:
        from retrain.log import return_freed_memory

        client.run(return_freed_memory)
        yield client


def local_cluster(
    workers: int, memory_limit: str = "auto", env: dict[str, str] | None = None
) -> LocalCluster:
    """`workers` single-threaded worker processes and their scheduler on 127.0.0.1, over TCP,
    without a dashboard; each worker's environment is WORKER_ENV and `env`."""
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=workers,
        memory_limit=memory_limit,
        threads_per_worker=1,
        processes=True,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
        # the scheduler's HTTP routes (health, metrics) on a free port of 127.0.0.1, not 8787:
        # stages and tests may run clusters side by side
        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.ERROR,
        env={**WORKER_ENV, **(env or {})},
    )
