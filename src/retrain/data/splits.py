"""The training window and the time-ordered holdout, from validated batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from retrain.data.files import batch_stem
from retrain.data.schema import Schema
from retrain.errors import DataError
from retrain.params import validated


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
        """The cut at the first row of a holdout, in the order holdout_split uses."""
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


def holdout_split(
    frame: pd.DataFrame, time_col: str, id_col: str, fraction: float, seed: int
) -> tuple[np.ndarray, HoldoutCut | None]:
    """The newest `fraction` of rows in the order (time, seeded hash of the id), and where it
    begins. Rows that share a timestamp (a monthly snapshot) are split between holdout and
    training by the hash, never all to one side; a batch of two rows or more keeps at least one
    of each. Every held-out row is at least as new as every other row."""
    times = frame[time_col].to_numpy(dtype="datetime64[ns]").view("int64")
    return holdout_of_times(times, lambda at: tie_keys(frame[id_col].iloc[at], seed), fraction, seed)


def holdout_of_times(
    times: np.ndarray, ties_at: Callable[[np.ndarray], np.ndarray], fraction: float, seed: int
) -> tuple[np.ndarray, HoldoutCut | None]:
    """holdout_split from the rows' times (int64 nanoseconds) and a function giving the tie
    keys of the rows at some positions: only the rows at the cut's timestamp need them."""
    n = len(times)
    if n == 0:
        return np.zeros(0, dtype=bool), None
    held = min(max(1, round(n * fraction)), max(n - 1, 1))
    cut_time = np.partition(times, n - held)[n - held]
    mask = times > cut_time
    at = np.flatnonzero(times == cut_time)
    ties = ties_at(at)
    order = np.argsort(ties, kind="stable")
    need = held - int(np.count_nonzero(mask))
    mask[at[order[len(at) - need :]]] = True
    return mask, HoldoutCut(pd.Timestamp(cut_time), int(ties[order[len(at) - need]]), seed)


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


def kept_labelled(held_out: np.ndarray, most: int | None, seed: int) -> np.ndarray | None:
    """Positions kept of the newest labelled batch: at most `most`, drawn separately from the
    held-out rows and the rest in their proportions, so that both are uniform samples and the
    holdout is never emptied; None keeps every row."""
    n = len(held_out)
    if most is None or n <= most:
        return None
    held = np.flatnonzero(held_out)
    rest = np.flatnonzero(~held_out)
    keep_held = min(len(held), max(1, round(most * len(held) / n)))
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(held, size=keep_held, replace=False),
        rng.choice(rest, size=min(len(rest), most - keep_held), replace=False),
    ]
    return np.sort(np.concatenate(chosen))


class ValidatedBatch(Protocol):
    """A validated batch as split reads it: schema.Batch (one frame in this process), or its
    partitions on a cluster (engine.batches.PartitionedBatch)."""

    period: str
    labelled: bool
    source: str
    dropped_duplicates: int

    @property
    def rows(self) -> int: ...

    def times(self, column: str) -> np.ndarray: ...

    def tie_keys(self, positions: np.ndarray, id_column: str, seed: int) -> np.ndarray: ...

    def take(self, positions: np.ndarray | None) -> pd.DataFrame: ...

    def take_many(self, positions: list[np.ndarray | None]) -> list[pd.DataFrame]:
        """[take(p) for p in positions], reading each part of the batch once."""
        ...

    def observed(self) -> dict[str, Any]: ...


def window_positions(
    parts: list[tuple[ValidatedBatch, np.ndarray | None]], keep: np.ndarray | None
) -> list[np.ndarray | None]:
    """Per part, the positions of its batch that the rows at `keep` (None: all) of the parts
    laid end to end come from; each part given as a batch and the positions of it that count
    (None: every row)."""
    chosen: list[np.ndarray | None] = []
    start = 0
    for batch, positions in parts:
        if keep is None:
            chosen.append(positions)
            continue
        rows = np.arange(batch.rows) if positions is None else positions
        end = start + len(rows)
        chosen.append(rows[keep[(keep >= start) & (keep < end)] - start])
        start = end
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
    held_out, cut = holdout_of_times(
        last.times(schema.time),
        lambda at: last.tie_keys(at, schema.id, policy.seed),
        policy.holdout_fraction,
        policy.seed,
    )
    kept = kept_labelled(held_out, policy.max_labelled_rows, policy.seed)
    early = np.flatnonzero(~held_out)
    previous = labelled[:-1]
    if policy.kind == "last_n":
        previous = previous[-(policy.batches - 1) :] if policy.batches > 1 else []
    parts: list[tuple[ValidatedBatch, np.ndarray | None]] = [(b, None) for b in previous]
    parts += [(last, early)] if len(early) else []
    if not parts:
        raise DataError(
            f"no training rows: the only labelled batch ({last.period}) has "
            f"{last.rows} row(s), all needed for the holdout; add an earlier "
            "labelled batch or more rows to this one"
        )
    window_rows = sum(batch.rows if rows is None else len(rows) for batch, rows in parts)
    chosen = window_positions(parts, sample_positions(window_rows, policy.max_train_rows, policy.seed))
    held = np.flatnonzero(held_out) if kept is None else kept[held_out[kept]]
    # The newest labelled batch is read once for its three uses: kept, held out, trained on.
    newest_labelled, holdout, *trained_last = last.take_many([kept, held, *chosen[len(previous) :]])
    train = joined(
        [b.take(rows) for b, rows in zip(previous, chosen[: len(previous)], strict=True)] + trained_last
    )
    train[schema.target] = train[schema.target].astype("int8")
    holdout = holdout.reset_index(drop=True)
    holdout[schema.target] = holdout[schema.target].astype("int8")
    window = [b.period for b in previous] + ([last.period] if len(early) else [])
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
        "holdout_cut": cut.as_dict() if cut else None,
        "labelled_rows": len(newest_labelled),
        "labelled_batch_rows": last.rows,
        "train_rows": len(train),
        "train_window_rows": window_rows,
        "train_periods": window,
        "train_until": str(train[schema.time].max()),
        "duplicates_dropped": sum(b.dropped_duplicates for b in batches),
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
