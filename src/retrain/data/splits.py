"""The training window and the time-ordered holdout, from validated batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from retrain.data.files import batch_stem
from retrain.data.schema import Schema
from retrain.errors import DataError, TooFewRows
from retrain.params import validated

if TYPE_CHECKING:
    from retrain.engine.rows import Rows


@dataclass(frozen=True)
class WindowPolicy:
    """Which labelled batches a challenger trains on, how much of the newest is held out, and
    how many rows of each are kept when a batch is very large (None: every row)."""

    kind: str = "last_n"  # all | last_n
    batches: int = 3
    holdout_fraction: float = 0.4
    max_train_rows: int | None = 300_000
    max_labelled_rows: int | None = 200_000
    seed: int = 0

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> WindowPolicy:
        params = validated("prepare", params)
        return cls(
            kind=params["window"],
            batches=params["window_batches"],
            holdout_fraction=params["holdout_fraction"],
            max_train_rows=params["max_rows"]["train"],
            max_labelled_rows=params["max_rows"]["labelled"],
            seed=params["sample_seed"],
        )


@dataclass
class Split:
    newest_batch: ValidatedBatch
    newest_labelled: pd.DataFrame
    train: pd.DataFrame
    holdout: pd.DataFrame
    summary: dict[str, Any]

    @property
    def newest(self) -> pd.DataFrame:
        """The newest batch's rows, all of them in this process."""
        return self.newest_batch.take(None)


def check_periods(named: Iterable[tuple[str, str]]) -> None:
    """One file per period, from (period, file) pairs."""
    seen: dict[str, str] = {}
    for period, source in named:
        if period in seen:
            raise DataError(
                f"{source}: period {period} already comes from {seen[period]}; expected one file per period"
            )
        seen[period] = source


def window_batches(
    paths: list[Path], read: Callable[[Path], ValidatedBatch], policy: WindowPolicy
) -> list[ValidatedBatch]:
    """The batches split needs, read newest first: for `last_n`, up to and including the n-th
    newest labelled batch (older files are never opened); for `all`, every batch."""
    check_periods((batch_stem(path), str(path)) for path in paths)
    if policy.kind == "all":
        return [read(path) for path in paths]
    batches: list[ValidatedBatch] = []
    labelled = 0
    for path in reversed(paths):
        batch = read(path)
        batches.append(batch)
        labelled += batch.labelled
        if labelled >= policy.batches:
            break
    return batches[::-1]


def tie_keys(ids: pd.Series, seed: int) -> np.ndarray:
    """A seeded, stable 53-bit number per id: the order of rows that share a timestamp."""
    hashed = pd.util.hash_pandas_object(
        ids.astype(str), index=False, hash_key=f"retrain{seed % 10**9:09d}"
    ).to_numpy()
    return (hashed >> np.uint64(11)).astype(np.int64)


@dataclass(frozen=True)
class HoldoutCut:
    """Where the holdout of a batch begins in the order (time, tie key of the id): every row at
    or after it is held out, every row before it may be trained on."""

    time: pd.Timestamp
    tie: int
    seed: int

    def as_dict(self) -> dict[str, Any]:
        return {"from": str(self.time), "from_tie": int(self.tie), "tie_seed": int(self.seed)}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> HoldoutCut | None:
        """The cut a model's metadata records; None for a model that recorded only a time."""
        if record.get("from_tie") is None:
            return None
        return cls(pd.Timestamp(record["from"]), int(record["from_tie"]), int(record["tie_seed"]))

    @classmethod
    def first_of(cls, holdout: pd.DataFrame, time_col: str, id_col: str, seed: int) -> HoldoutCut | None:
        """The cut at the first row of a holdout, in the order holdout_of uses."""
        if not len(holdout):
            return None
        times = holdout[time_col].to_numpy(dtype="datetime64[ns]").view("int64")
        first = times.min()
        ties = tie_keys(holdout[id_col].iloc[np.flatnonzero(times == first)], seed)
        return cls(pd.Timestamp(first), int(ties.min()), seed)

    def at_or_after(self, frame: pd.DataFrame, time_col: str, id_col: str) -> np.ndarray:
        """Which rows of `frame` come at or after the cut."""
        times = frame[time_col].to_numpy(dtype="datetime64[ns]")
        later = times > np.datetime64(self.time, "ns")
        same = times == np.datetime64(self.time, "ns")
        if same.any():
            later |= same & (tie_keys(frame[id_col], self.seed) >= self.tie)
        return later


SELECT_BINS = 1024
SELECT_GATHER = 1 << 16
_I64 = np.iinfo(np.int64)


@dataclass(frozen=True)
class TimesOf:
    """A partition's times as int64 nanoseconds, in row order."""

    time_column: str

    @property
    def columns(self) -> list[str]:
        return [self.time_column]

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[self.time_column].to_numpy(dtype="datetime64[ns]").view("int64")


@dataclass(frozen=True)
class TiesAt:
    """The tie keys of a partition's rows at one time, in row order."""

    time_column: str
    id_column: str
    seed: int
    time: int

    @property
    def columns(self) -> list[str]:
        return [self.time_column, self.id_column]

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        at = np.flatnonzero(TimesOf(self.time_column)(frame) == self.time)
        return tie_keys(frame[self.id_column].iloc[at], self.seed)


@dataclass(frozen=True)
class Rank:
    """The k-th smallest of some values, how many are smaller and how many equal it."""

    value: int
    smaller: int
    equal: int


def _bin_counts(
    frame: pd.DataFrame, *, first: int, values: TimesOf | TiesAt, lo: int, hi: int, bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bin of equal width over [lo, hi]: how many of the partition's values fall in it, and
    their least and greatest."""
    found = np.sort(values(frame))
    found = found[np.searchsorted(found, lo, "left") : np.searchsorted(found, hi, "right")]
    width = (hi - lo) // bins + 1
    which = (found.view(np.uint64) - np.uint64(lo % 2**64)) // np.uint64(width)
    edges = np.arange(bins + 1, dtype=np.uint64)
    starts, ends = np.searchsorted(which, edges[:-1], "left"), np.searchsorted(which, edges[1:], "left")
    counts = ends - starts
    full = counts > 0
    least = np.full(bins, _I64.max, dtype=np.int64)
    most = np.full(bins, _I64.min, dtype=np.int64)
    least[full], most[full] = found[starts[full]], found[ends[full] - 1]
    return counts, least, most


def _between(frame: pd.DataFrame, *, first: int, values: TimesOf | TiesAt, lo: int, hi: int) -> np.ndarray:
    found = values(frame)
    return found[(found >= lo) & (found <= hi)]


def kth_smallest(batch: ValidatedBatch, values: TimesOf | TiesAt, k: int) -> Rank:
    """The k-th smallest (from 0) of the int64 values `values` gives for each partition, found
    by counting them in ever narrower ranges: no process holds a value per row of the batch."""
    lo, hi, smaller = int(_I64.min), int(_I64.max), 0
    while True:
        parts = batch.map_parts(_bin_counts, values.columns, values=values, lo=lo, hi=hi, bins=SELECT_BINS)
        counts = np.sum([part[0] for part in parts], axis=0)
        below = np.cumsum(counts)
        b = int(np.searchsorted(below, k - smaller, side="right"))
        smaller += int(below[b - 1]) if b else 0
        lo = int(min(part[1][b] for part in parts))
        hi = int(max(part[2][b] for part in parts))
        if lo == hi:
            return Rank(lo, smaller, int(counts[b]))
        if counts[b] <= SELECT_GATHER:
            parts = batch.map_parts(_between, values.columns, values=values, lo=lo, hi=hi)
            found = np.sort(np.concatenate(parts))
            value = found[k - smaller]
            left, right = np.searchsorted(found, value, "left"), np.searchsorted(found, value, "right")
            return Rank(int(value), smaller + int(left), int(right - left))


@dataclass(frozen=True)
class CutRule:
    """Which rows of a partition a holdout cut holds: those after it, and of those at its time
    and tie key (rarely more than one) the batch positions in `exact`."""

    cut: HoldoutCut
    time_column: str
    id_column: str
    exact: np.ndarray

    @property
    def columns(self) -> list[str]:
        return [self.time_column, self.id_column]

    def held(self, frame: pd.DataFrame, first: int) -> np.ndarray:
        times = TimesOf(self.time_column)(frame)
        at = np.datetime64(self.cut.time, "ns").astype(np.int64)
        held = times > at
        same = np.flatnonzero(times == at)
        if len(same):
            ties = tie_keys(frame[self.id_column].iloc[same], self.cut.seed)
            held[same[ties > self.cut.tie]] = True
            tied = same[ties == self.cut.tie]
            held[tied[np.isin(tied + first, self.exact)]] = True
        return held


def _held_count(frame: pd.DataFrame, *, first: int, rule: CutRule) -> int:
    return int(np.count_nonzero(rule.held(frame, first)))


def _held_positions(
    frame: pd.DataFrame, *, first: int, rule: CutRule, held: bool, indices: np.ndarray
) -> np.ndarray:
    mask = rule.held(frame, first)
    return np.flatnonzero(mask if held else ~mask)[indices] + first


def _tied_positions(frame: pd.DataFrame, *, first: int, ties: TiesAt, tie: int) -> np.ndarray:
    at = np.flatnonzero(TimesOf(ties.time_column)(frame) == ties.time)
    return at[ties(frame) == tie] + first


@dataclass(frozen=True)
class Holdout:
    """The rows of a batch held out, known by their cut and counted per partition: rows are
    found where they live, one partition at a time."""

    batch: ValidatedBatch
    rule: CutRule | None  # None: an empty batch
    held_by_part: list[int]
    rows_by_part: list[int]

    @property
    def cut(self) -> HoldoutCut | None:
        return None if self.rule is None else self.rule.cut

    @property
    def held(self) -> int:
        return sum(self.held_by_part)

    @property
    def rest(self) -> int:
        return sum(self.rows_by_part) - self.held

    def positions(self, *, held: bool, indices: np.ndarray | None = None) -> np.ndarray:
        """Sorted batch positions of the held (or the other) rows at sorted `indices` among
        them (None: all of them)."""
        if self.rule is None:
            return np.zeros(0, dtype=int)
        pairs = zip(self.rows_by_part, self.held_by_part, strict=True)
        counts = self.held_by_part if held else [n - h for n, h in pairs]
        wanted = np.arange(sum(counts)) if indices is None else np.asarray(indices)
        parts = self.batch.map_parts(
            _held_positions,
            self.rule.columns,
            each={"indices": local_indices(wanted, counts)},
            rule=self.rule,
            held=held,
        )
        return np.concatenate([np.zeros(0, dtype=int), *parts])


def local_indices(indices: np.ndarray, counts: list[int]) -> list[np.ndarray]:
    """Sorted indices among rows counted per partition, split by partition and made relative to
    each partition's first counted row."""
    starts = np.cumsum([0, *counts])
    return [indices[(indices >= a) & (indices < b)] - a for a, b in zip(starts[:-1], starts[1:], strict=True)]


def holdout_of(
    batch: ValidatedBatch, time_column: str, id_column: str, fraction: float, seed: int
) -> Holdout:
    """The newest `fraction` of a batch's rows in the order (time, seeded hash of the id). Rows
    that share a timestamp (a monthly snapshot) are split between holdout and training by the
    hash, never all to one side; a batch of two rows or more keeps at least one of each. Every
    held-out row is at least as new as every other row."""
    n = batch.rows
    sizes = batch.part_rows()
    if n == 0:
        return Holdout(batch, None, [0] * len(sizes), sizes)
    held = min(max(1, round(n * fraction)), max(n - 1, 1))
    time = kth_smallest(batch, TimesOf(time_column), n - held)
    held_at_cut = held - (n - time.smaller - time.equal)
    ties = TiesAt(time_column, id_column, seed, time.value)
    tie = kth_smallest(batch, ties, time.equal - held_at_cut)
    # rows sharing the cut's time and tie key keep their order: the last of them are held
    tied = np.concatenate(batch.map_parts(_tied_positions, ties.columns, ties=ties, tie=tie.value))
    exact = tied[time.equal - held_at_cut - tie.smaller :]
    rule = CutRule(HoldoutCut(pd.Timestamp(time.value), tie.value, seed), time_column, id_column, exact)
    return Holdout(batch, rule, batch.map_parts(_held_count, rule.columns, rule=rule), sizes)


def sample_positions(n: int, most: int | None, seed: int | np.random.Generator) -> np.ndarray | None:
    """Sorted positions of a uniform sample of `most` of `n` rows, drawn from `seed` (or from a
    generator shared between draws); None keeps them all."""
    if most is None or n <= most:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=most, replace=False))


def sampled(frame: pd.DataFrame, most: int | None, seed: int | np.random.Generator) -> pd.DataFrame:
    """At most `most` rows of `frame`, a uniform sample in their order."""
    keep = sample_positions(len(frame), most, seed)
    return frame if keep is None else frame.take(keep)


def kept_labelled(holdout: Holdout, most: int | None, seed: int) -> tuple[np.ndarray | None, np.ndarray]:
    """Positions kept of the newest labelled batch (None: every row), and those of them held
    out: at most `most`, drawn separately from the held-out rows and the rest in their
    proportions, so that both are uniform samples and the holdout is never emptied."""
    n = holdout.held + holdout.rest
    if most is None or n <= most:
        return None, holdout.positions(held=True)
    keep_held = min(holdout.held, max(1, round(most * holdout.held / n)))
    rng = np.random.default_rng(seed)
    held = np.sort(rng.choice(holdout.held, size=keep_held, replace=False))
    rest = np.sort(rng.choice(holdout.rest, size=min(holdout.rest, most - keep_held), replace=False))
    held_kept = holdout.positions(held=True, indices=held)
    return np.sort(np.concatenate([held_kept, holdout.positions(held=False, indices=rest)])), held_kept


class ValidatedBatch(Protocol):
    """A validated batch as split reads it: schema.Batch (one frame in this process), or its
    partitions on a cluster (engine.batches.PartitionedBatch)."""

    period: str
    labelled: bool
    source: str
    dropped_duplicates: int
    dropped_blank_labels: int

    @property
    def rows(self) -> int: ...

    def part_rows(self) -> list[int]:
        """How many rows each partition holds, in order."""
        ...

    def map_parts(
        self,
        func: Callable[..., Any],
        columns: list[str] | None,
        each: dict[str, list[Any]] | None = None,
        **kwargs: Any,
    ) -> list[Any]:
        """[func(partition's `columns` (None: all), first=its first row's position, **each's
        values for it, **kwargs) for each partition], in order."""
        ...

    def spill_paths(self, name: str) -> list[str | None]:
        """Per partition, a file beside it (in the Dask scratch directory, which every worker
        reads) where a task may keep what it made of the partition as `name`; None in-process."""
        ...

    def run_tasks(self, func: Callable[..., Any], calls: list[dict[str, Any]]) -> list[Any]:
        """[func(**kwargs) for kwargs in calls], run where the partitions live, in order."""
        ...

    def as_rows(self) -> Rows:
        """The batch as the statistics read a batch (engine.rows.Rows), where it lives."""
        ...

    def take(self, positions: np.ndarray | None) -> pd.DataFrame: ...

    def take_many(self, positions: list[np.ndarray | None]) -> list[pd.DataFrame]:
        """[take(p) for p in positions], reading each part of the batch once."""
        ...

    def observed(self) -> dict[str, Any]: ...


def window_positions(
    parts: list[tuple[ValidatedBatch, int, Holdout | None]], keep: np.ndarray | None
) -> list[np.ndarray | None]:
    """Per part, the positions of its batch that the rows at `keep` (None: all) of the parts
    laid end to end come from; each part given as a batch, how many of its rows count, and
    its holdout when only the rows before it count (None: every row)."""
    chosen: list[np.ndarray | None] = []
    start = 0
    for _, rows, holdout in parts:
        wanted = None if keep is None else keep[(keep >= start) & (keep < start + rows)] - start
        start += rows
        chosen.append(wanted if holdout is None else holdout.positions(held=False, indices=wanted))
    return chosen


def joined(pieces: list[pd.DataFrame]) -> pd.DataFrame:
    pieces = [piece for piece in pieces if len(piece)] or pieces[:1]
    if len(pieces) == 1:
        return pieces[0].reset_index(drop=True)
    return pd.concat(pieces, ignore_index=True)


def split(
    batches: Sequence[ValidatedBatch], schema: Schema, policy: WindowPolicy, files: int | None = None
) -> Split:
    """Newest batch, newest labelled batch, training window and holdout.

    `files` is how many batch files exist when only the window's batches were read.
    """
    if not batches:
        raise DataError("no batch found; expected at least one file in the raw data directory")
    batches = sorted(batches, key=lambda b: b.period)
    check_periods((batch.period, batch.source) for batch in batches)
    labelled = [b for b in batches if b.labelled]
    if not labelled:
        raise DataError(
            f"no labelled batch among {len(batches)}; expected at least one batch "
            f"with the column {schema.target!r} filled"
        )
    newest, last = batches[-1], labelled[-1]
    held_out = holdout_of(last, schema.time, schema.id, policy.holdout_fraction, policy.seed)
    kept, held = kept_labelled(held_out, policy.max_labelled_rows, policy.seed)
    early = held_out.rest
    previous = labelled[:-1]
    if policy.kind == "last_n":
        previous = previous[-(policy.batches - 1) :] if policy.batches > 1 else []
    parts: list[tuple[ValidatedBatch, int, Holdout | None]] = [(b, b.rows, None) for b in previous]
    parts += [(last, early, held_out)] if early else []
    if not parts:
        raise TooFewRows(
            f"no training rows: the only labelled batch ({last.period}) has "
            f"{last.rows} row(s), all needed for the holdout; add an earlier "
            "labelled batch or more rows to this one"
        )
    window_rows = sum(rows for _, rows, _ in parts)
    chosen = window_positions(parts, sample_positions(window_rows, policy.max_train_rows, policy.seed))
    # The newest labelled batch is read once for its three uses: kept, held out, trained on.
    newest_labelled, holdout, *trained_last = last.take_many([kept, held, *chosen[len(previous) :]])
    train = joined(
        [b.take(rows) for b, rows in zip(previous, chosen[: len(previous)], strict=True)] + trained_last
    )
    train[schema.target] = train[schema.target].astype("int8")
    holdout = holdout.reset_index(drop=True)
    holdout[schema.target] = holdout[schema.target].astype("int8")
    window = [b.period for b in previous] + ([last.period] if early else [])
    summary = {
        "batches": files if files is not None else len(batches),
        "batches_read": len(batches),
        "labelled_batches_read": len(labelled),
        "newest_period": newest.period,
        "newest_labelled": newest.labelled,
        "newest_rows": newest.rows,
        "holdout_period": last.period,
        "holdout_rows": len(holdout),
        "holdout_from": str(holdout[schema.time].min()),
        "holdout_cut": held_out.cut.as_dict() if held_out.cut else None,
        "labelled_rows": len(newest_labelled),
        "labelled_batch_rows": last.rows,
        "train_rows": len(train),
        "train_window_rows": window_rows,
        "train_periods": window,
        "train_until": str(train[schema.time].max()),
        "duplicates_dropped": sum(b.dropped_duplicates for b in batches),
        "blank_labels_dropped": sum(b.dropped_blank_labels for b in batches),
        "newest_observed": newest.observed(),
    }
    return Split(newest, newest_labelled, train, holdout, summary)


def row_fingerprints(rows: pd.DataFrame, schema: Schema) -> np.ndarray:
    """A 64-bit hash of each row's id, features and label, in row order."""
    columns = [schema.id, *schema.features, schema.target]
    return pd.util.hash_pandas_object(rows[columns], index=False).to_numpy()


def trained_fingerprints(train: pd.DataFrame, schema: Schema) -> np.ndarray:
    """What a model keeps of its training rows: their fingerprints, sorted and unique."""
    return np.unique(row_fingerprints(train, schema))
