import pytest

from retrain.errors import DataError
from retrain.monitor.triggers import decide
from retrain.reporting.markdown import summary_markdown
from retrain.reporting.words import trigger_state

PARAMS = {
    "rule": "any",
    "min_fired": 1,
    "min_rows": 50,
    "cooldown": 0,
    "force": False,
    "cold_start": {"enabled": True},
    "performance": {"enabled": True, "metric": "roc_auc", "threshold": 0.75},
    "performance_drop": {"enabled": True, "metric": "roc_auc", "max_drop": 0.03, "alpha": 0.05},
    "confirm": {
        "triggers": ["data_drift", "multivariate_drift", "label_shift"],
        "metric": "roc_auc",
        "min_drop": 0.01,
    },
    "age": {"enabled": True, "max_batches": 3},
    "data_drift": {
        "enabled": True,
        "psi": 0.2,
        "alpha": 0.01,
        "correction": "holm",
        "share": 0.3,
        "features": {},
    },
    "multivariate_drift": {"enabled": True, "auc": 0.7},
    "concept_drift": {"enabled": True, "alpha": 0.01, "min_effect": 0.05},
    "label_shift": {"enabled": True, "alpha": 0.01, "min_effect": 0.05},
    "estimated_performance": {"enabled": False, "metric": "roc_auc", "threshold": 0.75},
    "schema_change": {
        "enabled": True,
        "new_column": "ignore",
        "type_change": "stop",
        "new_category": "retrain",
        "out_of_range": "ignore",
        "out_of_range_share": 0.05,
    },
}


def feature(psi, p, kind="numeric"):
    return {
        "kind": kind,
        "psi": psi,
        "js": psi / 2,
        "test": "ks" if kind == "numeric" else "chi2",
        "statistic": 0.1,
        "p_value": p,
    }


def evaluation(
    roc_auc=0.8,
    rows=200,
    age=1,
    features=None,
    domain=0.55,
    errors=40,
    positive=50,
    labelled=True,
    estimated=0.8,
    changes=None,
    baseline=0.8,
    baseline_estimated=0.8,
    trained_through="2025-04",
    growth=None,
):
    return {
        "baseline": {
            "period": "2025-05",
            "metrics": {"roc_auc": baseline, "rows": 200, "positive_rate": 0.25},
            "estimated": {"roc_auc": baseline_estimated, "rows": 200},
        },
        "as_of": "2025-06",
        "labelled_period": "2025-06" if labelled else "2025-05",
        "newest_labelled": labelled,
        "champion": {"version": "v1.0.0", "trained_through_period": trained_through},
        **({"data_growth": growth} if growth else {}),
        "metrics": {"roc_auc": roc_auc, "rows": rows, "brier": 0.1, "positive_rate": 0.25},
        "champion_age": age,
        "drift": {
            "rows": rows,
            "features": features
            or {"a": feature(0.01, 0.5), "b": feature(0.02, 0.3), "c": feature(0.0, 0.9, "categorical")},
        },
        "domain_classifier": {"roc_auc": domain, "rows": rows},
        "concept": {"errors": errors, "rows": rows, "reference_errors": 40, "reference_rows": 200},
        "label": {"positive": positive, "rows": rows, "reference_positive": 250, "reference_rows": 1000},
        "estimated": {"roc_auc": estimated, "rows": rows},
        "schema_changes": changes or schema_changes(),
    }


def schema_changes(**found):
    """evaluate's schema_changes record: nothing changed, but what `found` names."""
    return {
        "missing_columns": [],
        "new_columns": [],
        "type_changes": {},
        "new_categories": {},
        "out_of_range": {},
        **found,
    }


def by_name(decision):
    return {t["name"]: t for t in decision["triggers"]}


def test_every_configured_trigger_is_listed_with_value_and_threshold():
    decision = decide(evaluation(), PARAMS)
    assert set(by_name(decision)) == {
        "cold_start",
        "performance_roc_auc",
        "performance_drop",
        "age",
        "data_growth",
        "data_drift",
        "multivariate_drift",
        "concept_drift",
        "label_shift",
        "estimated_roc_auc",
        "schema_change",
    }
    for t in decision["triggers"]:
        assert set(t) == {"name", "enabled", "fired", "counted", "value", "threshold", "detail"}
        assert t["detail"]
    assert decision["retrain"] is False and decision["fired"] == []
    assert decision["as_of"] == "2025-06"


def test_cold_start_fires_without_champion_and_nothing_else_does():
    record = {"as_of": "2025-06", "champion": None, "metrics": None, "champion_age": None}
    decision = decide(record, PARAMS)
    assert decision["retrain"] and decision["fired"] == ["cold_start"]


def test_performance_below_threshold_fires():
    decision = decide(evaluation(roc_auc=0.70, baseline=0.70), PARAMS)
    assert decision["retrain"] and decision["fired"] == ["performance_roc_auc"]
    t = by_name(decision)["performance_roc_auc"]
    assert t["value"] == 0.70 and t["threshold"] == 0.75


def test_lower_is_better_metric_fires_above_threshold():
    params = {**PARAMS, "performance": {"metric": "brier", "threshold": 0.05}}
    assert decide(evaluation(), params)["retrain"]


def test_small_batches_report_not_enough_data_instead_of_firing():
    drifting = {"a": feature(2.0, 1e-20), "b": feature(1.0, 1e-9)}
    decision = decide(evaluation(roc_auc=0.5, rows=20, features=drifting, domain=0.99, errors=18), PARAMS)
    for name in ["performance_roc_auc", "data_drift", "multivariate_drift", "concept_drift", "label_shift"]:
        t = by_name(decision)[name]
        assert not t["fired"] and "not enough data" in t["detail"], name


def test_age_fires_past_the_limit():
    assert not decide(evaluation(age=3), PARAMS)["retrain"]
    assert decide(evaluation(age=4), PARAMS)["fired"] == ["age"]


def grown(record, champion_rows, window_rows):
    record["data_growth"] = {"champion_rows": champion_rows, "window_rows": window_rows}
    return record


def test_data_growth_fires_when_the_window_holds_factor_times_the_champions_rows():
    quiet = by_name(decide(grown(evaluation(), 300, 800), PARAMS))["data_growth"]  # 2.67: the batch after
    assert not quiet["fired"] and quiet["value"] == pytest.approx(2.6667) and quiet["threshold"] == 3
    decision = decide(grown(evaluation(), 300, 900), PARAMS)
    assert decision["retrain"] and decision["fired"] == ["data_growth"]
    assert (
        "900 rows, 3.00 times the 300 the champion v1.0.0 trained on"
        in by_name(decision)["data_growth"]["detail"]
    )
    looser = {**PARAMS, "data_growth": {"enabled": True, "factor": 2}}
    assert decide(grown(evaluation(), 300, 800), looser)["fired"] == ["data_growth"]
    unknown = by_name(decide(evaluation(), PARAMS))["data_growth"]
    assert not unknown["fired"] and unknown["value"] is None and "not known" in unknown["detail"]
    with pytest.raises(DataError, match="factor"):
        decide(evaluation(), {**PARAMS, "data_growth": {"enabled": True, "factor": 1}})


def test_feature_drifts_only_with_effect_size_and_significance_after_correction():
    features = {
        "big_but_noisy": feature(0.5, 0.2),
        "tiny_but_certain": feature(0.05, 1e-12),
        "real": feature(0.4, 1e-8),
        "calm": feature(0.01, 0.6),
    }
    decision = decide(evaluation(features=features), PARAMS)
    table = {r["feature"]: r for r in decision["drift"]}
    assert [f for f, r in table.items() if r["drifted"]] == ["real"]
    assert table["real"]["p_adjusted"] == pytest.approx(3e-8)  # Holm: rank 2 of 4
    t = by_name(decision)["data_drift"]
    assert t["value"] == 0.25 and not t["fired"]
    assert by_name(
        decide(
            evaluation(features=features), {**PARAMS, "data_drift": {**PARAMS["data_drift"], "share": 0.25}}
        )
    )["data_drift"]["fired"]


def test_per_feature_override_changes_one_threshold():
    features = {"a": feature(0.15, 1e-9), "b": feature(0.01, 0.5)}
    params = {**PARAMS, "data_drift": {**PARAMS["data_drift"], "features": {"a": {"psi": 0.1}}}}
    assert not decide(evaluation(features=features), PARAMS)["retrain"]
    assert decide(evaluation(features=features, roc_auc=0.78), params)["fired"] == ["data_drift"]
    muted = {**PARAMS, "data_drift": {**PARAMS["data_drift"], "features": {"a": {"enabled": False}}}}
    rows = decide(evaluation(features={"a": feature(2.0, 1e-30)}), muted)["drift"]
    assert rows[0]["monitored"] is False and not rows[0]["drifted"]


def test_multivariate_drift_fires_at_the_auc_threshold():
    assert decide(evaluation(domain=0.71, roc_auc=0.78), PARAMS)["fired"] == ["multivariate_drift"]
    assert not decide(evaluation(domain=0.69), PARAMS)["retrain"]


def test_concept_drift_needs_a_significant_and_large_rise_in_errors():
    assert decide(evaluation(errors=80), PARAMS)["fired"] == ["concept_drift"]
    assert not decide(evaluation(errors=48), PARAMS)["retrain"]
    t = by_name(decide(evaluation(errors=80), PARAMS))["concept_drift"]
    assert t["value"] == pytest.approx(0.2)


def test_label_shift_fires_both_ways():
    assert decide(evaluation(positive=90, roc_auc=0.78), PARAMS)["fired"] == ["label_shift"]
    assert decide(evaluation(positive=10, roc_auc=0.78), PARAMS)["fired"] == ["label_shift"]


def test_estimated_drop_fires_only_when_switched_on_and_unlabelled():
    low = evaluation(labelled=False, estimated=0.6)
    assert not by_name(decide(low, PARAMS))["estimated_roc_auc"]["fired"]
    on = {**PARAMS, "estimated_performance": {**PARAMS["estimated_performance"], "enabled": True}}
    assert decide(low, on)["fired"] == ["estimated_roc_auc"]
    assert not decide(evaluation(labelled=True, estimated=0.6), on)["retrain"]


def test_schema_change_classes_map_to_stop_retrain_or_ignore():
    new_cat = evaluation(changes=schema_changes(new_categories={"colour": ["ultraviolet"]}))
    assert decide(new_cat, PARAMS)["fired"] == ["schema_change"]
    assert by_name(decide(new_cat, PARAMS))["schema_change"]["detail"] == "new_category in colour"
    extra = evaluation(changes=schema_changes(new_columns=["surprise"]))
    t = by_name(decide(extra, PARAMS))["schema_change"]
    assert not t["fired"] and t["value"] == ["new_column"]
    little = evaluation(changes=schema_changes(out_of_range={"x": 0.01}))
    assert by_name(decide(little, PARAMS))["schema_change"]["value"] == []
    many = evaluation(changes=schema_changes(out_of_range={"x": 0.2}))
    assert "out_of_range in x (20.0% of rows)" in by_name(decide(many, PARAMS))["schema_change"]["detail"]
    retyped = evaluation(changes=schema_changes(type_changes={"x": 1.0}))
    with pytest.raises(
        DataError, match="type_change in x; params.yaml decide.schema_change.type_change is 'stop'"
    ):
        decide(retyped, PARAMS)


def test_cooldown_holds_a_retrain_and_force_makes_one():
    params = {**PARAMS, "cooldown": 3}
    held = decide(evaluation(roc_auc=0.6, age=1), params)
    assert not held["retrain"] and held["reason"].startswith("cooldown")
    assert decide(evaluation(roc_auc=0.6, age=3), params)["retrain"]
    forced = decide(evaluation(), {**PARAMS, "force": True})
    assert forced["retrain"] and "forced" in forced["reason"]


def test_disabled_trigger_is_listed_but_never_fires():
    params = {**PARAMS, "age": {"enabled": False, "max_batches": 3}}
    t = by_name(decide(evaluation(age=9), params))["age"]
    assert t["enabled"] is False and t["fired"] is False


def test_at_least_rule_needs_that_many_triggers():
    params = {**PARAMS, "rule": "at_least", "min_fired": 2}
    assert not decide(evaluation(roc_auc=0.7, baseline=0.7), params)["retrain"]
    assert decide(evaluation(roc_auc=0.7, baseline=0.7, age=5), params)["retrain"]


def test_unknown_rule_and_correction_are_refused():
    with pytest.raises(DataError, match="decide.rule"):
        decide(evaluation(), {**PARAMS, "rule": "most"})
    with pytest.raises(DataError, match="correction"):
        decide(evaluation(), {**PARAMS, "data_drift": {**PARAMS["data_drift"], "correction": "x"}})


def test_markdown_summary_lists_every_trigger_and_drifted_feature():
    features = {"real": feature(0.4, 1e-8), "calm": feature(0.01, 0.6)}
    decision = decide(
        evaluation(features=features, roc_auc=0.7),
        {**PARAMS, "data_drift": {**PARAMS["data_drift"], "share": 0.5}},
    )
    text = summary_markdown(decision)
    assert text.startswith("# Decision as of 2025-06: **Retrain**")
    assert text.count("\n| ") >= len(decision["triggers"]) + 1
    assert "| real | 0.4000 | 0.2000 | ks | < 0.0001 |" in text and "calm" not in text
    line = "The params policy dominates the best fixed schedule (every 2 batches): ..."
    assert summary_markdown(decision, line).endswith(f"\n\nBacktest: {line}\n")
    assert "Backtest:" not in text


def test_drift_without_a_performance_loss_is_listed_but_not_counted():
    features = {"a": feature(0.9, 1e-12), "b": feature(0.8, 1e-12)}
    quiet = decide(evaluation(features=features, domain=0.9, positive=120), PARAMS)
    triggers = by_name(quiet)
    for name in ("data_drift", "multivariate_drift", "label_shift"):
        assert triggers[name]["fired"] and not triggers[name]["counted"]
        assert "not counted" in triggers[name]["detail"]
    assert not quiet["retrain"] and quiet["fired"] == []
    assert set(quiet["unconfirmed"]) == {"data_drift", "multivariate_drift", "label_shift"}
    assert "without a performance loss" in quiet["reason"]
    loss = decide(evaluation(features=features, domain=0.9, positive=120, roc_auc=0.785), PARAMS)
    assert loss["retrain"] and set(loss["fired"]) == {"data_drift", "multivariate_drift", "label_shift"}
    assert "confirmed by a loss of 0.0150" in by_name(loss)["data_drift"]["detail"]


def test_an_estimated_loss_confirms_drift_on_an_unlabelled_batch():
    features = {"a": feature(0.9, 1e-12)}
    kept = decide(evaluation(features=features, labelled=False, estimated=0.795), PARAMS)
    assert not kept["retrain"]
    fell = decide(evaluation(features=features, labelled=False, estimated=0.75), PARAMS)
    assert fell["retrain"] and fell["fired"] == ["data_drift"]


def test_no_trigger_counts_while_no_labelled_batch_is_newer_than_the_champion_s_training():
    """Labels stopped (or lag) after the batch the champion was trained through: a challenger
    would learn the same rows, so what the unlabelled batches show waits for newer labels."""
    changed = {
        "features": {"a": feature(0.9, 1e-12)},
        "labelled": False,
        "estimated": 0.75,
        "age": 13,
        "changes": schema_changes(new_categories={"c": {"z": 0.4}}),
    }
    assert decide(evaluation(**changed), PARAMS)["retrain"]
    same = evaluation(**changed, trained_through="2025-05", growth={"champion_rows": 900, "window_rows": 900})
    waits = decide(same, PARAMS)
    assert not waits["retrain"] and waits["fired"] == []
    assert {"age", "data_drift", "schema_change"} <= set(waits["unconfirmed"])
    assert waits["reason"].startswith("keep the champion: no labelled batch is newer than 2025-05")
    assert "a challenger would learn what it learned" in by_name(waits)["age"]["detail"]
    assert trigger_state(by_name(waits)["age"]) == (
        "fired, not counted: no labels newer than 2025-05, which the champion learned"
    )
    assert decide(same, {**PARAMS, "force": True})["retrain"]
    relabelled = evaluation(
        **changed, trained_through="2025-05", growth={"champion_rows": 900, "window_rows": 1400}
    )
    assert decide(relabelled, PARAMS)["retrain"]  # more rows of the same period labelled since


def test_without_confirm_every_fired_trigger_counts():
    params = {**PARAMS, "confirm": {"triggers": []}}
    assert decide(evaluation(domain=0.9), params)["fired"] == ["multivariate_drift"]


def test_performance_drop_needs_a_large_and_significant_fall():
    many = {"roc_auc": 0.75, "rows": 5000, "positive_rate": 0.25}
    small = decide(evaluation(roc_auc=0.77, baseline=0.8), PARAMS)  # 0.03 on 200 rows each
    assert not by_name(small)["performance_drop"]["fired"]
    assert "not significant" in by_name(small)["performance_drop"]["detail"]
    record = evaluation(roc_auc=0.77, rows=5000, baseline=0.8)
    record["baseline"]["metrics"] = {**many, "roc_auc": 0.80}
    big = by_name(decide(record, PARAMS))["performance_drop"]
    assert big["fired"] and big["value"] == pytest.approx(0.03)
    record["metrics"]["roc_auc"] = 0.78
    assert not by_name(decide(record, PARAMS))["performance_drop"]["fired"]  # below max_drop
    with pytest.raises(DataError, match="performance_drop.metric"):
        decide(record, {**PARAMS, "performance_drop": {**PARAMS["performance_drop"], "metric": "brier"}})


def test_new_categories_in_a_tiny_share_of_rows_are_ignored():
    params = {**PARAMS, "schema_change": {**PARAMS["schema_change"], "new_category_share": 0.01}}
    rare = evaluation(changes=schema_changes(new_categories={"colour": {"teal": 0.005}}))
    assert not by_name(decide(rare, params))["schema_change"]["fired"]
    rare["schema_changes"]["new_categories"] = {"colour": {"teal": 0.004, "plum": 0.008}}
    assert by_name(decide(rare, params))["schema_change"]["fired"]


def test_new_categories_as_many_as_the_champions_holdout_had_are_as_usual():
    """A column like a pet's name has new values in every batch; the champion's holdout had as
    many, and its score covers them. More than that share above it is a change."""
    params = {**PARAMS, "schema_change": {**PARAMS["schema_change"], "new_category_share": 0.01}}
    record = evaluation(
        changes=schema_changes(
            new_categories={"name": {"Rex": 0.002, "… 140 more": 0.328}, "colour": {"teal": 0.05}},
            usual_new_categories={"name": 0.35},
        )
    )
    colour = by_name(decide(record, params))["schema_change"]
    assert colour["fired"] and colour["value"] == ["new_category"]
    assert "new_category in colour (5.0% of rows);" in colour["detail"]
    assert "name (33.0% of rows, holdout 35.0%)" in colour["detail"]
    record["schema_changes"]["new_categories"].pop("colour")
    assert not by_name(decide(record, params))["schema_change"]["fired"]
    record["schema_changes"]["new_categories"]["name"]["… 140 more"] = 0.36
    fired = by_name(decide(record, params))["schema_change"]
    assert fired["fired"] and "new_category in name (36.2% of rows, holdout 35.0%)" in fired["detail"]


def held(record, metrics, period="2025-05", age=1, holds=1):
    record["baseline"] = {
        "period": period,
        "metrics": metrics,
        "estimated": None,
        "held": True,
        "age": age,
        "holds": holds,
    }
    return record


HELD = {"roc_auc": 0.8, "rows": 200, "positive_rate": 0.25, "accuracy": 0.8}


def test_a_shift_a_challenger_failed_to_exploit_is_answered_for_the_span():
    params = {
        **PARAMS,
        "confirm": {**PARAMS["confirm"], "triggers": []},
        "answered": {"batches": 4, "triggers": ["label_shift"]},
    }
    shifted = {"positive": 100}  # 0.50 against 0.25 held
    within = decide(held(evaluation(**shifted), HELD, age=4), params)
    label = by_name(within)["label_shift"]
    assert label["fired"] and not label["counted"] and not within["retrain"]
    assert "answered in 2025-05, 4 batch(es) ago" in label["detail"]
    assert "answered by a challenger that lost" in within["reason"]
    assert trigger_state(label) == "fired, not counted: answered by a challenger that lost"
    assert decide(held(evaluation(**shifted), HELD, age=5), params)["fired"] == ["label_shift"]
    twice = decide(held(evaluation(**shifted), HELD, age=5, holds=2), params)
    assert not twice["retrain"] and "2 in a row" in by_name(twice)["label_shift"]["detail"]
    assert decide(evaluation(**shifted), params)["fired"] == ["label_shift"]  # never held


def test_a_further_fall_still_counts_while_a_shift_is_answered():
    params = {
        **PARAMS,
        "confirm": {**PARAMS["confirm"], "triggers": []},
        "answered": {"batches": 12, "triggers": ["label_shift", "performance"]},
    }
    fallen = decide(held(evaluation(roc_auc=0.62, positive=100), HELD, age=1), params)
    assert fallen["retrain"] and "performance_drop" in fallen["fired"]
    assert {"label_shift", "performance_roc_auc"} <= set(fallen["unconfirmed"])
    off = {**params, "answered": {"batches": 0, "triggers": ["label_shift"]}}
    assert "label_shift" in decide(held(evaluation(positive=100), HELD, age=1), off)["fired"]


def test_a_threshold_a_challenger_could_not_reach_is_answered_until_a_further_fall():
    low = {"roc_auc": 0.70, "rows": 200, "positive_rate": 0.25, "accuracy": 0.8}
    record = held(evaluation(roc_auc=0.69), low)
    decision = decide(record, PARAMS)
    perf = by_name(decision)["performance_roc_auc"]
    assert perf["fired"] and not perf["counted"] and "answered in 2025-05" in perf["detail"]
    assert trigger_state(perf) == "fired, not counted: answered by a challenger that lost"
    assert not decision["retrain"]
    fresh = evaluation(roc_auc=0.69, baseline=0.70)  # not held: the threshold counts
    assert decide(fresh, PARAMS)["fired"] == ["performance_roc_auc"]


def test_a_hold_restarts_the_age_count():
    record = held(
        evaluation(age=9), {"roc_auc": 0.8, "rows": 200, "positive_rate": 0.25, "accuracy": 0.8}, age=2
    )
    aged = by_name(decide(record, PARAMS))["age"]
    assert aged["value"] == 2 and not aged["fired"] and "held against a challenger" in aged["detail"]
    assert by_name(decide(evaluation(age=9), PARAMS))["age"]["fired"]


def test_data_growth_a_challenger_could_not_exploit_is_answered():
    record = held(grown(evaluation(), 300, 1200), HELD, age=1)
    growth = by_name(decide(record, PARAMS))["data_growth"]
    assert growth["fired"] and not growth["counted"] and "answered in 2025-05" in growth["detail"]
    assert decide(grown(evaluation(), 300, 1200), PARAMS)["fired"] == ["data_growth"]  # never held


def test_a_challenger_only_data_growth_asked_for_answers_no_change_in_the_world():
    params = {**PARAMS, "confirm": {**PARAMS["confirm"], "triggers": []}}
    shifted = {"positive": 100}  # 0.50 against 0.25 held
    for asked_by, label_counts in (
        (["data_growth"], True),
        (["data_growth", "label_shift"], False),
        (None, False),  # a hold recorded before asked_by: answers every listed trigger
    ):
        record = held(grown(evaluation(**shifted), 300, 1200), HELD, age=1)
        if asked_by is not None:
            record["baseline"]["asked_by"] = asked_by
        decision = by_name(decide(record, params))
        assert not decision["data_growth"]["counted"]
        assert decision["label_shift"]["counted"] is label_counts, asked_by
