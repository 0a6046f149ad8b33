"""The hindsight oracle: the batches that, known afterwards, were the best ones to retrain at.

Mahadevan & Mathioudakis (Cost-aware retraining for machine learning, 2024) bound a retraining
policy from above by the schedule chosen in hindsight. Here the candidates are the models the
`every_batch` baseline trained, one per batch on the params' window and promoted unconditionally
as the fixed schedules are: `served_matrix` scores each on every later batch with the backtest's
own `served`, and `best_retrains` picks, by dynamic programming, the batches to retrain at that
maximise the mean served metric with at most a given number of retrains. What separates a policy
from the oracle with as many retrains is what better timing could still gain; what separates a
fixed schedule from it is what timing can gain at all on that history.

`schedule_phases` scores each fixed schedule from the same matrix once per start: every k batches
counted from batch p, for each p < k. The backtest's `every_k` is the start p = 0; a user who
adopts a calendar starts it wherever the calendar falls, so the spread over starts is how much of
a schedule's mean is where it happened to start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from retrain.backtest import BatchSource, ModelCache, Settings
    from retrain.registry.champion import Champion

Scores = list[list[float | None]]


@dataclass(frozen=True)
class Phase:
    """One start of a fixed schedule: retrains at every batch t with t % k == start."""

    k: int
    start: int
    retrains: int
    mean: float | None


@dataclass(frozen=True)
class Hindsight:
    """The oracle's answer for one retrain budget."""

    budget: int
    retrains: int
    mean: float | None
    periods: list[str]  # the batches it retrains at, after the first model


def every_batch_models(result: dict[str, Any], cache: ModelCache) -> list[Champion | None]:
    """Per batch, the model the `every_batch` baseline trained at it (None where it trained none)."""
    by_md5 = {champion.pointer["md5"]: champion for champion, _ in cache.models.values()}
    return [by_md5[row["model_md5"]] if row["retrain"] else None for row in result["batches"]["every_batch"]]


def served_matrix(
    batches: BatchSource, settings: Settings, models: list[Champion | None], metric: str
) -> Scores:
    """scores[s][u]: the metric the model trained at batch s served on a later batch u (None
    where batch s trained no model or batch u has no labels)."""
    from retrain.backtest import served

    n = len(batches)
    scores: Scores = [[None] * n for _ in range(n)]
    for u in range(n):
        batch = batches.batch(u)
        for s in range(u):
            model = models[s]
            seen = None if model is None else served(model, batch, settings)
            scores[s][u] = None if seen is None else seen.get(metric)
    return scores


def best_retrains(scores: Scores, periods: list[str], budget: int) -> Hindsight:
    """The batches to retrain at, at most `budget` of them after the first model, that maximise
    the mean served metric; a retrain at batch u serves from batch u + 1, as in the backtest."""
    n = len(scores)
    trained = {s for s in range(n) if any(v is not None for v in scores[s])}
    if not trained:
        return Hindsight(budget, 0, None, [])
    first = min(trained)
    value = np.full((budget + 1, n), -np.inf)
    value[0, first] = 0.0
    parent = np.full((budget + 1, n), -1, dtype=np.int64)
    served = 0
    for u in range(first + 1, n):
        column = np.array([np.nan if scores[s][u] is None else scores[s][u] for s in range(n)], dtype=float)
        if not np.isnan(column).all():
            served += 1
            value = value + np.where(np.isnan(column), -np.inf, column)
        if u in trained:
            for r in range(budget, 0, -1):
                best = int(np.argmax(value[r - 1]))
                if np.isfinite(value[r - 1, best]):
                    value[r, u], parent[r, u] = value[r - 1, best], best
    r, s = (int(i) for i in np.unravel_index(int(np.argmax(value)), value.shape))
    total = float(value[r, s])
    chosen: list[int] = []
    while r > 0:
        chosen.append(s)
        r, s = r - 1, int(parent[r, s])
    return Hindsight(
        budget=budget,
        retrains=len(chosen),
        mean=round(total / served, 6) if served else None,
        periods=[periods[u] for u in sorted(chosen)],
    )


def schedule_phases(scores: Scores, trained: list[bool], k: int) -> list[Phase]:
    """Every k batches from each start p < k, as the backtest replays `every_k` (p = 0): the first
    model at the first batch that trains one, then a retrain at each batch t with t % k == p that
    trains one (`trained`: where `every_batch` did), serving from t + 1; retrains counted after
    the first batch, as `summarise` does."""
    n = len(scores)
    phases = []
    for start in range(k):
        model: int | None = None
        served: list[float] = []
        retrains = 0
        for t in range(n):
            value = None if model is None else scores[model][t]
            if value is not None:
                served.append(value)
            if trained[t] and (model is None or t % k == start):
                retrains += t >= 1
                model = t
        mean = round(float(np.mean(served)), 6) if served else None
        phases.append(Phase(k=k, start=start, retrains=retrains, mean=mean))
    return phases
