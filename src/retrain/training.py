"""The train stage's logic: fit a challenger and describe it."""

from __future__ import annotations

from typing import Any

import pandas as pd
import sklearn

from .io import md5_bytes
from .metrics import score
from .modeling import dump, fit, predict_proba
from .schema import PERIOD, Schema


def skipped_metadata(decision: dict[str, Any]) -> dict[str, Any]:
    return {"trained": False, "as_of": decision.get("as_of"),
            "reason": f"decide did not ask for a retrain: {decision.get('reason')}"}


def train_challenger(train: pd.DataFrame, holdout: pd.DataFrame, schema: Schema, estimator: str,
                     hyperparameters: dict[str, Any], seed: int, threshold: float,
                     decision: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """Fit on the window, score on the holdout; return the model bytes and their metadata."""
    model = fit(train, schema, estimator, hyperparameters, seed)
    data = dump(model)
    periods = sorted(train[PERIOD].unique().tolist())
    metadata = {
        "trained": True,
        "as_of": decision.get("as_of"),
        "reason": decision.get("reason"),
        "estimator": estimator,
        "hyperparameters": hyperparameters,
        "seed": seed,
        "schema": schema.as_dict(),
        "window": {"periods": periods, "rows": int(len(train)),
                   "positive_rate": round(float(train[schema.target].mean()), 6),
                   "from": str(train[schema.time].min())},
        "trained_until": str(train[schema.time].max()),
        "trained_through_period": periods[-1],
        "holdout": {"period": str(holdout[PERIOD].iloc[0]), "rows": int(len(holdout)),
                    "from": str(holdout[schema.time].min()),
                    "metrics": score(holdout[schema.target].to_numpy(),
                                     predict_proba(model, holdout, schema), threshold)},
        "model_md5": md5_bytes(data),
        "sklearn_version": sklearn.__version__,
    }
    return data, metadata
