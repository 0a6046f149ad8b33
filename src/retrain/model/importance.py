"""Permutation importance: how much a model's metric falls on its holdout when one feature's
values are shuffled among the rows. Stored with the model at training, shown by the report."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from retrain.data.schema import Schema
from retrain.model.metrics import better_by, score
from retrain.model.modeling import predict_proba

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

REPEATS = 3
MOST_ROWS = 2_000


def permutation_importance(
    model: Pipeline,
    holdout: pd.DataFrame,
    schema: Schema,
    *,
    metric: str,
    threshold: float,
    seed: int,
) -> dict[str, float]:
    """Per feature, the mean fall of `metric` over REPEATS seeded shuffles of that feature, on
    at most MOST_ROWS holdout rows (evenly spaced); largest first, empty when the metric cannot
    be computed (a holdout of one class)."""
    if len(holdout) > MOST_ROWS:
        holdout = holdout.iloc[np.linspace(0, len(holdout) - 1, MOST_ROWS).round().astype(int)]
    y = holdout[schema.target].to_numpy().astype(int)
    base = score(y, predict_proba(model, holdout, schema), threshold)[metric]
    if base is None:
        return {}
    rng = np.random.default_rng(seed)
    copies = []
    for feature in schema.features:
        for _ in range(REPEATS):
            shuffled = holdout.copy()
            shuffled[feature] = holdout[feature].to_numpy()[rng.permutation(len(holdout))]
            copies.append(shuffled)
    # one call for every shuffled copy: the pipeline's per-call cost dominates on small holdouts
    proba = predict_proba(model, pd.concat(copies, ignore_index=True), schema).reshape(len(copies), -1)
    falls: dict[str, float] = {}
    for i, feature in enumerate(schema.features):
        values = [score(y, p, threshold)[metric] for p in proba[i * REPEATS : (i + 1) * REPEATS]]
        falls[feature] = round(sum(better_by(metric, base, v) for v in values) / REPEATS, 6)
    return dict(sorted(falls.items(), key=lambda item: (-item[1], item[0])))
