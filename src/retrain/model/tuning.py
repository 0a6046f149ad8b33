"""Hyperparameter search when the world changed: Optuna's seeded TPE sampler over time-ordered
folds inside the training window, so the search never sees the holdout that compare judges by,
nor any row newer than the rows it trains on."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retrain.data.schema import Schema
from retrain.data.splits import tie_keys
from retrain.log import get
from retrain.model.metrics import LOWER_IS_BETTER, score
from retrain.model.modeling import fit, predict_proba
from retrain.params import TuneParams
from retrain.records import Decision, Tuning

if TYPE_CHECKING:
    import optuna

CONCEPT_TRIGGERS = ("concept_drift", "performance_drop", "performance_")  # performance_<metric>
STARTUP_TRIALS = 5  # trials never pruned: the pruner's median needs them


DEFAULTS = TuneParams()


@dataclass(frozen=True)
class TuneSettings:
    """params.yaml's train.tune: when to search, how long, and the ranges searched; the
    defaults are the params model's."""

    when: str = DEFAULTS.when
    trials: int = DEFAULTS.trials
    timeout_s: float = DEFAULTS.timeout_s
    seed: int = DEFAULTS.seed
    folds: int = DEFAULTS.folds
    min_gain: float = DEFAULTS.min_gain
    metric: str = "roc_auc"
    space: dict[str, dict[str, Any]] = field(default_factory=dict)  # estimator -> name -> range

    @classmethod
    def from_params(cls, tune: dict[str, Any], metric: str) -> TuneSettings:
        return cls(
            when=str(tune["when"]),
            trials=int(tune["trials"]),
            timeout_s=float(tune["timeout_s"]),
            seed=int(tune["seed"]),
            folds=int(tune["folds"]),
            min_gain=float(tune["min_gain"]),
            metric=metric,
            space={name: dict(ranges) for name, ranges in (tune.get("space") or {}).items()},
        )


def not_searched(settings: TuneSettings, reason: str) -> Tuning:
    """The record of a retrain that did not search (or whose search found nothing to try)."""
    return {
        "tuned": False,
        "when": settings.when,
        "reason": reason,
        "metric": settings.metric,
        "trials": 0,
        "pruned": 0,
        "stopped_by": None,
        "fixed_score": None,
        "best_score": None,
        "best_hyperparameters": {},
        "validation": {},
        "seconds": 0.0,
    }


SUMMARY = ("tuned", "trials", "best_score", "fixed_score", "best_hyperparameters", "metric", "seconds")


def summary(record: Tuning) -> dict[str, Any]:
    """What reports/promotion.json (and a tuned version's tag) keep of a search record."""
    return {key: value for key, value in record.items() if key in SUMMARY}


def wanted(settings: TuneSettings, decision: Decision, baseline: dict[str, Any] | None) -> tuple[bool, str]:
    """Whether this retrain searches hyperparameters, and why in words. `on_concept_drift`
    searches when the relation between features and label moved (concept drift, or a performance
    trigger fired), or when the last challenger, fitted with fixed hyperparameters, lost to the
    champion (`baseline`: the champion's held baseline from evaluation, if any)."""
    if settings.when == "never":
        return False, "train.tune.when is never"
    if settings.when == "always":
        return True, "train.tune.when is always"
    triggers = decision.get("triggers", [])
    fired = [t["name"] for t in triggers if t.get("fired") and t["name"].startswith(CONCEPT_TRIGGERS)]
    if fired:
        return True, f"{', '.join(fired)} fired: the relation of features to the label moved"
    if baseline and baseline.get("held") and not baseline.get("challenger_tuned"):
        return True, (
            f"a challenger with fixed hyperparameters lost to the champion in {baseline.get('period')}"
        )
    return False, "no concept drift or performance trigger fired, and no fixed-hyperparameter challenger lost"


def time_folds(
    train: pd.DataFrame, schema: Schema, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Forward-chaining folds in the order (time, seeded hash of the id): the rows are cut into
    folds + 1 equal runs, and fold i trains on runs 0..i and validates on run i + 1, so every
    validation row is at least as new as every row its model trained on (ties in time are split
    by the hash, as the holdout is)."""
    times = train[schema.time].to_numpy(dtype="datetime64[ns]").view("int64")
    order = np.lexsort((tie_keys(train[schema.id], seed), times))
    runs = np.array_split(order, folds + 1)
    return [(np.sort(np.concatenate(runs[: i + 1])), np.sort(runs[i + 1])) for i in range(folds)]


def suggest(trial: optuna.Trial, ranges: dict[str, Any]) -> dict[str, Any]:
    """One value per searched hyperparameter: from `choices`, or between `low` and `high`
    (whole numbers when both bounds are, on a log scale with `log: true`)."""
    values = {}
    for name, spec in sorted(ranges.items()):
        if spec.get("choices") is not None:
            values[name] = trial.suggest_categorical(name, list(spec["choices"]))
        elif isinstance(spec["low"], int) and isinstance(spec["high"], int):
            values[name] = trial.suggest_int(name, spec["low"], spec["high"], log=bool(spec.get("log")))
        else:
            values[name] = trial.suggest_float(
                name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log"))
            )
    return values


def search(
    train: pd.DataFrame,
    schema: Schema,
    *,
    estimator: str,
    hyperparameters: dict[str, Any],
    seed: int,
    threshold: float,
    settings: TuneSettings,
    reason: str,
) -> tuple[dict[str, Any], Tuning]:
    """The hyperparameters to fit the challenger with, and the record of the search. The first
    trial is the params' own hyperparameters, so the search keeps them unless a trial validates
    better; later trials come from the seeded TPE sampler, and a trial whose running score falls
    below the median of earlier trials at the same fold is pruned. The search stops after
    `trials` trials, or after `timeout_s` seconds (then, and only then, the result depends on the
    machine's speed: the record says which stopped it)."""
    import optuna

    started = time.perf_counter()
    ranges = settings.space.get(estimator) or {}
    metric = settings.metric
    record = not_searched(settings, reason)
    labels = train[schema.target]
    folds = [
        (fit_rows, check_rows)
        for fit_rows, check_rows in time_folds(train, schema, settings.folds, seed)
        if labels.iloc[check_rows].nunique() == 2 and labels.iloc[fit_rows].nunique() == 2
    ]
    if not ranges or not folds:
        why = f"train.tune.space has no range for {estimator}" if not ranges else "no fold holds both labels"
        record["reason"] = f"{reason}; not searched: {why}"
        return hyperparameters, record
    record["validation"] = {
        "folds": len(folds),
        "rows": int(sum(len(check) for _, check in folds)),
        "from": str(train[schema.time].iloc[folds[0][1]].min()),
        "until": str(train[schema.time].max()),
    }
    lower = metric in LOWER_IS_BETTER

    def objective(trial: optuna.Trial) -> float:
        candidate = {**hyperparameters, **suggest(trial, ranges)}
        scores = []
        for step, (fit_rows, check_rows) in enumerate(folds):
            model = fit(train.iloc[fit_rows], schema, estimator, candidate, seed)
            check = train.iloc[check_rows]
            y = check[schema.target].to_numpy().astype(int)
            value = score(y, predict_proba(model, check, schema), threshold)[metric]
            scores.append(float(value))
            trial.report(float(np.mean(scores)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="minimize" if lower else "maximize",
        sampler=optuna.samplers.TPESampler(seed=settings.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=STARTUP_TRIALS),
    )
    fixed = {name: hyperparameters[name] for name in ranges if name in hyperparameters}
    if len(fixed) == len(ranges) and _within(fixed, ranges):
        study.enqueue_trial(fixed)
    study.optimize(objective, n_trials=settings.trials, timeout=settings.timeout_s)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    record["trials"] = len(study.trials)
    record["pruned"] = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    record["stopped_by"] = "trials" if len(study.trials) >= settings.trials else "timeout"
    record["seconds"] = round(time.perf_counter() - started, 3)
    if study.trials and study.trials[0].params == fixed and study.trials[0].value is not None:
        record["fixed_score"] = round(float(study.trials[0].value), 6)
    if not done:
        record["reason"] = f"{reason}; no trial finished in {settings.timeout_s:g} s: fixed hyperparameters"
        return hyperparameters, record
    best = study.best_trial
    best_score = round(float(best.value or 0.0), 6)
    record["best_score"] = best_score
    record["best_hyperparameters"] = dict(sorted(best.params.items()))
    fixed_score = record["fixed_score"]
    gain = None if fixed_score is None else best_score - fixed_score
    if gain is not None and (-gain if lower else gain) < settings.min_gain:
        record["reason"] = (
            f"{reason}; kept the fixed hyperparameters: the best trial validated "
            f"{abs(gain):.4f} {'better' if gain else 'no better'}, under train.tune.min_gain "
            f"{settings.min_gain:g}"
        )
        return hyperparameters, record
    record["tuned"] = True
    get("train").log(
        logging.INFO,
        "tuned %s: %d trials (%d pruned) in %.1f s, validation %s %.4f (fixed hyperparameters: %s)",
        estimator,
        record["trials"],
        record["pruned"],
        record["seconds"],
        metric,
        record["best_score"],
        "n/a" if record["fixed_score"] is None else f"{record['fixed_score']:.4f}",
    )
    return {**hyperparameters, **best.params}, record


def _within(values: dict[str, Any], ranges: dict[str, Any]) -> bool:
    """Whether the params' own values lie in the searched ranges (then they are tried first)."""
    for name, value in values.items():
        spec = ranges[name]
        if spec.get("choices") is not None:
            if value not in spec["choices"]:
                return False
        elif isinstance(value, bool) or not isinstance(value, int | float):
            return False
        elif not spec["low"] <= value <= spec["high"]:
            return False
    return True
