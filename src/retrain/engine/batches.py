"""Raw batches read, validated and cleaned by partition on a Dask cluster, with the same
functions as in-process (schema.clean_rows per partition, schema.check_rows over the whole
batch). Each worker writes the partitions it cleans to a scratch directory as Parquet, with
their ids' hashes by bucket, and reads back only the columns a later step needs, so no process
holds more than a partition or a bucket; the stage gathers only what is small: per-partition
facts and counts, the positions of repeated hashes, the sampled rows, and the newest batch one
partition at a time as it writes it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retrain.data import files
from retrain.data.schema import (
    Batch,
    CleaningPolicy,
    RowChecks,
    Schema,
    batch_period,
    check_rows,
    check_size,
    clean_rows,
    first_bad,
    period_name,
    read_batch,
    refuse_duplicates,
    refuse_no_rows_left,
)
from retrain.data.splits import ValidatedBatch
from retrain.engine.rows import local_positions
from retrain.errors import DataError
from retrain.execution import c_library
from retrain.faults import checkpoint

if TYPE_CHECKING:
    from distributed import Client


@dataclass(frozen=True)
class RawPartition:
    """Rows `start` to `start + rows` of one row group of a Parquet batch (`row_group` None: the
    whole file, as a CSV is read), the `index`-th partition of the file; `first_row` rows of the
    file come before it."""

    path: str
    source: str
    row_group: int | None
    start: int
    rows: int | None
    first_row: int
    index: int


def raw_partitions(path: str | Path, most_rows: int | None = None) -> list[RawPartition]:
    """A Parquet batch's row groups, each cut in pieces of at most `most_rows` rows when given;
    a CSV batch is one partition (a quoted field may hold a line break, so a CSV is not cut)."""
    import pyarrow.parquet as pq

    where, source = str(Path(path).resolve()), str(path)
    if files.batch_suffix(path) != ".parquet":
        return [RawPartition(where, source, None, 0, None, 0, 0)]
    try:
        metadata = pq.ParquetFile(path).metadata
    except Exception as err:  # pyarrow raises several unrelated types for a broken file
        raise DataError(f"{path}: not a readable Parquet file ({type(err).__name__}: {err})") from None
    parts: list[RawPartition] = []
    first = 0
    for group in range(metadata.num_row_groups):
        n = metadata.row_group(group).num_rows
        step = most_rows or max(n, 1)
        for start in range(0, n, step):
            rows = min(step, n - start)
            parts.append(RawPartition(where, source, group, start, rows, first, len(parts)))
            first += rows
    return parts or [RawPartition(where, source, None, 0, None, 0, 0)]


def read_raw_partition(part: RawPartition) -> pd.DataFrame:
    """The partition's raw rows, indexed by their position in the file; errors name the file
    as the stage names it."""
    import pyarrow.parquet as pq

    checkpoint(f"partition:{part.index}")
    try:
        if part.row_group is None:
            raw = files.read_raw_batch(part.path)
        else:
            table = pq.ParquetFile(part.path).read_row_group(part.row_group).slice(part.start, part.rows)
            raw = table.to_pandas()
    except DataError as err:
        raise DataError(str(err).replace(part.path, part.source)) from None
    except FileNotFoundError:
        raise DataError(
            f"{part.source}: file not found by a Dask worker; expected storage every worker reads"
        ) from None
    except Exception as err:
        raise DataError(f"{part.source}: not a readable Parquet file ({type(err).__name__}: {err})") from None
    raw.index = pd.RangeIndex(part.first_row, part.first_row + len(raw))
    return raw


@dataclass(frozen=True)
class ScratchPart:
    """A cleaned partition in the scratch directory, and the positions of its rows dropped (as
    duplicates of later rows, or for a blank label)."""

    path: str
    dropped: np.ndarray

    def kept(self, rows: int) -> np.ndarray:
        """Which of the partition's `rows` rows are kept."""
        keep = np.ones(rows, dtype=bool)
        keep[self.dropped] = False
        return keep


@dataclass
class PartitionFacts(RowChecks):
    """What the stage gathers of a cleaned partition: its checks, its rows, and where the
    worker wrote them and their ids' hashes (by bucket: `id_buckets[b]` to `id_buckets[b + 1]`)."""

    rows: int = 0
    path: str = ""
    ids_path: str = ""
    id_buckets: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=int))


PARTITIONS_PER_BUCKET = 8
# A partition's id hashes on disk: raw records, ordered by bucket, so that a task reads one
# bucket's span of each file with a plain read. (Memory-mapping them put every file's pages
# around the span into the worker's resident memory: the peak grew with the partitions.)
KEYED = np.dtype([("hash", "<u8"), ("row", "<i8")])


def clean_partition(
    part: RawPartition,
    *,
    schema: Schema,
    policy: CleaningPolicy,
    period: pd.Period,
    scratch: str,
    buckets: int,
) -> PartitionFacts:
    """Validate and clean a raw partition (schema.clean_rows), write it to the scratch
    directory with a hash per id, ordered by bucket (the hash modulo `buckets`), and return
    its facts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cleaned = clean_rows(read_raw_partition(part), part.source, schema, policy, period=period)
    stem = Path(scratch) / f"{Path(part.source).name}.{part.index:06d}"
    table = pa.Table.from_pandas(cleaned.frame, preserve_index=False)
    pq.write_table(table, f"{stem}.parquet", compression="lz4")
    hashes = pd.util.hash_pandas_object(cleaned.frame[schema.id], index=False).to_numpy()
    bucket = hashes % np.uint64(buckets)
    order = np.argsort(bucket, kind="stable")
    keyed = np.empty(len(hashes), dtype=KEYED)
    keyed["hash"], keyed["row"] = hashes[order], order
    keyed.tofile(f"{stem}.ids")
    return PartitionFacts(
        **{name: getattr(cleaned, name) for name in RowChecks.__dataclass_fields__},
        rows=len(cleaned.frame),
        path=f"{stem}.parquet",
        ids_path=f"{stem}.ids",
        id_buckets=np.searchsorted(bucket[order], np.arange(buckets + 1, dtype=np.uint64)),
    )


def repeated_hashes(
    starts: np.ndarray, ends: np.ndarray, *, paths: list[str], firsts: list[int]
) -> np.ndarray:
    """Batch positions of the rows in one bucket whose id hash another row of the batch shares:
    of each partition's hash file (`paths`), only the bucket's span (`starts` to `ends`) is read."""
    hashes, rows = [np.zeros(0, dtype=np.uint64)], [np.zeros(0, dtype=np.int64)]
    for path, start, end, first in zip(paths, starts, ends, firsts, strict=True):
        keyed = np.fromfile(path, dtype=KEYED, count=int(end - start), offset=int(start) * KEYED.itemsize)
        hashes.append(keyed["hash"])
        rows.append(keyed["row"] + first)
    together, where = np.concatenate(hashes), np.concatenate(rows)
    order = np.argsort(together, kind="stable")
    ordered = together[order]
    same = ordered[1:] == ordered[:-1]
    repeated = np.zeros(len(ordered), dtype=bool)
    repeated[1:] |= same
    repeated[:-1] |= same
    return np.sort(where[order][repeated])


def read_scratch(part: ScratchPart, columns: list[str] | None = None) -> pd.DataFrame:
    """A cleaned partition without its dropped rows, in order."""
    frame = pd.read_parquet(part.path, columns=columns)
    if len(part.dropped):
        frame = frame.loc[part.kept(len(frame))].reset_index(drop=True)
    return frame


def scratch_rows(pieces: list[tuple[ScratchPart, int, int]]) -> Any:
    """Rows start to stop of each cleaned partition without its dropped rows, laid end to end:
    the Arrow table files.arrow_table makes of them, read as the worker wrote it (no frame)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for part, start, stop in pieces:
        table = pq.read_table(part.path)
        if len(part.dropped):
            table = table.filter(part.kept(table.num_rows))
        tables.append(table.slice(start, stop - start))
    group = pa.concat_tables(tables).replace_schema_metadata(None).combine_chunks()
    del tables, table
    release_cached_memory()
    return group


def ids_at(part: ScratchPart, positions: np.ndarray, id_column: str) -> list[str]:
    return read_scratch(part, [id_column])[id_column].iloc[positions].tolist()


def apply_to_scratch(
    part: ScratchPart,
    first: int,
    mine: dict[str, Any],
    *,
    fn: Callable[..., Any],
    columns: list[str] | None,
    **kwargs: Any,
) -> Any:
    return fn(read_scratch(part, columns), first=first, **mine, **kwargs)


def _with_extra(
    frame: pd.DataFrame, *, first: int, extra: Any, rows_fn: Callable[..., Any], **kwargs: Any
) -> Any:
    return rows_fn(frame, extra, **kwargs)


def rows_at(part: ScratchPart, positions: list[np.ndarray | None], first: int) -> list[pd.DataFrame]:
    """For each set of positions (None: every row), those rows of the partition, indexed by
    their position in the batch; the partition is read once for all of them."""
    frame = read_scratch(part)
    frame = frame.set_axis(pd.RangeIndex(first, first + len(frame)))
    taken = [frame if rows is None else frame.take(rows) for rows in positions]
    del frame
    release_cached_memory()
    return taken


def trim_worker_memory() -> None:
    """Give a worker's freed memory back to the system: Arrow's cache and the C library's heap
    (Dask's advice for a worker's unmanaged memory), once the tasks of a phase are done."""
    import gc

    gc.collect()
    release_cached_memory()
    trim = c_library("malloc_trim")
    if trim:
        trim(0)


def release_cached_memory() -> None:
    """Give the memory the Arrow pool keeps from freed buffers back to the system, so that a
    worker's resident memory follows what its next task holds, not what its last one freed."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


@dataclass
class PartitionedBatch:
    """A validated, cleaned batch whose rows are partitions on a cluster's workers: the same
    answers as schema.Batch to what split and the stage ask (rows, times, tie keys, rows at
    positions), gathering only what they return."""

    period: str
    labelled: bool
    source: str
    client: Client
    parts: list[ScratchPart]
    sizes: list[int]
    dropped_duplicates: int = 0
    extra_columns: list[str] = field(default_factory=list)
    unparseable: dict[str, int] = field(default_factory=dict)
    dropped_blank_labels: int = 0

    @property
    def rows(self) -> int:
        return sum(self.sizes)

    def observed(self) -> dict[str, Any]:
        return {"rows": self.rows, "extra_columns": self.extra_columns, "unparseable": self.unparseable}

    def part_rows(self) -> list[int]:
        return list(self.sizes)

    def map_parts(
        self,
        func: Callable[..., Any],
        columns: list[str] | None,
        each: dict[str, list[Any]] | None = None,
        **kwargs: Any,
    ) -> list[Any]:
        firsts = np.cumsum([0, *self.sizes[:-1]]).tolist()
        mine = [{name: values[i] for name, values in (each or {}).items()} for i in range(len(self.parts))]
        return list(
            self.client.gather(
                self.client.map(
                    apply_to_scratch, self.parts, firsts, mine, fn=func, columns=columns, pure=False, **kwargs
                )
            )
        )

    def spill_paths(self, name: str) -> list[str | None]:
        return [f"{part.path}.{name}.npy" for part in self.parts]

    def run_tasks(self, func: Callable[..., Any], calls: list[dict[str, Any]]) -> list[Any]:
        return list(self.client.gather([self.client.submit(func, **kwargs, pure=False) for kwargs in calls]))

    def as_rows(self) -> BatchRows:
        return BatchRows(self)

    def take(self, positions: np.ndarray | None) -> pd.DataFrame:
        return self.take_many([positions])[0]

    def take_many(self, positions: list[np.ndarray | None]) -> list[pd.DataFrame]:
        """The rows at each set of sorted positions (None: every row), each partition read
        once; a partition none of the sets needs is not read."""
        firsts = np.cumsum([0, *self.sizes[:-1]]).tolist()
        per_set = [
            [None] * len(self.parts) if rows is None else local_positions(rows, self.sizes)
            for rows in positions
        ]
        per_part = [list(wanted) for wanted in zip(*per_set, strict=True)]
        needed = [i for i, wanted in enumerate(per_part) if any(w is None or len(w) for w in wanted)]
        pieces = self.client.gather(
            [self.client.submit(rows_at, self.parts[i], per_part[i], firsts[i], pure=False) for i in needed]
        )
        if not needed:  # no rows asked for: an empty frame with the batch's columns
            empty = self.client.submit(rows_at, self.parts[0], [np.zeros(0, dtype=int)], 0, pure=False)
            return [empty.result()[0]] * len(positions)
        out = []
        for k in range(len(positions)):
            frames = [piece[k] for piece in pieces]
            out.append(frames[0] if len(frames) == 1 else pd.concat(frames))
        return out

    def row_groups(self, rows: int) -> Iterator[Any]:
        """The batch's rows as files.arrow_table in groups of `rows` (the last one shorter), in
        order: a worker builds each group from the partitions it spans, the next one while the
        stage takes this one, so the stage holds a group at a time and never a frame."""
        starts = np.cumsum([0, *self.sizes]).tolist()
        self.client.run(trim_worker_memory)

        def group(first: int) -> Any:
            last = min(first + rows, self.rows)
            spans = zip(self.parts, starts[:-1], starts[1:], strict=True)
            pieces = [
                (part, max(first - a, 0), min(last, b) - a) for part, a, b in spans if a < last and b > first
            ]
            return self.client.submit(scratch_rows, pieces or [(self.parts[0], 0, 0)], pure=False)

        firsts = range(0, max(self.rows, 1), rows)
        ahead = group(firsts[0])
        for first in firsts[1:]:
            current, ahead = ahead, group(first)
            yield current.result()
            del current
        yield ahead.result()


@dataclass(frozen=True)
class BatchRows:
    """A partitioned batch seen as engine.rows.Rows: what evaluate's statistics read."""

    batch: PartitionedBatch

    @property
    def rows(self) -> int:
        return self.batch.rows

    def partition_rows(self) -> list[int]:
        return self.batch.part_rows()

    def map_partitions(
        self,
        func: Callable[..., Any],
        extra: Sequence[Any] | None = None,
        read_columns: list[str] | None = None,
        **kwargs: Any,
    ) -> list[Any]:
        extras = [None] * len(self.batch.parts) if extra is None else list(extra)
        return self.batch.map_parts(_with_extra, read_columns, each={"extra": extras}, rows_fn=func, **kwargs)

    def take(self, positions: np.ndarray | None, columns: list[str] | None = None) -> pd.DataFrame:
        rows = self.batch.take(None if positions is None else np.asarray(positions))
        return rows if columns is None else rows[columns]


def read_partitioned_batch(
    client: Client,
    path: str | Path,
    schema: Schema,
    policy: CleaningPolicy,
    *,
    scratch: str | Path,
    most_rows: int | None = None,
) -> PartitionedBatch:
    """read_batch on a cluster: every partition validated and cleaned by a worker and written
    to `scratch`, the checks across partitions (blank columns, labels, duplicated ids) made
    from their facts."""
    source = str(path)
    check_size(path, policy)
    period = batch_period(source, schema)
    parts = raw_partitions(path, most_rows)
    facts: list[PartitionFacts] = client.gather(
        client.map(
            clean_partition,
            parts,
            schema=schema,
            policy=policy,
            period=period,
            scratch=str(Path(scratch).resolve()),
            buckets=-(-len(parts) // PARTITIONS_PER_BUCKET),
            pure=False,
        )
    )
    if not sum(f.rows for f in facts):
        raise DataError(f"{source}: header only, expected at least one data row")
    labelled = check_rows(facts, source, schema, policy)
    duplicates = duplicated_positions(client, facts, source, schema, policy)
    dropped = duplicates
    if labelled and policy.blank_label == "drop":
        dropped = [np.union1d(d, f.blank_positions(f.rows)) for f, d in zip(facts, duplicates, strict=True)]
    unparseable: dict[str, int] = {}
    for f in facts:
        for name, n in f.unparseable.items():
            unparseable[name] = unparseable.get(name, 0) + n
    kept = [(f, d) for f, d in zip(facts, dropped, strict=True) if f.rows > len(d)]
    refuse_no_rows_left(source, len(kept))
    duplicated = sum(len(d) for d in duplicates)
    return PartitionedBatch(
        period=period_name(period),
        labelled=labelled,
        source=source,
        client=client,
        parts=[ScratchPart(f.path, d) for f, d in kept],
        sizes=[f.rows - len(d) for f, d in kept],
        dropped_duplicates=duplicated,
        extra_columns=facts[0].extra_columns,
        unparseable=unparseable,
        dropped_blank_labels=sum(len(d) for d in dropped) - duplicated,
    )


def duplicated_positions(
    client: Client,
    facts: list[PartitionFacts],
    source: str,
    schema: Schema,
    policy: CleaningPolicy,
) -> list[np.ndarray]:
    """Per partition, the positions of rows whose id comes again later in the batch (the last
    row of an id is kept), or one error when the policy refuses duplicates. Ids are compared by
    hash first, one bucket of hashes per task; the ids of rows whose hash repeats are then
    compared themselves."""
    sizes = [f.rows for f in facts]
    firsts = np.cumsum([0, *sizes[:-1]]).tolist()
    spans = np.stack([f.id_buckets for f in facts], axis=1)  # bucket edges by partition
    paths = [f.ids_path for f in facts]
    found = client.gather(
        client.map(repeated_hashes, list(spans[:-1]), list(spans[1:]), paths=paths, firsts=firsts, pure=False)
    )
    positions = np.sort(np.concatenate([np.zeros(0, dtype=np.int64), *found]))
    if not len(positions):
        return [np.zeros(0, dtype=int) for _ in facts]
    local = local_positions(positions, sizes)
    parts = [ScratchPart(f.path, np.zeros(0, dtype=int)) for f in facts]
    ids = [i for part in client.gather(client.map(ids_at, parts, local, id_column=schema.id)) for i in part]
    repeated = pd.Series(ids).duplicated(keep="last").to_numpy()
    dupes = positions[repeated]
    if len(dupes):
        first = int(dupes[0])
        where = pd.RangeIndex(first, first + 1)
        value = ids[int(np.flatnonzero(repeated)[0])]
        refuse_duplicates(
            source, schema, policy, first_bad(pd.Series([True], index=where), pd.Series([value], index=where))
        )
    return local_positions(dupes, sizes)


@contextmanager
def batch_reader(
    schema: Schema, policy: CleaningPolicy
) -> Iterator[Callable[[Path], Batch | PartitionedBatch]]:
    """How prepare reads a batch file on the engine RETRAIN_ENGINE chooses. On Dask, the
    cleaned partitions go to a scratch directory (RETRAIN_DASK_SCRATCH, else the system's
    temporary directory) removed when the block ends."""
    import shutil
    import tempfile

    from retrain.execution import engine, partition_rows, scratch_dir

    if engine() != "dask":
        yield lambda path: read_batch(path, schema, policy)
        return
    from retrain.engine.cluster import dask_client

    scratch = tempfile.mkdtemp(prefix="retrain-prepare-", dir=scratch_dir())
    try:
        with dask_client() as client:
            yield lambda path: read_partitioned_batch(
                client, path, schema, policy, scratch=scratch, most_rows=partition_rows()
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_batch(path: str | Path, batch: ValidatedBatch) -> None:
    """The whole batch as one Parquet file, the same bytes from either engine."""
    if isinstance(batch, PartitionedBatch):
        files.write_parquet_tables(path, batch.row_groups(files.ROW_GROUP_ROWS))
    else:
        files.write_parquet(path, batch.take(None))
