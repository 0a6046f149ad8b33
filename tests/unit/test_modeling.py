import numpy as np
import pandas as pd
import pytest

from retrain.errors import DataError
from retrain.features import ESTIMATORS
from retrain.metrics import score
from retrain.modeling import dump, fit, load, predict_proba
from retrain.splits import WindowPolicy, split

HYPER = {"logistic_regression": {"max_iter": 500},
         "random_forest": {"n_estimators": 30, "min_samples_leaf": 5},
         "hist_gradient_boosting": {"max_iter": 50}}


@pytest.fixture
def data(toy_batch, toy_schema):
    batches = [toy_batch(f"2025-0{m}", seed=m, n=300) for m in range(1, 4)]
    return split(batches, toy_schema, WindowPolicy())


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_every_estimator_learns_the_toy_signal(estimator, data, toy_schema):
    model = fit(data.train, toy_schema, estimator, HYPER[estimator], seed=1)
    proba = predict_proba(model, data.holdout, toy_schema)
    assert score(data.holdout["label"], proba)["roc_auc"] > 0.75


def test_same_data_and_seed_give_identical_bytes(data, toy_schema):
    a = dump(fit(data.train, toy_schema, "hist_gradient_boosting", HYPER["hist_gradient_boosting"], 3))
    b = dump(fit(data.train, toy_schema, "hist_gradient_boosting", HYPER["hist_gradient_boosting"], 3))
    assert a == b


def test_unknown_category_and_missing_values_do_not_fail_at_serving(data, toy_schema):
    model = load(dump(fit(data.train, toy_schema, "logistic_regression", {}, 0)))
    rows = data.holdout.head(3).copy()
    rows.loc[rows.index[0], "colour"] = "ultraviolet"
    rows.loc[rows.index[1], "x1"] = np.nan
    rows.loc[rows.index[2], "colour"] = None
    proba = predict_proba(model, rows, toy_schema)
    assert proba.shape == (3,) and np.isfinite(proba).all()


def test_column_order_of_the_input_does_not_matter(data, toy_schema):
    model = fit(data.train, toy_schema, "random_forest", HYPER["random_forest"], 0)
    shuffled = data.holdout[list(reversed(data.holdout.columns))]
    assert np.array_equal(predict_proba(model, shuffled, toy_schema),
                          predict_proba(model, data.holdout, toy_schema))


def test_unknown_estimator_and_bad_hyperparameter_are_refused(data, toy_schema):
    with pytest.raises(DataError, match="train.estimator is 'svm'"):
        fit(data.train, toy_schema, "svm", {}, 0)
    with pytest.raises(DataError, match="train.random_forest"):
        fit(data.train, toy_schema, "random_forest", {"n_trees": 3}, 0)


def test_training_uses_only_schema_features(data, toy_schema):
    train = data.train.assign(leak=data.train["label"])
    model = fit(train, toy_schema, "random_forest", HYPER["random_forest"], 0)
    assert list(model.named_steps["features"].feature_names_in_) == ["x1", "x2", "colour"]
    assert isinstance(pd.DataFrame, type)


def test_scoring_in_chunks_gives_the_same_probabilities(monkeypatch, toy_batch, toy_schema):
    import numpy as np

    from retrain import modeling

    frame = toy_batch("2025-01", n=500).frame
    model = modeling.fit(frame, toy_schema, "hist_gradient_boosting", {}, 0)
    whole = modeling.predict_proba(model, frame, toy_schema)
    monkeypatch.setattr(modeling, "CHUNK_ROWS", 64)
    assert np.array_equal(modeling.predict_proba(model, frame, toy_schema), whole)
    assert len(modeling.predict_proba(model, frame.iloc[:0], toy_schema)) == 0
