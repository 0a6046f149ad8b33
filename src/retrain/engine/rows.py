"""A batch's rows wherever they live, seen through the few operations the statistics need:
apply a function to each partition and merge the results in partition order, and take rows by
their position in the whole batch. Results depend on positions, never on how the rows are
partitioned, so both engines give the same answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd


class Rows(Protocol):
    """A batch of rows, in one frame or in partitions on a cluster."""

    @property
    def rows(self) -> int: ...

    def map_partitions(
        self,
        func: Callable[..., Any],
        extra: Sequence[Any] | None = None,
        read_columns: list[str] | None = None,
        **kwargs: Any,
    ) -> list[Any]:
        """[func(partition, extra[i], **kwargs) for each partition i, in order]; extra is one
        value per partition (None when not given). A partition read from storage holds at
        least `read_columns` (those the batch has), else every column."""
        ...

    def partition_rows(self) -> list[int]:
        """How many rows each partition holds, in order."""
        ...

    def take(self, positions: np.ndarray | None, columns: list[str] | None = None) -> pd.DataFrame:
        """The rows at sorted `positions` of the whole batch (None: every row), in order."""
        ...


@dataclass(frozen=True)
class FrameRows:
    """The in-process engine: the batch is one frame, one partition."""

    frame: pd.DataFrame

    @property
    def rows(self) -> int:
        return len(self.frame)

    def map_partitions(
        self,
        func: Callable[..., Any],
        extra: Sequence[Any] | None = None,
        read_columns: list[str] | None = None,
        **kwargs: Any,
    ) -> list[Any]:
        return [func(self.frame, None if extra is None else extra[0], **kwargs)]

    def partition_rows(self) -> list[int]:
        return [len(self.frame)]

    def take(self, positions: np.ndarray | None, columns: list[str] | None = None) -> pd.DataFrame:
        frame = self.frame if columns is None else self.frame[columns]
        return frame if positions is None else frame.take(positions)


def as_rows(batch: pd.DataFrame | Rows) -> Rows:
    return FrameRows(batch) if isinstance(batch, pd.DataFrame) else batch


def local_positions(positions: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """Global row positions split by partition, each made relative to its partition's start."""
    starts = np.cumsum([0, *sizes])
    return [
        positions[(positions >= start) & (positions < end)] - start
        for start, end in zip(starts[:-1], starts[1:], strict=True)
    ]


@contextmanager
def parquet_rows(path: str | Path) -> Iterator[Rows]:
    """A Parquet file's rows on the engine RETRAIN_ENGINE chooses: read into this process, or
    left in partitions that the workers of a Dask cluster read."""
    from retrain.data.files import read_parquet
    from retrain.execution import engine, partition_rows

    if engine() == "dask":
        from retrain.engine.cluster import PartitionedRows, dask_client

        with dask_client() as client:
            yield PartitionedRows(client, path, partition_rows())
        return
    yield FrameRows(read_parquet(path))
