import copy

import pytest

from retrain.backtest import (
    Policy,
    Settings,
    per_batch_table,
    policies_from,
    replay,
    summarise,
    tradeoff_table,
)
from retrain.evaluation import DomainCheck
from retrain.io import list_batches, read_raw_batch
from retrain.metrics import ComparePolicy
from retrain.schema import CleaningPolicy, validate_batch
from retrain.splits import WindowPolicy
from tests.helpers import ROOT

POLICIES = [Policy("policy", "triggers"), Policy("never", "never"),
            Policy("every_batch", "every"), Policy("every_k", "every_k", 2)]


@pytest.fixture
def settings(toy_schema, params):
    decide = copy.deepcopy(params["decide"])
    decide["min_rows"] = 50
    return Settings(toy_schema, WindowPolicy("last_n", 2, 0.4), decide,
                    ComparePolicy("roc_auc", 0.0, {}, {"roc_auc": 0.5}), "logistic_regression",
                    {}, 0, 0.5, 5, 500, 1, DomainCheck(3, 300, 0))


@pytest.fixture
def toy_history(toy_batch):
    return [toy_batch(f"2025-{m:02d}", seed=m, shift=0.0 if m < 4 else 1.5) for m in range(1, 7)]


def decisions(result, upto):
    return {name: [(r["period"], r["retrain"], r["promoted"], tuple(r["fired"]), r["served"])
                   for r in rows if r["period"] <= upto]
            for name, rows in result["batches"].items()}


def test_no_look_ahead_labels_of_a_later_batch_change_nothing_before_it(settings, toy_history,
                                                                         toy_batch):
    before = replay(toy_history, settings, POLICIES, "roc_auc")
    changed = list(toy_history)
    flipped = toy_batch("2025-04", seed=4, shift=1.5)
    flipped.frame["label"] = 1 - flipped.frame["label"]
    changed[3] = flipped
    after = replay(changed, settings, POLICIES, "roc_auc")
    assert decisions(before, "2025-03") == decisions(after, "2025-03")
    assert decisions(before, "2025-04") != decisions(after, "2025-04")


def test_replay_is_deterministic_and_reuses_models(settings, toy_history):
    a = replay(toy_history, settings, POLICIES, "roc_auc")
    b = replay(toy_history, settings, POLICIES, "roc_auc")
    assert a["summary"] == b["summary"] and per_batch_table(a, "roc_auc") == per_batch_table(b, "roc_auc")
    assert a["summary"]["_models_reused"] > 0
    assert a["summary"]["every_batch"]["retrains"] == len(toy_history) - 1
    assert a["summary"]["never"]["retrains"] == 0
    assert a["summary"]["every_k"]["retrains"] == 2      # batches 2 and 4 (k=2)


def test_drift_makes_the_policy_retrain_and_never_falls_behind(settings, toy_history):
    result = replay(toy_history, settings, POLICIES, "roc_auc")
    policy = result["batches"]["policy"]
    assert any(r["retrain"] for r in policy if r["period"] >= "2025-04")
    assert "data_drift" in {f for r in policy for f in r["fired"]}


def test_summary_counts_retrains_after_the_first_model_and_the_cost():
    rows = [{"served": None, "retrain": True, "promoted": True, "rows_trained": 100},
            {"served": {"roc_auc": 0.8}, "retrain": False, "promoted": False, "rows_trained": 0},
            {"served": {"roc_auc": 0.6}, "retrain": True, "promoted": False, "rows_trained": 150}]
    summary = summarise(rows, "roc_auc")
    assert summary == {"retrains": 1, "promotions": 0, "mean_roc_auc": 0.7, "worst_roc_auc": 0.6,
                       "rows_trained": 250, "batches_served": 2}


def test_policies_include_the_baselines():
    names = [p.name for p in policies_from({"every_k": 3})]
    assert names == ["policy", "never", "every_batch", "every_k"]
    assert [p.name for p in policies_from({})] == ["policy", "never", "every_batch"]


@pytest.fixture(scope="module")
def demo_result():
    from retrain.params import load
    params = load(ROOT / "params.yaml")
    settings = Settings.from_params(params)
    batches = [validate_batch(read_raw_batch(p), str(p), settings.schema, CleaningPolicy())
               for p in list_batches(ROOT / "data/raw")]
    return replay(batches, settings, policies_from(params["backtest"]), "roc_auc")


def test_on_the_demo_data_retraining_pays_over_the_drifted_months(demo_result):
    table = per_batch_table(demo_result, "roc_auc")
    drifted = [r for r in table if r["period"] >= "2025-07"]
    every = sum(r["every_batch"] for r in drifted) / len(drifted)
    never = sum(r["never"] for r in drifted) / len(drifted)
    assert every >= never
    summary = demo_result["summary"]
    assert 0 < summary["policy"]["retrains"] < summary["every_batch"]["retrains"]
    points = {p["policy"]: p for p in tradeoff_table(demo_result, "roc_auc")}
    assert points["never"]["retrains"] == 0
