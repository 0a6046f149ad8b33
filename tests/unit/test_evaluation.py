import dataclasses

import numpy as np
import pandas as pd
import pytest

from retrain.data.schema import Schema
from retrain.data.splits import WindowPolicy, split
from retrain.errors import DataError
from retrain.model.modeling import fit, load, predict_proba
from retrain.model.training import TrainingSettings, train_challenger
from retrain.monitor.comparison import ComparePolicy, compare, holdout_probabilities
from retrain.monitor.evaluation import evaluate, periods_between, unseen_rows
from retrain.registry.champion import Champion
from tests.helpers import TOY


def test_periods_between_counts_batches_of_data_time():
    assert periods_between("2025-11", "2026-02", "M") == 3
    assert periods_between("2025-11", "2025-11", "M") == 0


def champion_from(data, schema, version="v1.0.0"):
    settings = TrainingSettings("logistic_regression", {}, seed=0, threshold=0.5, bins=5, reference_rows=300)
    trained = train_challenger(data.train, data.holdout, schema, settings, {"as_of": "x", "reason": "test"})
    pointer = {"version": version, "tag": f"m@{version}", "commit": "abc"}
    return Champion(
        pointer,
        load(trained.model_bytes),
        trained.metadata,
        trained.profile,
        trained.reference,
        trained.trained_rows,
    )


def test_champion_is_scored_only_on_rows_newer_than_its_training(toy_batch, toy_schema):
    data = split([toy_batch("2025-01", seed=1), toy_batch("2025-02", seed=2)], toy_schema, WindowPolicy())
    champion = champion_from(data, toy_schema)
    unseen = unseen_rows(data.newest_labelled, toy_schema, champion.metadata)
    assert sorted(unseen["key"]) == sorted(data.holdout["key"])
    record = evaluate(champion, data.newest_labelled, data.newest, toy_schema, 0.5)
    assert record["metrics"]["rows"] == len(data.holdout)
    assert record["rows_seen_in_training"] == len(data.newest_labelled) - len(data.holdout)
    assert record["champion_age"] == 0 and record["newest_labelled"]
    assert record["concept"]["rows"] == len(data.holdout)
    assert record["label"]["reference_rows"] == len(data.newest_labelled)  # the whole period
    assert set(record["drift"]["features"]) == {"x1", "x2", "colour"}


def test_data_growth_compares_the_window_with_the_rows_the_champion_trained_on(toy_batch, toy_schema):
    first = split([toy_batch("2025-01", seed=1)], toy_schema, WindowPolicy())
    champion = champion_from(first, toy_schema)
    later = split([toy_batch(f"2025-0{m}", seed=m) for m in (1, 2, 3)], toy_schema, WindowPolicy())
    window = int(later.summary["train_rows"])
    record = evaluate(champion, later.newest_labelled, later.newest, toy_schema, 0.5, window_rows=window)
    assert record["data_growth"] == {"champion_rows": len(first.train), "window_rows": window}
    assert window >= 3 * len(first.train)
    assert "data_growth" not in evaluate(champion, later.newest_labelled, later.newest, toy_schema, 0.5)


def test_unlabelled_newest_batch_gets_drift_and_an_estimate(toy_batch, toy_schema):
    batches = [
        toy_batch("2025-01", seed=1),
        toy_batch("2025-02", seed=2),
        toy_batch("2025-03", seed=3, labelled=False),
    ]
    data = split(batches, toy_schema, WindowPolicy())
    record = evaluate(champion_from(data, toy_schema), data.newest_labelled, data.newest, toy_schema, 0.5)
    assert record["as_of"] == "2025-03" and record["labelled_period"] == "2025-02"
    assert not record["newest_labelled"]
    assert record["drift"]["period"] == "2025-03" and record["estimated"]["rows"] == 200
    assert 0.5 < record["estimated"]["roc_auc"] < 1.0


def test_estimate_of_an_unlabelled_batch_uses_a_seeded_sample_of_its_rows(toy_batch, toy_schema):
    batches = [
        toy_batch("2025-01", seed=1),
        toy_batch("2025-02", seed=2),
        toy_batch("2025-03", n=600, seed=3, labelled=False),
    ]
    data = split(batches, toy_schema, WindowPolicy())
    champion = champion_from(data, toy_schema)
    args = (champion, data.newest_labelled, data.newest, toy_schema, 0.5)
    sampled = evaluate(*args, most=150, seed=4)
    assert sampled["estimated"]["rows"] == 150 and sampled["drift"]["rows"] == 600
    assert evaluate(*args, most=150, seed=4)["estimated"] == sampled["estimated"]
    assert evaluate(*args)["estimated"]["rows"] == 600


def test_a_sampled_labelled_newest_batch_is_scored_once_for_metrics_and_estimate(
    toy_batch, toy_schema, monkeypatch
):
    import retrain.monitor.evaluation as evaluation

    first = split([toy_batch("2025-01", seed=1)], toy_schema, WindowPolicy())
    champion = champion_from(first, toy_schema)
    data = split(
        [toy_batch("2025-01", seed=1), toy_batch("2025-02", n=900, seed=2)],
        toy_schema,
        WindowPolicy(max_labelled_rows=300),
    )
    scored = []
    real = evaluation.predict_proba
    monkeypatch.setattr(
        evaluation,
        "predict_proba",
        lambda model, rows, schema: scored.append(len(rows)) or real(model, rows, schema),
    )
    record = evaluate(champion, data.newest_labelled, data.newest, toy_schema, 0.5, most=300)
    assert scored == [300]
    assert record["metrics"]["rows"] == record["estimated"]["rows"] == 300
    assert record["drift"]["rows"] == 900


def test_no_champion_is_a_recorded_state(toy_batch, toy_schema):
    batch = toy_batch("2025-01").frame
    record = evaluate(None, batch, batch, toy_schema, 0.5)
    assert record["champion"] is None and record["metrics"] is None
    assert "cold start" in record["note"] and record["as_of"] == "2025-01"


def test_a_column_the_champion_needs_is_a_breaking_change(toy_batch, toy_schema):
    data = split([toy_batch("2025-01", seed=1), toy_batch("2025-02", seed=2)], toy_schema, WindowPolicy())
    champion = champion_from(data, toy_schema)
    narrower = Schema.from_params({**TOY, "numeric": ["x1"]})
    with pytest.raises(DataError, match=r"needs column\(s\) x2 .* \(breaking change\)"):
        evaluate(champion, data.newest_labelled, data.newest, narrower, 0.5)


def test_new_values_as_frequent_as_in_the_champions_holdout_are_no_schema_change(toy_batch, toy_schema):
    """A name-like column: 40% of each batch's rows bear a value of their own. The champion's
    profile records that its holdout had as many new values, so the next batch's are as usual;
    one new value in a fifth of the rows on top of them is a change."""
    from retrain.monitor.triggers import decide
    from retrain.params import load as load_params

    def named(batch):
        own = batch.frame.index % 5 < 2
        batch.frame["colour"] = (
            batch.frame["colour"].astype(str).where(~own, "n-" + batch.frame["key"].astype(str))
        )
        return batch

    batches = [named(toy_batch(f"2025-0{m}", seed=m, n=400)) for m in (1, 2, 3)]
    data = split(batches[:2], toy_schema, WindowPolicy())
    champion = champion_from(data, toy_schema)
    assert champion.profile["holdout"]["new_categories"]["colour"] == pytest.approx(0.4, abs=0.05)
    params = load_params()["decide"]

    def schema_change(frame):
        record = evaluate(champion, frame, frame, toy_schema, 0.5)
        return next(t for t in decide(record, params)["triggers"] if t["name"] == "schema_change")

    usual = schema_change(batches[2].frame)
    assert not usual["fired"] and "colour (40.0% of rows, holdout" in usual["detail"]
    changed = batches[2].frame.copy()
    changed.loc[changed.index % 5 == 2, "colour"] = "teal"
    assert schema_change(changed)["fired"]


def test_compare_scores_both_models_on_the_same_rows(toy_batch, toy_schema):
    data = split(
        [toy_batch("2025-01", seed=1, n=400), toy_batch("2025-02", seed=2, n=400)], toy_schema, WindowPolicy()
    )
    weak = fit(data.train.assign(x1=0.0), toy_schema, "logistic_regression", {}, 0)
    strong = fit(data.train, toy_schema, "logistic_regression", {}, 0)
    policy = ComparePolicy("roc_auc", 0.01, {}, {})
    weak_p, strong_p = (predict_proba(m, data.holdout, toy_schema) for m in (weak, strong))
    record, plots = compare(
        {"champion": weak_p, "challenger": strong_p}, data.holdout, toy_schema, 0.5, policy
    )
    assert record["promote"] and record["improvement"] > 0.01
    assert record["champion"]["rows"] == record["challenger"]["rows"] == len(data.holdout)
    scores = plots["challenger"]["scores"]
    assert list(scores[toy_schema.id]) == list(data.holdout[toy_schema.id])
    predicted_positive = (scores["predicted"] == toy_schema.positive).to_numpy()
    assert (predicted_positive == (scores["probability"] >= 0.5).to_numpy()).all()
    assert (scores["actual"] == toy_schema.positive).sum() == data.holdout[toy_schema.target].sum()
    roc, pr = plots["challenger"]["roc"], plots["challenger"]["pr"]
    assert roc["fpr"].is_monotonic_increasing and roc["tpr"].iloc[-1] == 1.0
    assert pr["recall"].iloc[0] == 1.0 and pr["precision"].iloc[-1] == 1.0
    back, _ = compare({"champion": strong_p, "challenger": weak_p}, data.holdout, toy_schema, 0.5, policy)
    assert not back["promote"]


def test_curves_are_thinned_to_at_most_the_asked_points_keeping_both_ends():
    import numpy as np

    from retrain.monitor.evaluation import curve_points

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    proba = np.clip(y * 0.3 + rng.random(5000) * 0.7, 0, 1)
    curves = curve_points(y, proba, most=50)
    for frame in curves.values():
        assert 2 <= len(frame) <= 50
    assert curves["roc"].iloc[0].tolist() == [0.0, 0.0]
    assert curves["roc"].iloc[-1].tolist() == [1.0, 1.0]
    assert curves["pr"]["recall"].iloc[-1] == 0.0
    single = curve_points(np.ones(10), np.linspace(0, 1, 10))
    assert single["roc"].empty and single["pr"].empty


def test_per_row_plot_files_keep_at_most_the_asked_rows_in_order():
    from retrain.monitor.evaluation import plot_sample

    frame = pd.DataFrame({"key": [f"k{i}" for i in range(1000)], "probability": range(1000)})
    sample = plot_sample(frame, 100)
    assert len(sample) == 100 and sample["probability"].is_monotonic_increasing
    assert sample["key"].iloc[0] == "k0" and sample["key"].iloc[-1] == "k999"
    assert plot_sample(frame, 5000) is frame


def _stored(ids, proba):
    return pd.DataFrame({"id": ids, "probability": proba})


def test_stored_probabilities_of_the_same_model_are_reused_in_holdout_order():
    stored = _stored(["a", "b", "c", "d"], [0.1, 0.2, 0.3, 0.4])
    calls = []
    found = holdout_probabilities("m1", stored, "m1", pd.Series(["d", "b"]), "id", lambda: calls.append(1))
    assert found.tolist() == [0.4, 0.2] and not calls


@pytest.mark.parametrize(
    "stored_md5, ids, stored_ids",
    [
        ("other", ["a", "b"], ["a", "b", "c"]),  # scored by another model
        (None, ["a", "b"], ["a", "b", "c"]),  # nothing stored for a model
        ("m1", ["a", "z"], ["a", "b", "c"]),  # a holdout row the model was not scored on
        ("m1", ["a", "b"], ["a", "a", "b"]),  # stored ids repeat: no single answer
    ],
)
def test_holdout_is_scored_again_when_the_stored_probabilities_do_not_answer(stored_md5, ids, stored_ids):
    stored = _stored(stored_ids, [0.5] * len(stored_ids))
    found = holdout_probabilities(
        "m1", stored, stored_md5, pd.Series(ids), "id", lambda: np.array([0.9, 0.8])
    )
    assert found.tolist() == [0.9, 0.8]


def test_no_model_has_no_holdout_probabilities():
    assert (
        holdout_probabilities(
            None,
            _stored(["a"], [0.5]),
            None,
            pd.Series(["a"]),
            "id",
            lambda: pytest.fail("scored a missing model"),
        )
        is None
    )


def test_a_held_baseline_replaces_the_holdout_score_for_that_version_only(toy_batch, toy_schema):
    from retrain.monitor.evaluation import champion_baseline
    from retrain.registry.commands import held_baseline

    data = split([toy_batch("2025-01", seed=1), toy_batch("2025-02", seed=2)], toy_schema, WindowPolicy())
    champion = champion_from(data, toy_schema)
    own = champion_baseline(champion)
    assert not own["held"] and own["metrics"] == champion.metadata["holdout"]["metrics"]
    verdict = {
        "promote": False,
        "reason": "champion stays",
        "as_of": "2025-03",
        "champion_version": "v1.0.0",
        "challenger_md5": "abc",
        "champion": {"roc_auc": 0.61, "rows": 80, "accuracy": 0.6, "positive_rate": 0.5},
        "challenger": {"roc_auc": 0.6},
    }
    baseline = held_baseline(verdict)
    champion.pointer["baseline"] = baseline
    now = champion_baseline(champion)
    assert now["held"] and now["metrics"]["roc_auc"] == 0.61 and now["period"] == "2025-03"
    record = evaluate(champion, data.newest_labelled, data.newest, toy_schema, 0.5)
    assert record["concept"]["reference_rows"] == 80 and record["label"]["reference_positive"] == 40
    champion.pointer["baseline"] = {**baseline, "version": "v0.9.0"}  # another version's hold
    assert not champion_baseline(champion)["held"]
    assert held_baseline({**verdict, "promote": True}) is None
    assert held_baseline({**verdict, "challenger": None}) is None
    assert "asked_by" not in record["baseline"]  # a verdict of before asked_by: answers every trigger
    asked = held_baseline({**verdict, "asked_by": ["data_growth"]})
    asked_champion = dataclasses.replace(champion, pointer={**champion.pointer, "baseline": asked})
    passed_on = evaluate(asked_champion, data.newest_labelled, data.newest, toy_schema, 0.5)
    assert passed_on["baseline"]["asked_by"] == ["data_growth"]
    again = held_baseline({**verdict, "as_of": "2025-04"}, baseline)
    assert baseline["holds"] == 1 and again["holds"] == 2
    twice = dataclasses.replace(champion, pointer={**champion.pointer, "baseline": again})
    assert champion_baseline(twice)["holds"] == 2
    assert held_baseline({**verdict, "champion_version": "v1.1.0"}, again)["holds"] == 1


def test_rows_re_sent_from_the_champions_training_are_not_graded_as_unseen(toy_batch, toy_schema):
    first, second = toy_batch("2025-01", seed=1), toy_batch("2025-02", seed=2)
    data = split([first, second], toy_schema, WindowPolicy())
    champion = champion_from(data, toy_schema)
    assert champion.trained_rows is not None and len(champion.trained_rows) == len(data.train)
    newest = data.newest_labelled.copy()
    holdout = unseen_rows(newest, toy_schema, champion.metadata).index
    old = first.frame.head(30)
    for column in ("key", "x1", "x2", "colour", "label"):  # re-sent under the new date
        newest.loc[holdout[:30], column] = old[column].to_numpy()
    unseen = unseen_rows(newest, toy_schema, champion.metadata)  # a new id may move a tie
    resent = int(unseen["key"].isin(old["key"]).sum())
    assert resent >= 25
    record = evaluate(champion, newest, newest, toy_schema, 0.5)
    assert record["rows_repeating_training_rows"] == resent
    assert record["metrics"]["rows"] == len(unseen) - resent
    plain = evaluate(champion, data.newest_labelled, data.newest, toy_schema, 0.5)
    assert plain["rows_repeating_training_rows"] == 0
    assert plain["metrics"]["rows"] == len(data.holdout)
