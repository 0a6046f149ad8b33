"""Retraining triggers and the rule that combines them into one auditable decision."""

from __future__ import annotations

from typing import Any

from .errors import DataError
from .metrics import LOWER_IS_BETTER, METRICS


def trigger(name: str, enabled: bool, fired: bool, value: Any, threshold: Any,
            detail: str) -> dict[str, Any]:
    return {"name": name, "enabled": bool(enabled), "fired": bool(enabled and fired),
            "value": value, "threshold": threshold, "detail": detail}


def cold_start(evaluation: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Fires when there is no champion to serve."""
    has = evaluation.get("champion") is not None
    detail = (f"champion {evaluation['champion']['version']} in production" if has
              else "no champion yet: a first model is needed")
    return trigger("cold_start", params.get("enabled", True), not has, has, True, detail)


def performance(evaluation: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Fires when the champion's metric on the newest labelled rows it never saw is too low."""
    metric = str(params.get("metric", "roc_auc"))
    if metric not in METRICS:
        raise DataError(f"params.yaml: decide.performance.metric is {metric!r}, expected one of "
                        f"{', '.join(METRICS)}")
    threshold = float(params["threshold"])
    min_rows = int(params.get("min_rows", 1))
    enabled = bool(params.get("enabled", True))
    scores = evaluation.get("metrics")
    if evaluation.get("champion") is None or scores is None:
        return trigger(f"performance_{metric}", enabled, False, None, threshold,
                       evaluation.get("note", "no champion to evaluate"))
    value, rows = scores.get(metric), int(scores.get("rows", 0))
    if rows < min_rows:
        return trigger(f"performance_{metric}", enabled, False, value, threshold,
                       f"not enough data: {rows} unseen labelled rows, needs {min_rows}")
    if value is None:
        return trigger(f"performance_{metric}", enabled, False, None, threshold,
                       f"{metric} undefined on {evaluation.get('labelled_period')} (one class)")
    worse = value > threshold if metric in LOWER_IS_BETTER else value < threshold
    op = (">" if worse else "<=") if metric in LOWER_IS_BETTER else ("<" if worse else ">=")
    return trigger(f"performance_{metric}", enabled, worse, value, threshold,
                   f"{metric} {value:.4f} {op} {threshold} on {rows} rows of "
                   f"{evaluation.get('labelled_period')}")


def age(evaluation: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Fires when the champion's training data ended more than `max_batches` periods ago."""
    limit = int(params["max_batches"])
    enabled = bool(params.get("enabled", True))
    value = evaluation.get("champion_age")
    if value is None:
        return trigger("age", enabled, False, None, limit, "no champion, no age")
    return trigger("age", enabled, value > limit, value, limit,
                   f"champion trained through {evaluation['champion']['trained_through_period']}, "
                   f"{value} batch(es) before {evaluation['as_of']} (limit {limit})")


TRIGGERS = {"cold_start": cold_start, "performance": performance, "age": age}


def decide(evaluation: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Evaluate every configured trigger and combine them by the params rule."""
    rule = str(params.get("rule", "any"))
    if rule not in {"any", "at_least"}:
        raise DataError(f"params.yaml: decide.rule is {rule!r}, expected 'any' or 'at_least'")
    min_fired = int(params.get("min_fired", 1))
    if min_fired < 1:
        raise DataError("params.yaml: decide.min_fired must be at least 1")
    results = [fn(evaluation, params.get(name) or {}) for name, fn in TRIGGERS.items()
               if name in params]
    fired = [t for t in results if t["fired"]]
    cold = any(t["name"] == "cold_start" and t["fired"] for t in results)
    needed = 1 if rule == "any" else min_fired
    retrain = cold or len(fired) >= needed
    rule_text = "any trigger fires" if rule == "any" else f"at least {needed} triggers fire"
    if cold:
        reason = "cold start: no champion"
    elif retrain:
        reason = "retrain: " + ", ".join(t["name"] for t in fired)
    else:
        reason = f"keep the champion: {len(fired)} trigger(s) fired, rule is {rule_text}"
    return {"retrain": retrain, "as_of": evaluation.get("as_of"), "rule": rule_text,
            "reason": reason, "fired": [t["name"] for t in fired], "triggers": results}
