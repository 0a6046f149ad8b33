"""score() of a model over a batch's partitions without gathering a value per row.

Each partition scores its rows, counts what score() counts (model.metrics.Tally) and how many
positives and negatives fall in each of BINS equal ranges of probability, and keeps its scores
sorted: in memory in-process, in the Dask scratch directory on a cluster. ROC AUC (twice the
Mann-Whitney U) is then merged range by range: consecutive bins grouped into ranges of at most
RANGE_ROWS rows, each range read from every partition's sorted scores and ranked where the batch
lives, the ranges added with the negatives below them. A range of one bin that holds more rows is
read in rounds of at most RANGE_ROWS values, so no process holds more than that. Every count is
an integer and the squared error an exact fraction: the numbers do not depend on the partitions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from retrain.model.metrics import Tally, metrics_of, tally, twice_u

BINS = 4096
RANGE_ROWS = 1 << 20
SORTED = np.dtype([("p", "f8"), ("y", "i1")])


@dataclass(frozen=True)
class ScoredPart:
    """What a partition's scoring returns: its counts, its positives and negatives per bin of
    probability, and its scores sorted (SORTED rows, or the file that holds them)."""

    counts: Tally
    positives: np.ndarray
    negatives: np.ndarray
    ranked: np.ndarray | str


def bins_of(proba: np.ndarray) -> np.ndarray:
    """The bin of each probability: floor(p x BINS), exact since BINS is a power of two."""
    return np.clip(np.floor(proba * BINS), 0, BINS - 1).astype(np.int64)


def scored(y_true: np.ndarray, proba: np.ndarray, threshold: float, spill: str | None = None) -> ScoredPart:
    """A partition's labels and probabilities as a ScoredPart; with `spill`, its sorted scores
    are written there instead of returned."""
    order = np.argsort(proba, kind="stable")
    ranked = np.empty(len(proba), dtype=SORTED)
    ranked["p"], ranked["y"] = proba[order], y_true[order]
    bins = bins_of(ranked["p"])
    positive = ranked["y"] == 1
    counts = tally(y_true, proba, threshold)
    positives = np.bincount(bins[positive], minlength=BINS)
    negatives = np.bincount(bins[~positive], minlength=BINS)
    if spill is None:
        return ScoredPart(counts, positives, negatives, ranked)
    np.save(spill, ranked)
    return ScoredPart(counts, positives, negatives, spill)


def value_ranges(positives: np.ndarray, negatives: np.ndarray, most: int) -> list[tuple[float, float]]:
    """Consecutive bins grouped into ranges of probability [low, high) of at most `most` rows
    (a bin that holds more is a range of its own); the first open below, the last above."""
    held = positives + negatives
    edges, rows = [0], 0
    for b in range(BINS):
        if rows and rows + held[b] > most:
            edges.append(b)
            rows = 0
        rows += int(held[b])
    edges.append(BINS)
    bounds = [-np.inf, *(e / BINS for e in edges[1:-1]), np.inf]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


@dataclass
class RankedSoFar:
    """Twice the Mann-Whitney U of the scores added so far, and their positives and negatives;
    each group added must lie wholly above every score before it."""

    twice_u: int = 0
    positives: int = 0
    negatives: int = 0

    def add_above(self, twice_u_within: int, positives: int, negatives: int) -> None:
        self.twice_u += twice_u_within + 2 * positives * self.negatives
        self.positives += positives
        self.negatives += negatives


def _open(ranked: np.ndarray | str) -> np.ndarray:
    return np.load(ranked, mmap_mode="r") if isinstance(ranked, str) else ranked


def range_twice_u(
    ranked: list[np.ndarray | str], *, low: float, high: float, most: int = RANGE_ROWS
) -> tuple[int, int, int]:
    """Twice the Mann-Whitney U among the scores in [low, high) of every partition, and how many
    positives and negatives they are; read in rounds of at most `most` values (and `most`
    labels at a time for a run of one value)."""
    parts = [_open(r) for r in ranked]
    spans = [
        [int(np.searchsorted(p["p"], low, "left")), int(np.searchsorted(p["p"], high, "left"))] for p in parts
    ]
    chunk = max(1, most // max(1, len(parts)))
    so_far = RankedSoFar()
    while any(start < end for start, end in spans):
        nexts = [float(p["p"][s + chunk]) for p, (s, e) in zip(parts, spans, strict=True) if s + chunk < e]
        cut = min(nexts, default=np.inf)
        taken = []
        for part, span in zip(parts, spans, strict=True):
            end = span[0] + int(np.searchsorted(part["p"][span[0] : span[1]], cut, "left"))
            taken.append(np.asarray(part[span[0] : end]))
            span[0] = end
        rows = np.concatenate(taken) if taken else np.zeros(0, dtype=SORTED)
        pos = int(np.count_nonzero(rows["y"] == 1))
        so_far.add_above(twice_u(rows["y"], rows["p"]), pos, len(rows) - pos)
        if cut == np.inf:
            continue
        tie_pos = tie_rows = 0
        for part, span in zip(parts, spans, strict=True):
            end = span[0] + int(np.searchsorted(part["p"][span[0] : span[1]], cut, "right"))
            for start in range(span[0], end, most):
                labels = np.asarray(part["y"][start : min(start + most, end)])
                tie_pos += int(np.count_nonzero(labels == 1))
                tie_rows += len(labels)
            span[0] = end
        so_far.add_above(tie_pos * (tie_rows - tie_pos), tie_pos, tie_rows - tie_pos)  # every pair tied
    return so_far.twice_u, so_far.positives, so_far.negatives


Tasks = Callable[[Callable[..., Any], list[dict[str, Any]]], list[Any]]


def merged_metrics(parts: list[ScoredPart], tasks: Tasks, most: int = RANGE_ROWS) -> dict[str, Any]:
    """score()'s record of the rows of every part, its ROC AUC merged range by range by
    `tasks` (which runs a function on each set of keyword arguments, where the parts live)."""
    counts = sum((part.counts for part in parts), Tally())
    if not counts.both_classes:
        return metrics_of(counts, None)
    positives_per_bin = np.sum([part.positives for part in parts], axis=0)
    negatives_per_bin = np.sum([part.negatives for part in parts], axis=0)
    ranges = value_ranges(positives_per_bin, negatives_per_bin, most)
    ranked = [part.ranked for part in parts]
    pieces = tasks(
        range_twice_u, [{"ranked": ranked, "low": lo, "high": hi, "most": most} for lo, hi in ranges]
    )
    so_far = RankedSoFar()
    for piece in pieces:
        so_far.add_above(*piece)
    assert (so_far.positives, so_far.negatives) == (counts.positives, counts.rows - counts.positives)
    return metrics_of(counts, so_far.twice_u)


def remove_spilled(path: str) -> None:
    if os.path.exists(path):
        os.remove(path)
