import numpy as np
import pandas as pd
import pytest

from retrain.data.splits import WindowPolicy, split
from retrain.errors import DataError
from retrain.model.metrics import score
from retrain.model.modeling import dump, fit, load, predict_proba
from retrain.params import ESTIMATORS

HYPER = {
    "logistic_regression": {"max_iter": 500},
    "random_forest": {"n_estimators": 30, "min_samples_leaf": 5},
    "hist_gradient_boosting": {"max_iter": 50},
}


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
    assert np.array_equal(
        predict_proba(model, shuffled, toy_schema), predict_proba(model, data.holdout, toy_schema)
    )


def test_unknown_estimator_and_bad_hyperparameter_are_refused(data, toy_schema):
    with pytest.raises(DataError, match="train.estimator is 'svm'"):
        fit(data.train, toy_schema, "svm", {}, 0)
    with pytest.raises(DataError, match="train.random_forest"):
        fit(data.train, toy_schema, "random_forest", {"n_trees": 3}, 0)


def test_training_uses_only_schema_features(data, toy_schema):
    train = data.train.assign(leak=data.train["label"])
    model = fit(train, toy_schema, "random_forest", HYPER["random_forest"], 0)
    assert list(model.named_steps["features"].feature_names_in_) == ["x1", "x2", "colour"]


def _sklearn_tree_encoding(numeric: list[str], categorical: list[str]):
    """What tree models were fed before TreeEncoder: SimpleImputer and OrdinalEncoder."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    return ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median"), numeric),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="__missing__"),
                    OrdinalEncoder(
                        handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
                    ),
                ),
                categorical,
            ),
        ]
    )


@pytest.mark.parametrize("as_category", [False, True])
@pytest.mark.parametrize("missing_at_fit", [False, True])
def test_tree_encoder_gives_the_matrix_of_imputer_and_ordinal_encoder(as_category, missing_at_fit):
    from retrain.model.preprocessing import TreeEncoder

    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n).round(2),
            "b": rng.integers(0, 5, n).astype(float),
            "c": pd.Series(rng.choice(["red", "Blue", "green", "10"], n), dtype="str"),
            "d": pd.Series(rng.choice(["x", "y"], n), dtype="str"),
        }
    )
    frame.loc[rng.random(n) < 0.1, "a"] = np.nan
    if missing_at_fit:
        frame.loc[rng.random(n) < 0.1, "c"] = None
    later = frame.sample(200, random_state=1).reset_index(drop=True)
    later.loc[:20, "c"] = "ultraviolet"
    later.loc[21:40, "c"] = None
    later.loc[41:60, "b"] = np.nan
    if as_category:
        frame = frame.astype({"c": "category", "d": "category"})
        later = later.astype({"c": "category", "d": "category"})
    ours = TreeEncoder(("a", "b"), ("c", "d")).fit(frame)
    theirs = _sklearn_tree_encoding(["a", "b"], ["c", "d"]).fit(frame)
    assert np.array_equal(ours.transform(frame), theirs.transform(frame))
    assert np.array_equal(ours.transform(later), theirs.transform(later))
    assert (ours.transform(later)[:21, 2] == -1).all()


def test_tree_encoder_keeps_the_most_frequent_values_and_counts_the_rest_as_one():
    from retrain.data.schema import MISSING
    from retrain.model.preprocessing import OTHER, TreeEncoder

    frame = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 3 + ["c"] * 3 + ["d"] + [None] * 4})
    assert TreeEncoder((), ("c",)).fit(frame).categories_ == [[MISSING, "a", "b", "c", "d"]]
    assert TreeEncoder((), ("c",), max_categories=5).fit(frame).categories_ == [[MISSING, "a", "b", "c", "d"]]
    capped = TreeEncoder((), ("c",), max_categories=4).fit(frame)
    assert capped.categories_ == [[MISSING, OTHER, "a", "b"]]  # b and c tie: the first by value
    later = pd.DataFrame({"c": ["a", "b", "c", "d", "never seen", None]})
    assert capped.transform(later)[:, 0].tolist() == [2, 3, 1, 1, 1, 0]


def test_gradient_boosting_learns_from_a_column_of_more_values_than_its_bins(data, toy_schema):
    """A column like a pet's name (a thousand values, most seen once or twice) fits: the
    encoder gives the estimator at most max_bins codes, and scores an unseen name."""
    rng = np.random.default_rng(3)
    names = rng.choice([f"name{i}" for i in range(1000)], len(data.train))
    train = data.train.assign(colour=np.where(rng.random(len(data.train)) < 0.5, names, data.train["colour"]))
    model = fit(train, toy_schema, "hist_gradient_boosting", {"max_iter": 50, "max_bins": 32}, 0)
    assert len(model.named_steps["features"].categories_[0]) == 32
    assert {"red", "green", "blue"} <= set(model.named_steps["features"].categories_[0])
    holdout = data.holdout.copy()
    holdout.loc[holdout.index[:5], "colour"] = "a name never seen"
    proba = predict_proba(load(dump(model)), holdout, toy_schema)
    assert score(holdout["label"], proba)["roc_auc"] > 0.75


@pytest.mark.parametrize("estimator", ["random_forest", "hist_gradient_boosting"])
def test_tree_models_fit_on_tree_encoder_output(estimator, data, toy_schema):
    from retrain.model.preprocessing import TreeEncoder

    model = fit(data.train, toy_schema, estimator, HYPER[estimator], 0)
    assert isinstance(model.named_steps["features"], TreeEncoder)
    rows = data.holdout.head(3).copy()
    rows.loc[rows.index[0], "colour"] = "ultraviolet"
    rows.loc[rows.index[1], "x1"] = np.nan
    rows.loc[rows.index[2], "colour"] = None
    assert np.isfinite(predict_proba(load(dump(model)), rows, toy_schema)).all()


def test_scoring_in_chunks_gives_the_same_probabilities(monkeypatch, toy_batch, toy_schema):
    import numpy as np

    from retrain.model import modeling

    frame = toy_batch("2025-01", n=500).frame
    model = modeling.fit(frame, toy_schema, "hist_gradient_boosting", {}, 0)
    whole = modeling.predict_proba(model, frame, toy_schema)
    monkeypatch.setattr(modeling, "CHUNK_ROWS", 64)
    assert np.array_equal(modeling.predict_proba(model, frame, toy_schema), whole)
    assert len(modeling.predict_proba(model, frame.iloc[:0], toy_schema)) == 0


def test_a_model_file_is_the_same_bytes_for_the_same_model(toy_batch, toy_schema):
    from retrain.data.splits import WindowPolicy, split
    from retrain.model.modeling import dump, fit

    data = split([toy_batch("2025-01"), toy_batch("2025-02", seed=2)], toy_schema, WindowPolicy())
    for estimator in ("hist_gradient_boosting", "random_forest", "logistic_regression"):
        first = dump(fit(data.train, toy_schema, estimator, {}, 0))
        assert first.startswith(b"PK") and first == dump(fit(data.train, toy_schema, estimator, {}, 0)), (
            estimator
        )


def test_a_model_saved_before_the_package_had_folders_still_loads(data, toy_schema):
    """Models of registries made before 0.2 name the encoder by its old module,
    retrain.features; they load and score as they did."""
    import io
    import zipfile

    model = fit(data.train, toy_schema, "hist_gradient_boosting", {"max_iter": 20}, 0)
    current = dump(model)
    assert b'"__module__": "retrain.model.preprocessing"' in zipfile.ZipFile(io.BytesIO(current)).read(
        "schema.json"
    )
    source, out = zipfile.ZipFile(io.BytesIO(current)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            if name == "schema.json":
                content = content.replace(b"retrain.model.preprocessing", b"retrain.features")
            target.writestr(name, content)
    legacy = out.getvalue()
    assert b'"__module__": "retrain.features"' in zipfile.ZipFile(io.BytesIO(legacy)).read("schema.json")
    expected = predict_proba(model, data.holdout, toy_schema)
    assert np.array_equal(predict_proba(load(legacy), data.holdout, toy_schema), expected)


def test_loading_a_model_file_never_runs_code_from_it(tmp_path):
    import os
    import pickle

    import skops.io
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from retrain.errors import DataError
    from retrain.model.modeling import load

    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with pytest.raises(DataError, match="not in skops format"):
        load(pickle.dumps(Exploit()))
    hostile = skops.io.dumps(make_pipeline(FunctionTransformer(os.system)))
    with pytest.raises(DataError, match=r"types outside the trusted list: .*system"):
        load(hostile)
    assert not marker.exists()


ROUND_TRIP = """
import sys
import sklearn.utils
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from retrain.data.schema import CleaningPolicy, Schema, validate_batch
from retrain.errors import DataError
from retrain.model.modeling import dump, fit, load, predict_proba
from retrain.params import ESTIMATORS
from tests.helpers import TOY, toy_raw

schema = Schema.from_params(TOY)
rows = validate_batch(toy_raw("2025-01"), "data/raw/2025-01.csv", schema, CleaningPolicy()).frame
for estimator in ESTIMATORS:
    model = fit(rows, schema, estimator, {}, seed=1)
    back = load(dump(model))
    assert (predict_proba(back, rows, schema) == predict_proba(model, rows, schema)).all(), estimator
assert "skops.io" in sys.modules and sklearn.utils.all_estimators.__name__ == "all_estimators"
features = fit(rows, schema, "logistic_regression", {}, seed=1)["features"]
other = make_pipeline(GaussianNB())
other.fit(features.transform(rows[list(schema.features)]), rows["label"].astype(int))
try:
    load(sys.modules["skops.io"].dumps(other))
except DataError as err:
    print(err)
"""


def test_a_fresh_process_loads_every_estimator_and_refuses_other_sklearn_types():
    """skops is imported without trusting every scikit-learn estimator (modeling._skops_io):
    the models make_model builds still load, any other estimator is refused."""
    import subprocess
    import sys

    from tests.helpers import ROOT

    proc = subprocess.run(
        [sys.executable, "-c", ROUND_TRIP], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("the model file holds types outside the trusted list: ")
    assert "sklearn.naive_bayes.GaussianNB" in proc.stdout


UFUNC_NAMES = """
import json, sys
import pandas, sklearn.base
before = list(sys.modules)
if sys.argv[1] == "shortcut":
    from retrain.model.modeling import _skops_io
    _skops_io()
else:
    import skops.io
from skops.io import _trusted_types as known
print(json.dumps({
    "order_kept": list(sys.modules)[: len(before)] == before,
    "names": [known.SCIPY_UFUNC_TYPE_NAMES, known.NUMPY_UFUNC_TYPE_NAMES, known.SKLEARN_INTERNAL_TYPE_NAMES],
}))
"""


def test_the_quick_skops_import_names_every_ufunc_as_skops_does_and_keeps_the_module_order():
    """modeling._scipy_first puts scipy's modules first while skops names scipy's ufuncs: the same
    names as skops' own import, and sys.modules back in its order afterwards."""
    import json
    import subprocess
    import sys

    from tests.helpers import ROOT

    def names(how: str) -> dict:
        proc = subprocess.run(
            [sys.executable, "-c", UFUNC_NAMES, how], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout)

    shortcut, plain = names("shortcut"), names("plain")
    assert shortcut["order_kept"] and plain["order_kept"]
    assert len(shortcut["names"][0]) > 100  # scipy's ufuncs were named, not skipped
    assert shortcut["names"] == plain["names"]


def test_permutation_importance_ranks_the_features_the_label_depends_on(toy_schema, toy_batch):
    from retrain.model.importance import permutation_importance
    from retrain.model.modeling import fit

    train, holdout = toy_batch("2025-01", n=1500, seed=1).frame, toy_batch("2025-02", n=600, seed=2).frame
    model = fit(train, toy_schema, "logistic_regression", {"C": 1.0, "max_iter": 200}, 0)
    importance = permutation_importance(model, holdout, toy_schema, metric="roc_auc", threshold=0.5, seed=0)
    assert list(importance) == ["x1", "colour", "x2"]  # the label depends on x1, then colour
    assert importance["x1"] > 0.1 and abs(importance["x2"]) < 0.02
    assert importance == permutation_importance(
        model, holdout, toy_schema, metric="roc_auc", threshold=0.5, seed=0
    )
    brier = permutation_importance(model, holdout, toy_schema, metric="brier", threshold=0.5, seed=0)
    assert brier["x1"] > 0  # a fall in quality is positive whichever way the metric points
    one_class = holdout.assign(label=0)
    assert permutation_importance(model, one_class, toy_schema, metric="roc_auc", threshold=0.5, seed=0) == {}
