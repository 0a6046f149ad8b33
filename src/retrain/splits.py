"""The training window and the time-ordered holdout, from validated batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import DataError
from .schema import Batch, Schema


@dataclass(frozen=True)
class WindowPolicy:
    """Which labelled batches a challenger trains on, and how much of the newest is held out."""

    kind: str = "all"          # all | last_n
    batches: int = 6
    holdout_fraction: float = 0.4

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> WindowPolicy:
        policy = cls(
            kind=str(params.get("window", "all")),
            batches=int(params.get("window_batches", 6)),
            holdout_fraction=float(params.get("holdout_fraction", 0.4)),
        )
        if policy.kind not in {"all", "last_n"}:
            raise DataError(f"params.yaml: prepare.window is {policy.kind!r}, "
                            "expected 'all' or 'last_n'")
        if policy.batches < 1:
            raise DataError("params.yaml: prepare.window_batches must be at least 1")
        if not 0.0 < policy.holdout_fraction < 1.0:
            raise DataError("params.yaml: prepare.holdout_fraction must be between 0 and 1")
        return policy


@dataclass
class Split:
    newest: pd.DataFrame
    newest_labelled: pd.DataFrame
    train: pd.DataFrame
    holdout: pd.DataFrame
    summary: dict[str, Any]


def check_periods(named: Iterable[tuple[str, str]]) -> None:
    """One file per period, from (period, file) pairs."""
    seen: dict[str, str] = {}
    for period, source in named:
        if period in seen:
            raise DataError(f"{source}: period {period} already comes from {seen[period]}; "
                            "expected one file per period")
        seen[period] = source


def window_batches(paths: list[Path], read: Callable[[Path], Batch],
                   policy: WindowPolicy) -> list[Batch]:
    """The batches split needs, read newest first: for `last_n`, up to and including the n-th
    newest labelled batch (older files are never opened); for `all`, every batch."""
    check_periods((path.stem, str(path)) for path in paths)
    if policy.kind == "all":
        return [read(path) for path in paths]
    batches: list[Batch] = []
    labelled = 0
    for path in reversed(paths):
        batch = read(path)
        batches.append(batch)
        labelled += batch.labelled
        if labelled >= policy.batches:
            break
    return batches[::-1]


def holdout_mask(frame: pd.DataFrame, time_col: str, fraction: float) -> pd.Series:
    """The newest `fraction` of rows by time; every held-out row is strictly newer than the rest."""
    times = frame[time_col]
    cutoff = times.quantile(1.0 - fraction, interpolation="higher")
    mask = times >= cutoff
    if mask.all() or not mask.any():
        return pd.Series(True, index=frame.index)
    return mask


def split(batches: list[Batch], schema: Schema, policy: WindowPolicy,
          files: int | None = None) -> Split:
    """Newest batch, newest labelled batch, training window and holdout.

    `files` is how many batch files exist when only the window's batches were read.
    """
    if not batches:
        raise DataError("no batch found; expected at least one file in the raw data directory")
    batches = sorted(batches, key=lambda b: b.period)
    check_periods((batch.period, batch.source) for batch in batches)
    labelled = [b for b in batches if b.labelled]
    if not labelled:
        raise DataError(f"no labelled batch among {len(batches)}; expected at least one batch "
                        f"with the column {schema.target!r} filled")
    newest, last = batches[-1], labelled[-1]
    mask = holdout_mask(last.frame, schema.time, policy.holdout_fraction)
    holdout = last.frame.loc[mask]
    early = last.frame.loc[~mask]
    previous = labelled[:-1]
    if policy.kind == "last_n":
        previous = previous[-(policy.batches - 1):] if policy.batches > 1 else []
    parts = [b.frame for b in previous] + ([early] if len(early) else [])
    if not parts:
        raise DataError(f"no training rows: the only labelled batch ({last.period}) is all "
                        "holdout; add an earlier batch or lower prepare.holdout_fraction")
    train = parts[0].reset_index(drop=True) if len(parts) == 1 else pd.concat(parts, ignore_index=True)
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
        "newest_rows": len(newest.frame),
        "holdout_period": last.period,
        "holdout_rows": len(holdout),
        "holdout_from": str(holdout[schema.time].min()),
        "train_rows": len(train),
        "train_periods": window,
        "train_until": str(train[schema.time].max()),
        "duplicates_dropped": sum(b.dropped_duplicates for b in batches),
        "newest_observed": newest.observed(),
    }
    return Split(newest.frame, last.frame, train, holdout, summary)
