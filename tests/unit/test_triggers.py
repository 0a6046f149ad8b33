import pytest

from retrain.errors import DataError
from retrain.triggers import decide

PARAMS = {
    "rule": "any", "min_fired": 1,
    "cold_start": {"enabled": True},
    "performance": {"enabled": True, "metric": "roc_auc", "threshold": 0.75, "min_rows": 50},
    "age": {"enabled": True, "max_batches": 3},
}


def evaluation(roc_auc=0.8, rows=200, age=1):
    return {"as_of": "2025-06", "labelled_period": "2025-06",
            "champion": {"version": "v1.0.0", "trained_through_period": "2025-05"},
            "metrics": {"roc_auc": roc_auc, "rows": rows, "brier": 0.1}, "champion_age": age}


def by_name(decision):
    return {t["name"]: t for t in decision["triggers"]}


def test_every_configured_trigger_is_listed_with_value_and_threshold():
    decision = decide(evaluation(), PARAMS)
    assert set(by_name(decision)) == {"cold_start", "performance_roc_auc", "age"}
    for t in decision["triggers"]:
        assert set(t) == {"name", "enabled", "fired", "value", "threshold", "detail"}
    assert decision["retrain"] is False and decision["as_of"] == "2025-06"


def test_cold_start_fires_without_champion():
    record = {"as_of": "2025-06", "champion": None, "metrics": None, "champion_age": None}
    decision = decide(record, PARAMS)
    assert decision["retrain"] and by_name(decision)["cold_start"]["fired"]
    assert not by_name(decision)["performance_roc_auc"]["fired"]


def test_performance_below_threshold_fires():
    decision = decide(evaluation(roc_auc=0.70), PARAMS)
    assert decision["retrain"] and decision["fired"] == ["performance_roc_auc"]
    t = by_name(decision)["performance_roc_auc"]
    assert t["value"] == 0.70 and t["threshold"] == 0.75


def test_lower_is_better_metric_fires_above_threshold():
    params = {**PARAMS, "performance": {"metric": "brier", "threshold": 0.05}}
    assert decide(evaluation(), params)["retrain"]


def test_too_few_rows_reports_not_enough_data_instead_of_firing():
    t = by_name(decide(evaluation(roc_auc=0.5, rows=20), PARAMS))["performance_roc_auc"]
    assert not t["fired"] and "not enough data" in t["detail"]


def test_age_fires_past_the_limit():
    assert not decide(evaluation(age=3), PARAMS)["retrain"]
    assert decide(evaluation(age=4), PARAMS)["fired"] == ["age"]


def test_disabled_trigger_is_listed_but_never_fires():
    params = {**PARAMS, "age": {"enabled": False, "max_batches": 3}}
    t = by_name(decide(evaluation(age=9), params))["age"]
    assert t["enabled"] is False and t["fired"] is False


def test_at_least_rule_needs_that_many_triggers():
    params = {**PARAMS, "rule": "at_least", "min_fired": 2}
    assert not decide(evaluation(roc_auc=0.7), params)["retrain"]
    assert decide(evaluation(roc_auc=0.7, age=5), params)["retrain"]


def test_unknown_rule_is_refused():
    with pytest.raises(DataError, match="decide.rule"):
        decide(evaluation(), {**PARAMS, "rule": "most"})
