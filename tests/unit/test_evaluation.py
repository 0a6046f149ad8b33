import pandas as pd

from retrain.evaluation import compare, evaluate, periods_between, unseen_rows
from retrain.metrics import ComparePolicy
from retrain.modeling import fit
from retrain.splits import WindowPolicy, split
from retrain.training import train_challenger


def test_periods_between_counts_batches_of_data_time():
    assert periods_between("2025-11", "2026-02", "M") == 3
    assert periods_between("2025-11", "2025-11", "M") == 0


def test_champion_is_scored_only_on_rows_newer_than_its_training(toy_batch, toy_schema):
    batches = [toy_batch("2025-01", seed=1), toy_batch("2025-02", seed=2)]
    data = split(batches, toy_schema, WindowPolicy())
    data_bytes, meta = train_challenger(data.train, data.holdout, toy_schema, "logistic_regression",
                                        {}, 0, 0.5, {"as_of": "2025-02", "reason": "test"})
    model = fit(data.train, toy_schema, "logistic_regression", {}, 0)
    unseen = unseen_rows(data.newest_labelled, toy_schema, meta["trained_until"])
    assert len(unseen) == len(data.holdout)
    pointer = {"version": "v1.0.0", "tag": "m@v1.0.0", "commit": "abc"}
    record = evaluate(model, meta, pointer, data.newest_labelled, "2025-02", toy_schema, 0.5)
    assert record["metrics"]["rows"] == len(data.holdout)
    assert record["rows_seen_in_training"] == len(data.newest_labelled) - len(data.holdout)
    assert record["champion_age"] == 0


def test_no_champion_is_a_recorded_state(toy_batch, toy_schema):
    labelled = toy_batch("2025-01").frame
    record = evaluate(None, None, {"version": None}, labelled, "2025-02", toy_schema, 0.5)
    assert record["champion"] is None and record["metrics"] is None
    assert "cold start" in record["note"] and record["as_of"] == "2025-02"


def test_compare_scores_both_models_on_the_same_rows(toy_batch, toy_schema):
    data = split([toy_batch("2025-01", seed=1, n=400), toy_batch("2025-02", seed=2, n=400)],
                 toy_schema, WindowPolicy())
    weak = fit(data.train.assign(x1=0.0), toy_schema, "logistic_regression", {}, 0)
    strong = fit(data.train, toy_schema, "logistic_regression", {}, 0)
    policy = ComparePolicy("roc_auc", 0.01, {}, {})
    record, curves = compare(weak, strong, data.holdout, toy_schema, 0.5, policy)
    assert record["promote"] and record["improvement"] > 0.01
    assert record["champion"]["rows"] == record["challenger"]["rows"] == len(data.holdout)
    assert isinstance(curves["challenger"], pd.DataFrame)
    back, _ = compare(strong, weak, data.holdout, toy_schema, 0.5, policy)
    assert not back["promote"]
