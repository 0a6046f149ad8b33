"""Scores of a model on labelled rows, and the champion-versus-challenger verdict."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

LOWER_IS_BETTER = frozenset({"brier"})
# What a model that gives every row the same score gets, where that does not depend on the rows:
# without a model in production nobody is ranked, which is no better than such a model.
NO_SKILL = {"roc_auc": 0.5}


def threshold_counts(y_true: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positives when every row scored at or above a probability is called
    positive, at each distinct probability from the highest down (one sort)."""
    order = np.argsort(proba, kind="stable")[::-1]
    ranked = proba[order]
    ends = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]
    tps = np.cumsum(y_true[order], dtype=float)[ends]
    return 1 + ends - tps, tps


def roc_points(y_true: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates of the ROC curve from (0, 0), corners only: the points of
    scikit-learn's roc_curve. Needs both classes."""
    fps, tps = threshold_counts(y_true, proba)
    if len(fps) > 2:
        corner = np.r_[True, np.diff(fps, 2).astype(bool) | np.diff(tps, 2).astype(bool), True]
        fps, tps = fps[corner], tps[corner]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    return fps / fps[-1], tps / tps[-1]


def pr_points(y_true: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision at each distinct probability, recall falling to (0, 1): the points of
    scikit-learn's precision_recall_curve. Needs a positive row."""
    fps, tps = threshold_counts(y_true, proba)
    return np.r_[(tps / tps[-1])[::-1], 0.0], np.r_[(tps / (tps + fps))[::-1], 1.0]


def twice_u(y_true: np.ndarray, proba: np.ndarray) -> int:
    """Twice the Mann-Whitney U of the positives' probabilities against the negatives' (a pair
    ranked right counts 2, a tie 1), an exact integer: ROC AUC is it over 2 x positives x
    negatives, scikit-learn's trapezoidal area without its rounding."""
    if not len(proba):
        return 0
    order = np.argsort(proba, kind="stable")
    ranked = proba[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ranked)) + 1]
    positives = np.add.reduceat(np.asarray(y_true[order], dtype=np.int64), starts)
    negatives = np.diff(np.r_[starts, len(ranked)]) - positives
    below = np.cumsum(negatives) - negatives
    return int(np.dot(positives, 2 * below + negatives))


def auc_of(twice_u: int, positives: int, negatives: int) -> float:
    """ROC AUC from twice the Mann-Whitney U, exactly rounded."""
    return float(Fraction(twice_u, 2 * positives * negatives))


def roc_auc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Area under the ROC curve (scikit-learn's roc_auc_score), exactly rounded. Needs both classes."""
    positives = int(np.count_nonzero(y_true == 1))
    return auc_of(twice_u(y_true, proba), positives, len(y_true) - positives)


def exact_sum(values: np.ndarray) -> Fraction:
    """The sum of float64 values with no rounding, so that sums of parts add up to the same
    number in any grouping."""
    if not len(values):
        return Fraction(0)
    mantissa, exponent = np.frexp(np.asarray(values, dtype=float))
    digits = (mantissa * 2.0**53).astype(np.int64)
    order = np.argsort(exponent, kind="stable")
    exponent = exponent[order]
    starts = np.r_[0, np.flatnonzero(np.diff(exponent)) + 1]
    high = np.add.reduceat(digits[order] >> 26, starts)
    low = np.add.reduceat(digits[order] & ((1 << 26) - 1), starts)
    base = int(exponent[0]) - 53
    total = sum(
        ((int(h) << 26) + int(lo)) << (int(e) - 53 - base)
        for h, lo, e in zip(high, low, exponent[starts], strict=True)
    )
    return Fraction(total) * Fraction(2) ** base


@dataclass(frozen=True)
class Tally:
    """What score() counts of some labelled rows, added up over partitions in any grouping."""

    rows: int = 0
    positives: int = 0
    true_positives: int = 0
    called_positive: int = 0
    squared_error: Fraction = Fraction(0)

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.rows + other.rows,
            self.positives + other.positives,
            self.true_positives + other.true_positives,
            self.called_positive + other.called_positive,
            self.squared_error + other.squared_error,
        )

    @property
    def both_classes(self) -> bool:
        return 0 < self.positives < self.rows


def tally(y_true: np.ndarray, proba: np.ndarray, threshold: float) -> Tally:
    pred = proba >= threshold
    positive = y_true == 1
    return Tally(
        rows=len(y_true),
        positives=int(np.count_nonzero(positive)),
        true_positives=int(np.count_nonzero(pred & positive)),
        called_positive=int(np.count_nonzero(pred)),
        squared_error=exact_sum((proba - y_true) ** 2),
    )


def metrics_of(counts: Tally, twice_u: int | None) -> dict[str, Any]:
    """score()'s record from the counts and, with both classes, twice the Mann-Whitney U."""
    n, tp = counts.rows, counts.true_positives
    fp, fn = counts.called_positive - tp, counts.positives - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    auc = None
    if twice_u is not None and counts.both_classes:
        auc = round(auc_of(twice_u, counts.positives, n - counts.positives), 6)
    return {
        "rows": int(n),
        "positive_rate": round(counts.positives / n, 6) if n else None,
        "accuracy": round((n - fp - fn) / n, 6) if n else None,
        "precision": round(precision, 6),
        "recall": round(recall, 6),
        "f1": round(2 * tp / (2 * tp + fp + fn) if tp else 0.0, 6),
        "roc_auc": auc,
        "brier": round(float(counts.squared_error / n), 6) if n else None,
    }


def score(y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Accuracy, precision, recall, F1, ROC AUC and Brier score; AUC is None with one class.

    The four label metrics come from one count of true and false positives and negatives (as
    scikit-learn defines them, 0 where a denominator is 0); ROC AUC and the Brier score are
    computed exactly and rounded once, so a batch scored by partitions gives the same numbers
    (model.partitioned_score).
    """
    y_true = np.asarray(y_true).astype(int)
    proba = np.asarray(proba, dtype=float)
    counts = tally(y_true, proba, threshold)
    return metrics_of(counts, twice_u(y_true, proba) if counts.both_classes else None)


def recall_at_alerts(y_true: np.ndarray, proba: np.ndarray, alerts: int) -> float | None:
    """Recall when the `alerts` highest-scored rows are flagged; rows tied at the cut share the
    alerts left (the expected recall of breaking the tie at random). None without a positive."""
    y_true = np.asarray(y_true).astype(int)
    proba = np.asarray(proba, dtype=float)
    positives = int(np.count_nonzero(y_true == 1))
    if not positives:
        return None
    alerts = min(max(int(alerts), 0), len(proba))
    if not alerts:
        return 0.0
    cut = np.partition(proba, len(proba) - alerts)[len(proba) - alerts]
    above, tied = proba > cut, proba == cut
    caught = Fraction(int(np.count_nonzero(y_true[above] == 1)))
    caught += Fraction(
        int(np.count_nonzero(y_true[tied] == 1)) * (alerts - int(np.count_nonzero(above))),
        int(np.count_nonzero(tied)),
    )
    return round(float(caught / positives), 6)


def better_by(metric: str, new: float, old: float) -> float:
    """How much `new` beats `old` on `metric` (positive is better, whatever the direction)."""
    return (old - new) if metric in LOWER_IS_BETTER else (new - old)
