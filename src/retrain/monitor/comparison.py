"""Champion against challenger on the same holdout: the verdict compare records and promote applies."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from retrain.data.schema import PERIOD, Schema
from retrain.model.metrics import LOWER_IS_BETTER, better_by, recall_at_alerts, score
from retrain.monitor.evaluation import curve_points, plot_sample, scored_frame
from retrain.params import CompareParams, validated
from retrain.records import Promotion


@dataclass(frozen=True)
class ComparePolicy:
    """How compare judges; the defaults are params.yaml's `compare` defaults."""

    primary: str = "roc_auc"
    min_improvement: float = CompareParams().min_improvement
    guards: dict[str, float] = field(
        default_factory=lambda: {str(k): v for k, v in CompareParams().guards.items()}
    )
    minimums: dict[str, float] = field(
        default_factory=lambda: {str(k): v for k, v in CompareParams().minimums.items()}
    )
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


def too_few_to_judge(rows: int, min_holdout_rows: int) -> str | None:
    """Why compare cannot judge a challenger on a holdout of `rows` rows, or None. Known before
    any training: the train stage and the backtest fit no challenger that compare cannot judge."""
    if rows >= min_holdout_rows:
        return None
    return (
        f"undecided: the holdout has {rows} rows, fewer than compare.min_holdout_rows "
        f"({min_holdout_rows}); a challenger is judged once the newest labelled batch's holdout "
        "(prepare.holdout_fraction of its rows) holds that many"
    )


Window = tuple[tuple[str, ...], int]


def learned_from(periods: Sequence[str] | None, rows: int | None) -> Window | None:
    """The window a model learned from: its periods and training rows."""
    return None if not periods or rows is None else (tuple(str(p) for p in periods), int(rows))


def window_of(metadata: Mapping[str, Any] | None) -> Window | None:
    """learned_from, as a model's metadata records it."""
    window = (metadata or {}).get("window") or {}
    return learned_from(window.get("periods"), window.get("rows"))


def verdict(
    champion: dict[str, Any] | None,
    challenger: dict[str, Any] | None,
    policy: ComparePolicy,
    *,
    windows: tuple[Window | None, Window | None] = (None, None),
) -> dict[str, Any]:
    """Promote only a challenger that meets the minimums, beats the champion and breaks no guard.
    A challenger within `min_improvement` below the champion is promoted for the newer data it
    learned from; one that learned from the champion's own window (`windows`: the champion's
    and the challenger's; a forced retrain) must do better than the champion."""
    checks: list[dict[str, Any]] = []
    if challenger is None:
        return {
            "promote": False,
            "reason": "no challenger was trained",
            "checks": checks,
            "improvement": None,
        }
    rows = challenger.get("rows")
    undecided = None if rows is None else too_few_to_judge(rows, policy.min_holdout_rows)
    if undecided:
        return {
            "promote": False,
            "undecided": True,
            "checks": checks,
            "improvement": None,
            "reason": undecided,
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
                + (
                    f", but the champion's {(champion or {}).get(name)} is further from it"
                    if below_too
                    else ""
                ),
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
    strict = windows[0] is not None and windows[0] == windows[1] and policy.min_improvement <= 0
    needs = (
        "needs > +0.0000: it learned from the champion's own window"
        if strict
        else f"needs >= {policy.min_improvement:+.4f}"
    )
    checks.append(
        {
            "check": "improvement",
            "metric": primary,
            "passed": gain > 0 if strict else gain >= policy.min_improvement,
            "detail": f"{primary} {old} -> {new} ({gain:+.4f}, {needs})",
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
    why = (
        "challenger beats champion"
        if gain > 0
        else "challenger, trained on newer data, is within compare.min_improvement of the champion"
    )
    return {
        "promote": True,
        "checks": checks,
        "improvement": gain,
        "reason": f"{why}: {improvement['detail']}{checked}, none broken",
    }


def stored_probabilities(stored: pd.DataFrame, ids: pd.Series, id_column: str) -> np.ndarray | None:
    """The stored probability of each id in `ids`, in their order; None when one is missing or
    the stored ids repeat."""
    index = pd.Index(stored[id_column])
    if not index.is_unique:
        return None
    found = index.get_indexer(ids)
    if (found < 0).any():
        return None
    return stored["probability"].to_numpy(dtype=float)[found]


def holdout_probabilities(
    model_md5: str | None,
    stored: pd.DataFrame,
    stored_md5: str | None,
    holdout_ids: pd.Series,
    id_column: str,
    score: Callable[[], np.ndarray],
) -> np.ndarray | None:
    """A model's probabilities on the holdout: those an earlier stage stored for the same model
    (same md5) when they cover every holdout row, otherwise `score()`; None without a model.
    The same model on the same rows gives the same probabilities, so nothing is scored twice."""
    if model_md5 is None:
        return None
    if stored_md5 == model_md5:
        found = stored_probabilities(stored, holdout_ids, id_column)
        if found is not None:
            return found
    return score()


def compare(
    probabilities: dict[str, np.ndarray | None],
    holdout: pd.DataFrame,
    schema: Schema,
    threshold: float,
    policy: ComparePolicy,
    *,
    windows: tuple[Window | None, Window | None] = (None, None),
) -> tuple[Promotion, dict[str, Any]]:
    """Both models' probabilities on the same holdout rows: the promotion record and, per role,
    the plot data (ROC and precision-recall points, per-row scores), or None for a missing model.
    With both models, each score also holds `recall_at_budget`: its recall when it flags as many
    rows as the champion flags at `threshold` (for the champion, its recall). `windows`: what
    each model learned from (learned_from), for verdict."""
    y = holdout[schema.target].to_numpy().astype(int)
    scores: dict[str, Any] = {}
    plots: dict[str, Any] = {}
    for role in ("champion", "challenger"):
        proba = probabilities.get(role)
        if proba is None:
            scores[role], plots[role] = None, None
            continue
        scores[role] = score(y, proba, threshold)
        plots[role] = {
            **curve_points(y, proba),
            "scores": plot_sample(scored_frame(holdout, proba, schema, threshold)),
        }
    champion, challenger = probabilities.get("champion"), probabilities.get("challenger")
    if champion is not None and challenger is not None:
        budget = int(np.count_nonzero(champion >= threshold))
        for role, proba in (("champion", champion), ("challenger", challenger)):
            scores[role]["recall_at_budget"] = recall_at_alerts(y, proba, budget)
    record = verdict(scores["champion"], scores["challenger"], policy, windows=windows)
    promotion: Promotion = {
        "promote": record["promote"],
        "undecided": record.get("undecided", False),
        "reason": record["reason"],
        "champion": scores["champion"],
        "challenger": scores["challenger"],
        "primary": policy.primary,
        "improvement": record["improvement"],
        "checks": record["checks"],
        "holdout": {
            "period": str(holdout[PERIOD].iloc[0]),
            "rows": int(len(holdout)),
            "from": str(holdout[schema.time].min()),
            "until": str(holdout[schema.time].max()),
        },
    }
    return promotion, plots
