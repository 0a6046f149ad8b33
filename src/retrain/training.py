"""The train stage's logic: fit a challenger and describe it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sklearn

from .drift import build_profile
from .io import md5_bytes
from .log import get, timed
from .metrics import score
from .modeling import dump, fit, predict_proba
from .schema import PERIOD, Schema

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


def skipped_metadata(decision: dict[str, Any]) -> dict[str, Any]:
    return {"trained": False, "as_of": decision.get("as_of"),
            "reason": f"decide did not ask for a retrain: {decision.get('reason')}"}


@dataclass
class Challenger:
    model_bytes: bytes
    metadata: dict[str, Any]
    profile: dict[str, Any]
    reference: pd.DataFrame
    holdout_proba: np.ndarray


def train_challenger(train: pd.DataFrame, holdout: pd.DataFrame, schema: Schema, estimator: str,
                     hyperparameters: dict[str, Any], seed: int, threshold: float,
                     decision: dict[str, Any], bins: int = 10,
                     reference_rows: int = 2000, reference_periods: int = 1) -> Challenger:
    """Fit on the window, score on the holdout, profile recent training rows for drift checks.

    The reference is the newest `reference_periods` periods of the window: the distribution the
    model last saw. A reference spanning a long window would differ from every new batch once
    the world has moved, and drift would fire after every retrain.
    """
    model = fit_challenger(train, schema, estimator, hyperparameters, seed)
    return describe_challenger(model, train, holdout, schema, estimator, hyperparameters, seed,
                               threshold, decision, bins, reference_rows, reference_periods)


def fit_challenger(train: pd.DataFrame, schema: Schema, estimator: str,
                   hyperparameters: dict[str, Any], seed: int) -> Pipeline:
    with timed(get("train"), f"fit {estimator} on {len(train)} rows x {len(schema.features)} "
               "features", level=logging.DEBUG):
        return fit(train, schema, estimator, hyperparameters, seed)


def describe_challenger(model: Pipeline, train: pd.DataFrame, holdout: pd.DataFrame,
                        schema: Schema, estimator: str, hyperparameters: dict[str, Any],
                        seed: int, threshold: float, decision: dict[str, Any], bins: int = 10,
                        reference_rows: int = 2000, reference_periods: int = 1) -> Challenger:
    """The fitted model's bytes, its holdout scores and metadata, and the reference profile of
    its recent training rows (see train_challenger). The train stage reads the holdout only now,
    after the fit, so the two never hold memory at once."""
    log = get("train")
    data = dump(model)
    periods = sorted(train[PERIOD].unique().tolist())
    y_holdout = holdout[schema.target].to_numpy()
    proba = predict_proba(model, holdout, schema)
    holdout_metrics = score(y_holdout, proba, threshold)
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
                    "metrics": holdout_metrics},
        "model_md5": md5_bytes(data),
        "sklearn_version": sklearn.__version__,
    }
    errors = int(((proba >= threshold).astype(int) != y_holdout).sum())
    in_recent = train[PERIOD].isin(periods[-reference_periods:])
    recent = train if in_recent.all() else train.loc[in_recent]
    with timed(log, f"profiled {len(recent)} reference rows", level=logging.DEBUG):
        profile, reference = build_profile(recent, schema, bins, reference_rows, seed,
                                           len(holdout), errors, holdout_metrics)
    profile["reference_periods"] = periods[-reference_periods:]
    return Challenger(data, metadata, profile, reference, proba)
