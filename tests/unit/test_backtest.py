import copy
import dataclasses
import json

import pytest

from retrain.backtest import (
    Policy,
    Settings,
    against_schedules,
    drift_history,
    per_batch_table,
    policies_from,
    read_checkpoint,
    replay,
    save_checkpoint,
    settings_digest,
    summarise,
    tradeoff_table,
)
from retrain.data.files import list_batches, read_raw_batch
from retrain.data.schema import CleaningPolicy, validate_batch
from retrain.data.splits import WindowPolicy
from retrain.errors import DataError
from retrain.model.training import TrainingSettings
from retrain.monitor.comparison import ComparePolicy
from retrain.monitor.evaluation import DomainCheck
from tests.helpers import ROOT

POLICIES = [
    Policy("policy", "triggers"),
    Policy("never", "never"),
    Policy("every_batch", "every"),
    Policy("every_2", "every_k", 2),
]


@pytest.fixture
def settings(toy_schema, params):
    decide = copy.deepcopy(params["decide"])
    decide["min_rows"] = 50
    return Settings(
        toy_schema,
        WindowPolicy("last_n", 2, 0.4),
        decide,
        ComparePolicy("roc_auc", 0.0, {}, {"roc_auc": 0.5}, 20),
        TrainingSettings("logistic_regression", {}, 0, 0.5, 5, 500, 1, tie_seed=0),
        DomainCheck(3, 300, 0),
    )


@pytest.fixture
def toy_history(toy_batch):
    return [toy_batch(f"2025-{m:02d}", seed=m, shift=0.0 if m < 4 else 1.5) for m in range(1, 7)]


def decisions(result, upto):
    return {
        name: [
            (r["period"], r["retrain"], r["promoted"], tuple(r["fired"]), r["served"])
            for r in rows
            if r["period"] <= upto
        ]
        for name, rows in result["batches"].items()
    }


def test_no_look_ahead_labels_of_a_later_batch_change_nothing_before_it(settings, toy_history, toy_batch):
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
    assert a["models_reused"] > 0
    assert a["summary"]["every_batch"]["retrains"] == len(toy_history) - 1
    assert a["summary"]["never"]["retrains"] == 0
    assert a["summary"]["every_2"]["retrains"] == 2  # batches 2 and 4 (k=2)


def test_a_harmless_covariate_shift_is_explained_but_not_retrained_on(settings, toy_batch):
    history = [toy_batch(f"2025-{m:02d}", seed=m) for m in range(1, 7)]
    for batch in history[3:]:  # the label does not depend on x2
        batch.frame["x2"] = batch.frame["x2"] + 60
    result = replay(history, settings, POLICIES, "roc_auc")
    policy = result["batches"]["policy"]
    assert not any(r["retrain"] for r in policy[1:])
    assert "data_drift" in {f for r in policy for f in r["unconfirmed"]}


def test_the_drift_history_has_every_feature_of_every_evaluated_batch(settings, toy_history):
    result = replay(toy_history, settings, POLICIES, "roc_auc")
    rows = drift_history(result)
    evaluated = [r for r in result["batches"]["policy"] if r.get("psi")]
    assert evaluated and len(rows) == sum(len(r["psi"]) for r in evaluated)
    assert {r["period"] for r in rows} == {r["period"] for r in evaluated}
    first = evaluated[0]
    feature, value = next(iter(first["psi"].items()))
    row = next(r for r in rows if r["period"] == first["period"] and r["feature"] == feature)
    assert row["psi"] == round(value, 6) and row["retrained"] == int(first["retrain"])
    assert row["drifted"] == int(feature in first["drifted"])


def test_a_concept_change_makes_the_policy_retrain_and_promote(settings, toy_history):
    for batch in toy_history[3:]:
        batch.frame["label"] = (1 - batch.frame["label"]).astype(batch.frame["label"].dtype)
    result = replay(toy_history, settings, POLICIES, "roc_auc")
    policy = result["batches"]["policy"]
    assert any(r["retrain"] and r["promoted"] for r in policy if r["period"] >= "2025-04")
    assert {"performance_roc_auc"} <= {f for r in policy for f in r["fired"]}


def test_summary_counts_retrains_after_the_first_model_and_the_cost():
    rows = [
        {"served": None, "retrain": True, "promoted": True, "rows_trained": 100},
        {"served": {"roc_auc": 0.8}, "retrain": False, "promoted": False, "rows_trained": 0},
        {"served": {"roc_auc": 0.6}, "retrain": True, "promoted": False, "rows_trained": 150},
    ]
    summary = summarise(rows, "roc_auc")
    assert summary == {
        "retrains": 1,
        "promotions": 0,
        "retrains_not_promoted": 1,
        "mean_roc_auc": 0.7,
        "worst_roc_auc": 0.6,
        "rows_trained": 250,
        "batches_served": 2,
    }


def test_policies_include_the_baselines_and_every_schedule():
    names = [p.name for p in policies_from({"every_k": 3})]
    assert names == ["policy", "never", "every_batch", "every_3"]
    names = [p.name for p in policies_from({"every_k": [6, 2, 3]})]
    assert names == ["policy", "never", "every_batch", "every_2", "every_3", "every_6"]
    assert [p.name for p in policies_from({})][3:] == ["every_2", "every_3", "every_4", "every_6"]
    for wrong in (1, [2, "3"], [True], 2.5, "2"):
        with pytest.raises(DataError, match="backtest.every_k"):
            policies_from({"every_k": wrong})


def test_dominance_needs_no_lower_mean_and_fewer_retrains_and_a_gap_counts_as_no_skill():
    policies = policies_from({"every_k": [2, 3]})

    def summary(policy, every_2, every_3):
        return {
            name: {"retrains": r, "mean_roc_auc": m}
            for name, (r, m) in {"policy": policy, "every_2": every_2, "every_3": every_3}.items()
        }

    won = against_schedules(summary((3, 0.80), (5, 0.79), (3, 0.75)), policies, "roc_auc")
    assert won["best_schedule"] == "every_2" and won["dominates_best_schedule"]
    assert won["line"].startswith("The params policy dominates the best fixed schedule (every 2")
    tie = against_schedules(summary((5, 0.80), (5, 0.79), (3, 0.75)), policies, "roc_auc")
    assert not tie["dominates_best_schedule"] and "does not dominate" in tie["line"]
    lower = against_schedules(summary((2, 0.78), (5, 0.79), (3, 0.75)), policies, "roc_auc")
    assert not lower["dominates_best_schedule"]
    same_mean = against_schedules(summary((2, 0.8), (5, 0.79), (2, 0.79)), policies, "roc_auc")
    assert same_mean["best_schedule"] == "every_3"  # the same mean with fewer retrains
    # a batch the schedule served and the policy had no model for counts as ROC AUC 0.5, what a
    # model that ranks every row alike scores: against a schedule's model of no skill, no loss
    served = {"policy": [None, None, 0.9, 0.7], "every_2": [None, 0.5, 0.8, 0.78], "every_3": [None] * 4}
    gap = against_schedules(summary((1, 0.80), (5, 0.69), (3, 0.6)), policies, "roc_auc", served=served)
    assert gap["dominates_best_schedule"]
    assert (
        "no model in production for 1 of the 3 batches the schedule served, counted as 0.5 "
        "(every row ranked alike); on all 3, mean served roc_auc 0.7000 against 0.6933" in gap["line"]
    )
    # against a schedule's model that ranked well there, the policy's gap costs it the lead
    skilled = {**served, "every_2": [None, 0.7, 0.8, 0.78]}
    lost = against_schedules(summary((1, 0.80), (5, 0.76), (3, 0.6)), policies, "roc_auc", served=skilled)
    assert not lost["dominates_best_schedule"] and "0.7000 against 0.7600" in lost["line"]

    # a metric without a no-skill score: the policy needs a model wherever the schedule had one,
    # and the means are compared on the batches both served
    def f1(policy, every_2):
        return {
            name: {"retrains": r, "mean_f1": m}
            for name, (r, m) in {"policy": policy, "every_2": every_2}.items()
        }

    strict = against_schedules(f1((1, 0.80), (5, 0.69)), policies_from({"every_k": [2]}), "f1", served=served)
    assert not strict["dominates_best_schedule"]
    assert (
        "no model in production for 1 of the 3 batches the schedule served; on the 2 both served, "
        "mean served f1 0.8000 against 0.7900" in strict["line"]
    )
    never_served = against_schedules(summary((0, None), (5, 0.69), (3, 0.6)), policies, "roc_auc")
    assert never_served["best_schedule"] == "every_2" and never_served["dominates_best_schedule"] is False
    assert "it had no model in production on any labelled batch" in never_served["line"]
    assert "0.6900 with 5 retrains" in never_served["line"]
    nobody = against_schedules(summary((0, None), (5, None), (3, None)), policies, "roc_auc")
    assert nobody["dominates_best_schedule"] is None and "no fixed schedule had a model" in nobody["line"]
    full = {**served, "policy": [None, 0.6, 0.9, 0.7]}
    assert against_schedules(f1((1, 0.73), (5, 0.69)), policies_from({"every_k": [2]}), "f1", served=full)[
        "dominates_best_schedule"
    ]


def test_a_replay_resumed_from_its_checkpoint_equals_a_replay_from_the_start(settings, toy_history, tmp_path):
    full = replay(toy_history, settings, POLICIES, "roc_auc")
    first = replay(toy_history[:4], settings, POLICIES, "roc_auc")
    save_checkpoint(tmp_path, first["checkpoint"])
    resumed = replay(toy_history, settings, POLICIES, "roc_auc", checkpoint=read_checkpoint(tmp_path))
    assert resumed["replayed"] == 2 and full["replayed"] == 6
    assert resumed["summary"] == full["summary"] and resumed["batches"] == full["batches"]
    save_checkpoint(tmp_path, resumed["checkpoint"])
    again = replay(toy_history, settings, POLICIES, "roc_auc", checkpoint=read_checkpoint(tmp_path))
    assert again["replayed"] == 0 and again["summary"] == full["summary"]
    stored = sorted(p.name for p in tmp_path.iterdir())
    assert "state.json" in stored and all(
        name == "state.json" or name[:32] in json.dumps(again["checkpoint"].champions) for name in stored
    )


def test_a_checkpoint_of_other_settings_or_changed_batches_is_not_resumed(
    settings, toy_history, tmp_path, toy_batch
):
    save_checkpoint(tmp_path, replay(toy_history, settings, POLICIES, "roc_auc")["checkpoint"])
    digest = settings_digest(settings, POLICIES, "roc_auc")
    assert read_checkpoint(tmp_path, digest) is not None and read_checkpoint(tmp_path, "other") is None
    other = dataclasses.replace(settings, training=dataclasses.replace(settings.training, threshold=0.4))
    assert (
        replay(toy_history, other, POLICIES, "roc_auc", checkpoint=read_checkpoint(tmp_path))["replayed"] == 6
    )
    changed = list(toy_history)
    changed[4] = toy_batch("2025-05", seed=99)
    resumed = replay(changed, settings, POLICIES, "roc_auc", checkpoint=read_checkpoint(tmp_path))
    assert resumed["replayed"] == 2  # from the changed batch on
    assert resumed["batches"] == replay(changed, settings, POLICIES, "roc_auc")["batches"]
    (tmp_path / "state.json").write_text("{broken")
    assert read_checkpoint(tmp_path) is None


@pytest.fixture(scope="module")
def demo_result():
    from retrain.params import load

    params = load(ROOT / "params.yaml")
    settings = Settings.from_params(params)
    batches = [
        validate_batch(read_raw_batch(p), str(p), settings.schema, CleaningPolicy())
        for p in list_batches(ROOT / "data/raw")
    ]
    baselines = [p for p in policies_from(params["backtest"]) if p.name in ("policy", "never", "every_batch")]
    return replay(batches, settings, baselines, "roc_auc")


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


def test_a_first_model_of_one_batch_is_replaced_once_the_window_has_filled(settings, toy_batch):
    history = [toy_batch(f"2025-{m:02d}", seed=m) for m in range(1, 6)]  # stable: no drift to answer
    three = dataclasses.replace(settings, window=WindowPolicy("last_n", 3, 0.4))
    rows = replay(history, three, POLICIES[:1], "roc_auc")["batches"]["policy"]
    grown = [t for t, r in enumerate(rows) if "data_growth" in r["fired"]]
    assert grown == [2] and rows[2]["retrain"]  # 2025-03: three batches against one's training part
    assert not rows[1]["retrain"]  # right after the cold start the window holds 2.67 times: quiet
    two = replay(history, settings, POLICIES[:1], "roc_auc")["batches"]["policy"]  # a two-batch window
    assert not [r for r in two if "data_growth" in r["fired"]]


def one_label(batch):
    batch.frame["label"] = 0
    return batch


@pytest.mark.parametrize(
    "first",
    [
        # a partial period of one row (the first test of an epidemic, the first minutes of a year in UTC)
        lambda toy_batch: toy_batch("2025-01", seed=1, n=1),
        # six rows, none positive: logistic regression cannot be fitted on them (it raised before)
        lambda toy_batch: one_label(toy_batch("2025-01", seed=1, n=6)),
    ],
    ids=["one_row", "one_label"],
)
def test_a_first_batch_too_small_to_train_on_leaves_its_step_without_a_model(settings, toy_batch, first):
    """No policy has a model after that first batch, and every one has from the next."""
    history = [first(toy_batch)] + [toy_batch(f"2025-{m:02d}", seed=m) for m in range(2, 5)]
    result = replay(history, settings, POLICIES, "roc_auc")
    for rows in result["batches"].values():
        assert not rows[0]["retrain"] and rows[1]["served"] is None
        assert rows[1]["retrain"] and rows[2]["served"] is not None


def test_the_policy_fits_no_challenger_that_compare_could_not_judge(settings, toy_history):
    """Holdouts of 80 rows against compare.min_holdout_rows 100: every challenger would be
    undecided and thrown away, so none is trained; the schedules promote without compare."""
    strict = dataclasses.replace(
        settings, compare=dataclasses.replace(settings.compare, min_holdout_rows=100)
    )
    rows = replay(toy_history, strict, POLICIES, "roc_auc")["batches"]
    assert rows["policy"][0]["fired"] == ["cold_start"]
    assert not any(r["retrain"] for r in rows["policy"]) and all(r["served"] is None for r in rows["policy"])
    assert [r["retrain"] for r in rows["every_2"]] == [True, False, True, False, True, False]
    assert replay(toy_history, settings, POLICIES[:1], "roc_auc")["batches"]["policy"][0]["promoted"]


def test_a_persistent_shift_no_retrain_fixes_is_answered_after_one_failed_challenger(settings, toy_batch):
    import numpy as np

    history = [toy_batch(f"2025-{m:02d}", seed=m) for m in range(1, 9)]
    rng = np.random.default_rng(0)
    for batch in history[3:]:  # from April on, 45% of labels are noise, for good
        flip = rng.random(len(batch.frame)) < 0.45
        batch.frame.loc[flip, "label"] = 1 - batch.frame.loc[flip, "label"]
    rows = replay(history, settings, POLICIES, "roc_auc")["batches"]["policy"]
    noisy = [r for r in rows if r["period"] >= "2025-04"]
    assert noisy[0]["retrain"]  # the fall is seen at once
    assert sum(r["retrain"] for r in noisy) <= 2  # then answered, not retried every batch
