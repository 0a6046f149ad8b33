"""Scores of a model on labelled rows, and the champion-versus-challenger verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .params import CompareParams, validated

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


@dataclass(frozen=True)
class ComparePolicy:
    """How compare judges; the defaults are params.yaml's `compare` defaults."""

    primary: str = "roc_auc"
    min_improvement: float = CompareParams().min_improvement
    guards: dict[str, float] = field(default_factory=lambda: dict(CompareParams().guards))
    minimums: dict[str, float] = field(default_factory=lambda: dict(CompareParams().minimums))
    min_holdout_rows: int = CompareParams().min_holdout_rows

    @classmethod
    def from_params(cls, primary: str, params: dict[str, Any]) -> ComparePolicy:
        params = validated("compare", params)
        primary = validated("metrics", {"primary": primary})["primary"]
        return cls(
            primary=primary,
            min_improvement=params["min_improvement"],
            min_holdout_rows=params["min_holdout_rows"],
            guards=params["guards"],
            minimums=params["minimums"],
        )


def _meets(name: str, value: float | None, floor: float) -> bool:
    return value is not None and (value <= floor if name in LOWER_IS_BETTER else value >= floor)


def _beats(name: str, challenger: dict[str, Any], champion: dict[str, Any]) -> bool:
    new, old = challenger.get(name), champion.get(name)
    return new is not None and (old is None or better_by(name, new, old) > 0)


def minimum_failures(metrics: dict[str, Any], minimums: dict[str, float]) -> list[tuple[str, str]]:
    """The minimums that `metrics` fails, each with a readable phrase. A challenger below a
    minimum is still promoted when the champion, on the same holdout, is further below it: the
    floor keeps weak models out of production, not a worse one in."""
    failed = []
    for name, floor in minimums.items():
        value = metrics.get(name)
        if not _meets(name, value, floor):
            sign = "<=" if name in LOWER_IS_BETTER else ">="
            failed.append((name, f"{name} {value} is not {sign} {floor}"))
    return failed


def _guard_detail(name: str, champion: float, challenger: float, drop: float, margin: float) -> str:
    """`brier 0.1998 -> 0.1929 (better by 0.0069)`: the change said the way it went."""
    change = (
        f"worse by {drop:.4f}, allowed {margin:.4f}"
        if drop > 0
        else f"better by {-drop:.4f}"
        if drop < 0
        else f"unchanged, allowed to fall {margin:.4f}"
    )
    return f"{name} {champion:.4f} -> {challenger:.4f} ({change})"


def verdict(
    champion: dict[str, Any] | None, challenger: dict[str, Any] | None, policy: ComparePolicy
) -> dict[str, Any]:
    """Promote only a challenger that meets the minimums, beats the champion and breaks no guard."""
    checks: list[dict[str, Any]] = []
    if challenger is None:
        return {
            "promote": False,
            "reason": "no challenger was trained",
            "checks": checks,
            "improvement": None,
        }
    rows = challenger.get("rows")
    if rows is not None and rows < policy.min_holdout_rows:
        return {
            "promote": False,
            "undecided": True,
            "checks": checks,
            "improvement": None,
            "reason": f"undecided: the holdout has {rows} rows, fewer than "
            f"compare.min_holdout_rows ({policy.min_holdout_rows})",
        }
    for name, failure in minimum_failures(challenger, policy.minimums):
        below_too = (
            champion is not None
            and not _meets(name, champion.get(name), policy.minimums[name])
            and _beats(name, challenger, champion)
        )
        checks.append(
            {
                "check": "minimum",
                "passed": below_too,
                "detail": failure
                + (f", but the champion's {champion.get(name)} is further from it" if below_too else ""),
            }
        )
    if champion is None:
        failed = [c for c in checks if not c["passed"]]
        if failed:
            return {
                "promote": False,
                "checks": checks,
                "improvement": None,
                "reason": "no champion, but the challenger fails: " + failed[0]["detail"],
            }
        return {
            "promote": True,
            "checks": checks,
            "improvement": None,
            "reason": "no champion yet; the challenger meets every minimum",
        }
    primary = policy.primary
    new, old = challenger.get(primary), champion.get(primary)
    if new is None or old is None:
        return {
            "promote": False,
            "checks": checks,
            "improvement": None,
            "reason": f"{primary} is undefined on this holdout (one class only)",
        }
    gain = round(better_by(primary, new, old), 6)
    checks.append(
        {
            "check": "improvement",
            "metric": primary,
            "passed": gain >= policy.min_improvement,
            "detail": f"{primary} {old} -> {new} ({gain:+.4f}, needs >= {policy.min_improvement:+.4f})",
        }
    )
    for name, margin in policy.guards.items():
        a, b = champion.get(name), challenger.get(name)
        if a is None or b is None:
            continue
        drop = round(-better_by(name, b, a), 6)
        checks.append(
            {
                "check": "guard",
                "metric": name,
                "passed": drop <= margin,
                "detail": _guard_detail(name, a, b, drop, margin),
            }
        )
    failed = [c for c in checks if not c["passed"]]
    guarded = [c["metric"] for c in checks if c["check"] == "guard"]
    checked = f"; guards checked: {', '.join(guarded)}" if guarded else ""
    if failed:
        return {
            "promote": False,
            "checks": checks,
            "improvement": gain,
            "reason": "champion stays: " + "; ".join(c["detail"] for c in failed) + checked,
        }
    improvement = next(c for c in checks if c["check"] == "improvement")
    return {
        "promote": True,
        "checks": checks,
        "improvement": gain,
        "reason": f"challenger beats champion: {improvement['detail']}{checked}, none broken",
    }
