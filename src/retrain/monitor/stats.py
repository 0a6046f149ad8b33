"""Multiple-test corrections and the two-proportion test: numpy and the standard library only,
so that the decide stage starts fast."""

from __future__ import annotations

import math

import numpy as np


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z, as scipy.special.ndtr(-z) computes it."""
    x = -z / math.sqrt(2)
    if abs(x) < 1 / math.sqrt(2):
        return 0.5 + 0.5 * math.erf(x)
    tail = 0.5 * math.erfc(abs(x))
    return 1.0 - tail if x > 0 else tail


def adjust(p_values: list[float], method: str) -> list[float]:
    """Holm or Benjamini-Hochberg adjusted p-values, in the input order."""
    if not p_values:
        return []
    p = np.asarray(p_values, dtype=float)
    if method == "bh":
        from scipy import stats

        return [float(x) for x in stats.false_discovery_control(p, method="bh")]
    if method != "holm":
        raise ValueError(f"unknown correction {method!r}")
    order = np.argsort(p)
    m = len(p)
    adjusted = np.maximum.accumulate(np.minimum((m - np.arange(m)) * p[order], 1.0))
    out = np.empty(m)
    out[order] = adjusted
    return [float(x) for x in out]


def two_proportions(k1: int, n1: int, k2: int, n2: int, alternative: str) -> float | None:
    """p-value of the z-test that proportion 1 differs from (or is greater than) proportion 2."""
    if n1 == 0 or n2 == 0:
        return None
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (k1 / n1 - k2 / n2) / se
    return normal_sf(z) if alternative == "greater" else 2 * normal_sf(abs(z))


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Standard error of a ROC AUC (Hanley and McNeil, 1982)."""
    if positives < 1 or negatives < 1:
        return math.inf
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / (
        positives * negatives
    )
    return math.sqrt(max(variance, 0.0))


def proportion_standard_error(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n) if n else math.inf


def drop_p_value(before: float, se_before: float, after: float, se_after: float) -> float:
    """One-sided p-value that a metric fell from `before` to `after` (independent samples)."""
    se = math.hypot(se_before, se_after)
    if se == 0 or not math.isfinite(se):
        return 1.0 if not math.isfinite(se) or after >= before else 0.0
    return normal_sf((before - after) / se)
