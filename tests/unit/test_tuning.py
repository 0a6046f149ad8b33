"""Hyperparameter search on concept drift: when it runs, what it may see, and that it is
reproducible and bounded."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest

from retrain.backtest import Policy, Settings, backtest_lines, policies_from, replay
from retrain.data.splits import WindowPolicy, split
from retrain.errors import DataError
from retrain.model.modeling import dump, fit
from retrain.model.preprocessing import check_hyperparameters
from retrain.model.training import TrainingSettings, fit_challenger, train_challenger
from retrain.model.tuning import TuneSettings, search, time_folds, wanted
from retrain.monitor.comparison import ComparePolicy
from retrain.monitor.evaluation import DomainCheck
from retrain.params import validate

SPACE = {
    "hist_gradient_boosting": {
        "learning_rate": {"low": 0.02, "high": 0.3, "log": True},
        "max_leaf_nodes": {"low": 4, "high": 31, "log": False},
    },
    "logistic_regression": {"C": {"low": 0.001, "high": 10.0, "log": True}},
}
HGB = {"learning_rate": 0.1, "max_iter": 20, "max_leaf_nodes": 8, "min_samples_leaf": 10}


def tune(**changes) -> TuneSettings:
    settings = TuneSettings(when="always", trials=6, seed=3, min_gain=0.0, space=SPACE)
    return dataclasses.replace(settings, **changes)


def training(**changes) -> TrainingSettings:
    return TrainingSettings("hist_gradient_boosting", HGB, 0, 0.5, 5, 300, tune=tune(**changes))


def searched(window, toy_schema, *, estimator="hist_gradient_boosting", hyperparameters=HGB, **changes):
    """search() on the window's training rows with tune(**changes)."""
    return search(
        window.train,
        toy_schema,
        estimator=estimator,
        hyperparameters=hyperparameters,
        seed=0,
        threshold=0.5,
        settings=tune(**changes),
        reason="test",
    )


@pytest.fixture
def window(toy_batch, toy_schema):
    batches = [toy_batch(f"2025-{m:02d}", seed=m, n=300) for m in range(1, 4)]
    return split(batches, toy_schema, WindowPolicy("last_n", 3, 0.4))


def decision(*fired: str) -> dict:
    names = ["performance_roc_auc", "performance_drop", "concept_drift", "data_drift", "label_shift"]
    return {"as_of": "2025-03", "reason": "", "triggers": [{"name": n, "fired": n in fired} for n in names]}


def test_on_concept_drift_searches_when_concept_or_performance_fired_or_a_fixed_challenger_lost():
    settings = tune(when="on_concept_drift")
    assert wanted(settings, decision("concept_drift"), None)[0]
    assert wanted(settings, decision("performance_drop", "data_drift"), None)[0]
    assert wanted(settings, decision("performance_roc_auc"), None) == (
        True,
        "performance_roc_auc fired: the relation of features to the label moved",
    )
    assert not wanted(settings, decision("data_drift", "label_shift"), None)[0]
    held = {"held": True, "period": "2025-02"}
    assert wanted(settings, decision("data_drift"), held) == (
        True,
        "a challenger with fixed hyperparameters lost to the champion in 2025-02",
    )
    assert not wanted(settings, decision(), {**held, "challenger_tuned": True})[0]
    assert not wanted(tune(when="never"), decision("concept_drift"), held)[0]
    assert wanted(tune(when="always"), decision(), None)[0]


def test_folds_validate_on_rows_no_older_than_their_training_even_when_every_row_shares_a_time(
    window, toy_schema
):
    train = window.train.copy()
    for frame in (train, train.assign(**{toy_schema.time: train[toy_schema.time].iloc[0]})):
        folds = time_folds(frame, toy_schema, 3, seed=0)
        assert len(folds) == 3
        times = frame[toy_schema.time].to_numpy()
        for fit_rows, check_rows in folds:
            assert len(fit_rows) and len(check_rows) and not set(fit_rows) & set(check_rows)
            assert times[fit_rows].max() <= times[check_rows].min()
        again = time_folds(frame, toy_schema, 3, seed=0)
        pairs = zip(folds, again, strict=True)
        assert all(np.array_equal(a, b) for one, two in pairs for a, b in zip(one, two, strict=True))
    other_seed = time_folds(frame, toy_schema, 3, seed=1)  # ties are split by the seeded hash
    assert not np.array_equal(folds[0][1], other_seed[0][1])


def test_the_search_never_sees_the_holdout_and_validates_on_older_rows(window, toy_schema):
    challenger = train_challenger(window.train, window.holdout, toy_schema, training(), decision())
    record = challenger.metadata["tuning"]
    assert record["tuned"] and record["trials"] == 6
    assert pd.Timestamp(record["validation"]["until"]) <= window.holdout[toy_schema.time].min()
    assert record["validation"]["rows"] < len(window.train)
    chosen = challenger.metadata["hyperparameters"]
    assert {k: chosen[k] for k in record["best_hyperparameters"]} == record["best_hyperparameters"]
    assert chosen["max_iter"] == HGB["max_iter"]  # what is not searched stays as params say


def test_the_same_data_gives_the_same_trials_and_the_same_model_bytes(window, toy_schema):
    first = fit_challenger(window.train, toy_schema, training(), decision=decision())
    second = fit_challenger(window.train, toy_schema, training(), decision=decision())
    assert first.hyperparameters == second.hyperparameters
    assert {k: v for k, v in first.tuning.items() if k != "seconds"} == {
        k: v for k, v in second.tuning.items() if k != "seconds"
    }
    assert dump(first.model) == dump(second.model)


def test_the_first_trial_is_the_params_own_hyperparameters(window, toy_schema):
    _, record = searched(window, toy_schema, trials=1)
    assert record["best_hyperparameters"] == {"learning_rate": 0.1, "max_leaf_nodes": 8}
    assert record["fixed_score"] == record["best_score"]


def test_the_time_budget_stops_the_search(window, toy_schema):
    _, record = searched(window, toy_schema, trials=100_000, timeout_s=1.0)
    assert record["stopped_by"] == "timeout" and 1 <= record["trials"] < 100_000
    assert record["seconds"] < 10  # one second, plus the trial under way when it ran out


def test_hopeless_trials_are_pruned(window, toy_schema):
    _, record = searched(
        window,
        toy_schema,
        estimator="logistic_regression",
        hyperparameters={},
        trials=30,
        folds=3,
        space={"logistic_regression": {"C": {"low": 1e-6, "high": 10.0}}},
    )
    assert record["trials"] == 30 and record["pruned"] > 0


def test_never_fits_exactly_what_the_fixed_hyperparameters_fit(window, toy_schema):
    settings = training(when="never")
    fitted = fit_challenger(window.train, toy_schema, settings, decision=decision("concept_drift"))
    assert fitted.tuning is None and fitted.hyperparameters == HGB
    assert dump(fitted.model) == dump(fit(window.train, toy_schema, "hist_gradient_boosting", HGB, 0))
    challenger = train_challenger(window.train, window.holdout, toy_schema, settings, decision())
    assert "tuning" not in challenger.metadata


def test_a_retrain_that_does_not_search_says_why(window, toy_schema):
    settings = training(when="on_concept_drift")
    fitted = fit_challenger(window.train, toy_schema, settings, decision=decision("data_drift"))
    assert fitted.tuning["tuned"] is False and fitted.hyperparameters == HGB
    assert "no concept drift" in fitted.tuning["reason"]


def test_a_search_space_mistake_is_refused_before_work(params, demo_schema):
    def with_space(space):
        changed = copy.deepcopy(params)
        changed["train"]["tune"]["space"] = space
        return changed

    with pytest.raises(DataError, match="low 0.5 is above high 0.1"):
        validate(with_space({"logistic_regression": {"C": {"low": 0.5, "high": 0.1}}}))
    with pytest.raises(DataError, match="a log range needs low above 0"):
        validate(with_space({"logistic_regression": {"C": {"low": 0, "high": 1, "log": True}}}))
    with pytest.raises(DataError, match="train.tune.space.xgboost"):
        validate(with_space({"xgboost": {"eta": {"low": 0.1, "high": 0.2}}}))
    blocks = validate(with_space({"random_forest": {"max_depht": {"low": 2, "high": 9}}}))["train"]
    with pytest.raises(DataError, match="max_depht is not a hyperparameter of random_forest"):
        check_hyperparameters(demo_schema, blocks, 0)


def test_the_backtest_replays_tuning_beside_the_same_triggers_with_fixed_hyperparameters(
    toy_batch, toy_schema, params
):
    history = [toy_batch(f"2025-{m:02d}", seed=m, n=200, shift=0.0 if m < 3 else 1.5) for m in range(1, 5)]
    decide = {**copy.deepcopy(params["decide"]), "min_rows": 50}
    settings = Settings(
        toy_schema,
        WindowPolicy("last_n", 2, 0.4),
        decide,
        ComparePolicy("roc_auc", 0.0, {}, {"roc_auc": 0.5}, 20),
        training(trials=3),
        DomainCheck(3, 300, 0),
    )
    policies = policies_from({"every_k": [2]}, tuning=True)
    assert [p.name for p in policies][:2] == ["policy", "policy_fixed"]
    assert policies[0] == Policy("policy", "triggers", tune=True)
    result = replay(history, settings, policies, "roc_auc")
    summary = result["summary"]
    tuned = summary["policy"]["tuned"]
    assert tuned >= 1 and summary["policy"]["tuning_trials"] == 3 * tuned
    assert "tuned" not in summary["policy_fixed"] and "tuned" not in summary["every_2"]
    assert result["train_seconds"]["policy"] > 0
    lines = backtest_lines(result, "roc_auc")
    assert len(lines) == 2 and lines[1].startswith("Tuning (train.tune): mean served roc_auc")
    assert np.isfinite(summary["policy_fixed"]["mean_roc_auc"])


def test_searched_values_replace_the_fixed_ones_only_when_they_validate_min_gain_better(window, toy_schema):
    chosen, record = searched(window, toy_schema, min_gain=1.0)
    assert chosen == HGB and record["tuned"] is False and record["trials"] == 6
    assert "kept the fixed hyperparameters" in record["reason"] and "min_gain 1" in record["reason"]
