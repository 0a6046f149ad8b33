"""The small numeric files that DVC shows as metrics (`reports/metrics/`), one row each in
`dvc metrics show`: the detailed records (per-feature statistics, reasons, SHAs) stay JSON
reports that are outputs, not metrics, so the tables stay a screen wide.

Every file shares the metric names (accuracy, recall, f1, roc_auc, brier, rows; precision only
when it is the primary metric), so `dvc metrics show` reads as one table: the champion on the
newest labelled rows (served), both models on the holdout, the decision's counts, and the mean
served metric of each backtest policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrain.data import files
from retrain.records import Decision, Promotion, Scores

DIRECTORY = Path("reports/metrics")
SERVED = DIRECTORY / "served.json"
DECISION = DIRECTORY / "decision.json"
HOLDOUT = DIRECTORY / "holdout"
BACKTEST = DIRECTORY / "backtest"


SHOWN = ("accuracy", "recall", "f1", "roc_auc", "brier")


def scores(values: Scores | None, primary: str) -> dict[str, float | int]:
    """A model's metrics, numbers only; empty for a model not scored."""
    if not values:
        return {}
    names = SHOWN if primary in SHOWN else (primary, *SHOWN)
    kept = {name: values[name] for name in names if values.get(name) is not None}
    return {**kept, "rows": int(values["rows"])} if "rows" in values else kept


def served(evaluation: dict[str, Any], primary: str) -> dict[str, float | int]:
    """The champion on the newest labelled rows it never trained on (empty at a cold start)."""
    return scores(evaluation.get("metrics"), primary)


def decided(decision: Decision, drift: list[dict[str, Any]] | None = None) -> dict[str, bool | int]:
    """Whether to retrain, how many triggers counted and how many features drifted."""
    rows = decision.get("drift") if drift is None else drift
    return {
        "retrain": bool(decision["retrain"]),
        "fired": len(decision["fired"]),
        "drifted": sum(1 for r in rows or [] if r.get("drifted")),
    }


def holdout(verdict: Promotion, primary: str) -> dict[str, dict[str, Any]]:
    """Champion and challenger on the same holdout, and the verdict on the challenger's row."""
    return {
        "champion": scores(verdict["champion"], primary),
        "challenger": {**scores(verdict["challenger"], primary), "promote": bool(verdict["promote"])},
    }


def backtest(summary: dict[str, Any], metric: str) -> dict[str, dict[str, float | int]]:
    """Per replayed policy: the mean served metric (under the metric's own name), the worst,
    retrains and promotions."""
    out: dict[str, dict[str, float | int]] = {}
    for name, values in summary.items():
        if not isinstance(values, dict) or "retrains" not in values:
            continue
        row = {
            metric: values.get(f"mean_{metric}"),
            f"worst_{metric}": values.get(f"worst_{metric}"),
            "retrains": values["retrains"],
            "promotions": values["promotions"],
        }
        out[name] = {k: v for k, v in row.items() if v is not None}
    return out


def write_each(directory: Path, rows: dict[str, dict[str, Any]]) -> None:
    """One file per row (`<name>.json`), so that each is a row of `dvc metrics show`."""
    for name, values in rows.items():
        files.write_json(directory / f"{name}.json", values)
