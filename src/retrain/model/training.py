"""The train stage's logic: fit a challenger and describe it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retrain.data.files import md5_bytes
from retrain.data.schema import PERIOD, Schema
from retrain.data.splits import HoldoutCut, trained_fingerprints
from retrain.log import get, timed
from retrain.model.metrics import score
from retrain.model.modeling import dump, fit, predict_proba
from retrain.model.tuning import TuneSettings, not_searched, search, wanted
from retrain.monitor.comparison import too_few_to_judge
from retrain.monitor.drift import build_profile, estimated_performance, holdout_novelty
from retrain.records import Decision, ModelMetadata, Tuning

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


def skipped_metadata(decision: Decision, why: str | None = None) -> ModelMetadata:
    """The metadata of no challenger: decide asked for none, or `why` none could be trained."""
    return {
        "trained": False,
        "as_of": decision.get("as_of"),
        "reason": why or f"decide did not ask for a retrain: {decision.get('reason')}",
    }


def why_no_challenger(
    train: pd.DataFrame, schema: Schema, *, holdout_rows: int, min_holdout_rows: int | None
) -> str | None:
    """Why no challenger is fitted, or None: compare could not judge it on so small a holdout
    (`min_holdout_rows`; None where nothing judges it, as for the backtest's schedules), or its
    training rows all have one label. The train stage and the backtest ask the same question."""
    if min_holdout_rows is not None and (undecided := too_few_to_judge(holdout_rows, min_holdout_rows)):
        return undecided
    return one_label(train, schema)


def one_label(train: pd.DataFrame, schema: Schema) -> str | None:
    """Why no model can learn from these training rows (they all have one label), or None."""
    labels = train[schema.target].unique()
    if len(labels) != 1:
        return None
    periods = sorted(train[PERIOD].unique().tolist())
    label = schema.positive if labels[0] == 1 else schema.negative
    return (
        f"the {len(train)} training row(s) of {periods[0]}..{periods[-1]} all have the label "
        f"{label!r}, and a model needs both labels to learn from"
    )


@dataclass
class Challenger:
    model_bytes: bytes
    metadata: ModelMetadata
    profile: dict[str, Any]
    reference: pd.DataFrame
    holdout_proba: np.ndarray
    trained_rows: np.ndarray  # fingerprints of the training rows (splits.trained_fingerprints)
    model: Pipeline | None = None  # the fitted model whose bytes model_bytes are


@dataclass(frozen=True)
class TrainingSettings:
    """How a challenger is fitted, scored on the holdout and profiled for drift."""

    estimator: str
    hyperparameters: dict[str, Any]
    seed: int
    threshold: float
    bins: int = 10
    reference_rows: int = 2000
    reference_periods: int = 1
    tie_seed: int = 0
    tune: TuneSettings = TuneSettings()

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TrainingSettings:
        """From params.yaml's train, profile, metrics and prepare sections."""
        train, profile, metrics = params["train"], params["profile"], params["metrics"]
        estimator = str(train["estimator"])
        return cls(
            estimator=estimator,
            hyperparameters=dict(train.get(estimator) or {}),
            seed=int(train["seed"]),
            threshold=float(metrics["threshold"]),
            bins=int(profile["bins"]),
            reference_rows=int(profile["reference_rows"]),
            reference_periods=int(profile["reference_periods"]),
            tie_seed=int(params["prepare"]["sample_seed"]),
            tune=TuneSettings.from_params(train["tune"], str(metrics["primary"])),
        )


@dataclass(frozen=True)
class Fitted:
    """A fitted challenger, the hyperparameters it was fitted with, and the search that chose
    them (None when train.tune.when is never)."""

    model: Pipeline
    hyperparameters: dict[str, Any]
    tuning: Tuning | None = None


def train_challenger(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    schema: Schema,
    settings: TrainingSettings,
    decision: Decision,
    baseline: dict[str, Any] | None = None,
) -> Challenger:
    """Fit on the window (tuned first when train.tune says so), score on the holdout, profile
    the newest whole periods for drift."""
    fitted = fit_challenger(train, schema, settings, decision=decision, baseline=baseline)
    return describe_challenger(fitted, train, holdout, schema, settings, decision)


def fit_challenger(
    train: pd.DataFrame,
    schema: Schema,
    settings: TrainingSettings,
    *,
    decision: Decision,
    baseline: dict[str, Any] | None = None,
) -> Fitted:
    """The challenger fitted on the training window. When train.tune.when asks for it (tuning.
    wanted: the decision's triggers, the champion's held `baseline`), its hyperparameters are
    searched first on folds of that window alone."""
    hyperparameters, tuning = settings.hyperparameters, None
    if settings.tune.when != "never":
        tune, reason = wanted(settings.tune, decision, baseline)
        hyperparameters, tuning = (
            search(
                train,
                schema,
                estimator=settings.estimator,
                hyperparameters=settings.hyperparameters,
                seed=settings.seed,
                threshold=settings.threshold,
                settings=settings.tune,
                reason=reason,
            )
            if tune
            else (settings.hyperparameters, not_searched(settings.tune, reason))
        )
    with timed(
        get("train"),
        f"fit {settings.estimator} on {len(train)} rows x {len(schema.features)} features",
        level=logging.DEBUG,
    ):
        model = fit(train, schema, settings.estimator, hyperparameters, settings.seed)
    return Fitted(model, hyperparameters, tuning)


def reference_rows_of(train: pd.DataFrame, holdout: pd.DataFrame, periods: int) -> pd.DataFrame:
    """The newest `periods` whole periods of labelled data: the window's rows of those periods
    and the holdout (the rest of the newest period). A batch is compared with whole periods, so
    that what varies within a period (the days of a month, the months of a year) is never
    mistaken for drift; a reference spanning the whole window would differ from every new batch
    once the world has moved, and drift would fire after every retrain."""
    newest = sorted(set(train[PERIOD].unique().tolist()) | set(holdout[PERIOD].unique().tolist()))
    keep = newest[-periods:]
    recent = train.loc[train[PERIOD].isin(keep)]
    return pd.concat([recent, holdout[train.columns]], ignore_index=True)


def describe_challenger(
    fitted: Fitted,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    schema: Schema,
    settings: TrainingSettings,
    decision: Decision,
) -> Challenger:
    """The fitted model's bytes, its holdout scores and metadata, and the reference profile of
    the newest whole periods (see reference_rows_of). The train stage reads the holdout only
    now, after the fit, so the two never hold memory at once."""
    from sklearn import __version__ as sklearn_version

    log = get("train")
    model = fitted.model
    data = dump(model)
    periods = sorted(train[PERIOD].unique().tolist())
    y_holdout = holdout[schema.target].to_numpy()
    proba = predict_proba(model, holdout, schema)
    holdout_metrics = score(y_holdout, proba, settings.threshold)
    cut = HoldoutCut.first_of(holdout, schema.time, schema.id, settings.tie_seed)
    metadata: ModelMetadata = {
        "trained": True,
        "as_of": decision.get("as_of"),
        "reason": decision.get("reason"),
        "estimator": settings.estimator,
        "hyperparameters": fitted.hyperparameters,
        "seed": settings.seed,
        "schema": schema.as_dict(),
        "window": {
            "periods": periods,
            "rows": int(len(train)),
            "positive_rate": round(float(train[schema.target].mean()), 6),
            "from": str(train[schema.time].min()),
        },
        "trained_until": str(train[schema.time].max()),
        "trained_through_period": periods[-1],
        "holdout": {
            "period": str(holdout[PERIOD].iloc[0]),
            "rows": int(len(holdout)),
            "from": str(holdout[schema.time].min()),
            **(cut.as_dict() if cut else {}),
            "metrics": holdout_metrics,
        },
        "model_md5": md5_bytes(data),
        "sklearn_version": sklearn_version,
    }
    if fitted.tuning is not None:
        metadata["tuning"] = fitted.tuning
    errors = int(((proba >= settings.threshold).astype(int) != y_holdout).sum())
    recent = reference_rows_of(train, holdout, settings.reference_periods)
    with timed(log, f"profiled {len(recent)} reference rows", level=logging.DEBUG):
        profile, reference = build_profile(
            recent,
            schema,
            settings.bins,
            settings.reference_rows,
            settings.seed,
            holdout={
                "rows": len(holdout),
                "errors": errors,
                "metrics": holdout_metrics,
                "estimated": estimated_performance(proba, settings.threshold),
            },
            window=train,
        )
    profile["holdout"]["new_categories"] = holdout_novelty(holdout, profile["trained"]["categories"])
    profile["reference_periods"] = sorted(recent[PERIOD].unique().tolist())
    return Challenger(data, metadata, profile, reference, proba, trained_fingerprints(train, schema), model)
