"""Scores of a model on labelled rows, and the champion-versus-challenger verdict."""

from __future__ import annotations

from typing import Any

import numpy as np

LOWER_IS_BETTER = frozenset({"brier"})


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


def roc_auc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Area under the ROC curve by the trapezoidal rule (scikit-learn's roc_auc_score)."""
    fpr, tpr = roc_points(y_true, proba)
    return float(np.trapezoid(tpr, fpr))


def score(y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Accuracy, precision, recall, F1, ROC AUC and Brier score; AUC is None with one class.

    The four label metrics come from one count of true and false positives and negatives (as
    scikit-learn defines them, 0 where a denominator is 0).
    """
    y_true = np.asarray(y_true).astype(int)
    proba = np.asarray(proba, dtype=float)
    pred = proba >= threshold
    positive = y_true == 1
    positives = int(np.count_nonzero(positive))
    tp = int(np.count_nonzero(pred & positive))
    fp = int(np.count_nonzero(pred)) - tp
    fn = positives - tp
    n = len(y_true)
    both = 0 < positives < n
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "rows": int(n),
        "positive_rate": round(float(y_true.mean()), 6) if n else None,
        "accuracy": round((n - fp - fn) / n, 6) if n else None,
        "precision": round(precision, 6),
        "recall": round(recall, 6),
        "f1": round(2 * tp / (2 * tp + fp + fn) if tp else 0.0, 6),
        "roc_auc": round(roc_auc(y_true, proba), 6) if both else None,
        "brier": round(float(np.mean((proba - y_true) ** 2)), 6) if n else None,
    }


def better_by(metric: str, new: float, old: float) -> float:
    """How much `new` beats `old` on `metric` (positive is better, whatever the direction)."""
    return (old - new) if metric in LOWER_IS_BETTER else (new - old)
