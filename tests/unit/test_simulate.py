import dataclasses

import pandas as pd
import pytest

from retrain.data.schema import CleaningPolicy, Schema, validate_batch
from retrain.data.simulate import SimConfig, draw_rows, next_period, simulate_batch
from retrain.errors import DataError
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def source():
    return pd.read_parquet(ROOT / "data/source/wa_churn.parquet")


def config(params, scenarios=None, rows=300):
    sim = dict(params["simulate"], rows_per_batch=rows)
    if scenarios is not None:
        sim["scenarios"] = scenarios
    return SimConfig.from_params(sim)


def test_source_holds_the_real_telco_rows(source, demo_schema):
    assert len(source) == 7043
    assert set(demo_schema.features) <= set(source.columns)


def test_blocks_are_disjoint_within_a_pass():
    a, b = draw_rows(7043, 0, 500, 7), draw_rows(7043, 1, 500, 7)
    assert len(set(a)) == 500 and not set(a) & set(b)


def test_same_period_same_batch(source, params, demo_schema):
    cfg = config(params)
    period = pd.Period("2025-02", freq="M")
    a, _ = simulate_batch(source, demo_schema, cfg, period)
    b, _ = simulate_batch(source, demo_schema, cfg, period)
    pd.testing.assert_frame_equal(a, b)


def test_simulated_batch_passes_validation(source, params, demo_schema):
    frame, active = simulate_batch(source, demo_schema, config(params), pd.Period("2025-03", "M"))
    batch = validate_batch(
        frame.astype(str).replace({"nan": ""}), "data/raw/2025-03.csv", demo_schema, CleaningPolicy()
    )
    assert batch.labelled and len(batch.frame) == 300 and active == []


def test_a_schema_of_unix_times_is_simulated_in_unix_time(source, params, demo_schema):
    period = pd.Period("2025-03", "M")
    dated, _ = simulate_batch(source, demo_schema, config(params), period)
    unix = dataclasses.replace(demo_schema, time_unit="ms")
    stamped, _ = simulate_batch(source, unix, config(params), period)
    assert stamped[unix.time].astype(str).str.fullmatch(r"\d{13}").all()
    policy = CleaningPolicy.from_params(params["prepare"]["cleaning"])
    pd.testing.assert_frame_equal(
        validate_batch(stamped, "2025-03.csv", unix, policy).frame,
        validate_batch(dated, "2025-03.csv", demo_schema, policy).frame,
    )


def test_price_rise_scales_only_the_segment(source, params, demo_schema):
    scen = [
        {
            "name": "rise",
            "kind": "scale",
            "from": "2025-02",
            "column": "monthly_charges",
            "factor": 2.0,
            "where": {"internet_service": "Fiber optic"},
        }
    ]
    period = pd.Period("2025-02", "M")
    base, _ = simulate_batch(source, demo_schema, config(params, []), period)
    risen, active = simulate_batch(source, demo_schema, config(params, scen), period)
    fiber = base["internet_service"] == "Fiber optic"
    assert active == ["rise"]
    assert (risen.loc[fiber, "monthly_charges"] == (base.loc[fiber, "monthly_charges"] * 2).round(2)).all()
    assert (risen.loc[~fiber, "monthly_charges"] == base.loc[~fiber, "monthly_charges"]).all()


def test_concept_shift_raises_churn_in_segment_with_features_unchanged(source, params, demo_schema):
    scen = [
        {
            "name": "c",
            "kind": "concept",
            "from": "2025-01",
            "where": {"contract": "Two year"},
            "flip_to_positive": 0.5,
        }
    ]
    period = pd.Period("2025-04", "M")
    base, _ = simulate_batch(source, demo_schema, config(params, []), period)
    shifted, _ = simulate_batch(source, demo_schema, config(params, scen), period)
    seg = base["contract"] == "Two year"
    assert (shifted.loc[seg, "churn"] == "Yes").mean() > (base.loc[seg, "churn"] == "Yes").mean() + 0.3
    assert (shifted.loc[~seg, "churn"] == base.loc[~seg, "churn"]).all()
    features = list(demo_schema.features)
    pd.testing.assert_frame_equal(shifted[features], base[features])


def test_upstream_changes_new_category_and_retype(source, params, demo_schema):
    scen = [
        {
            "name": "n",
            "kind": "new_category",
            "from": "2025-01",
            "column": "payment_method",
            "value": "Wallet",
            "fraction": 0.3,
        },
        {
            "name": "t",
            "kind": "retype",
            "from": "2025-01",
            "column": "senior_citizen",
            "mapping": {"0": "No", "1": "Yes"},
        },
    ]
    frame, _ = simulate_batch(source, demo_schema, config(params, scen), pd.Period("2025-01", "M"))
    assert (frame["payment_method"] == "Wallet").mean() > 0.2
    assert set(frame["senior_citizen"]) <= {"No", "Yes"}


def test_scenario_window_is_respected(source, params, demo_schema):
    scen = [
        {
            "name": "m",
            "kind": "mix",
            "from": "2025-02",
            "until": "2025-03",
            "column": "contract",
            "keep": {"Two year": 0.0},
        }
    ]
    cfg = config(params, scen)
    months = {
        p: simulate_batch(source, demo_schema, cfg, pd.Period(p, "M"))[0]
        for p in ["2025-01", "2025-02", "2025-04"]
    }
    assert (months["2025-01"]["contract"] == "Two year").any()
    assert not (months["2025-02"]["contract"] == "Two year").any()
    assert (months["2025-04"]["contract"] == "Two year").any()


def test_unlabelled_batch_has_blank_target(source, params, demo_schema):
    frame, _ = simulate_batch(source, demo_schema, config(params), pd.Period("2025-05", "M"), unlabelled=True)
    assert (frame["churn"] == "").all()


def test_next_period_follows_the_newest_batch(params):
    cfg = config(params)
    assert str(next_period([], cfg, "M")) == params["simulate"]["start"]
    assert str(next_period(["2025-03", "2025-01"], cfg, "M")) == "2025-04"


def test_unknown_scenario_kind_is_refused(params):
    with pytest.raises(DataError, match="kind 'wobble'"):
        config(params, [{"name": "x", "kind": "wobble", "from": "2025-01"}])


def test_period_before_start_is_refused(source, params, demo_schema):
    with pytest.raises(DataError, match="before simulate.start"):
        simulate_batch(source, demo_schema, config(params), pd.Period("2020-01", "M"))


def test_schema_from_demo_params_is_valid(params):
    assert Schema.from_params(params["schema"]).target == params["schema"]["target"]


def test_seasonal_cycle_moves_the_feature_and_the_churn_rate_with_the_months(source, params, demo_schema):
    scen = [
        {
            "name": "s",
            "kind": "seasonal",
            "from": "2025-01",
            "column": "monthly_charges",
            "peak": "2025-12",
            "amplitude": 0.2,
            "label_amplitude": 0.3,
        }
    ]
    cfg, base_cfg = config(params, scen, rows=1000), config(params, [], rows=1000)
    peak, trough = pd.Period("2025-12", "M"), pd.Period("2025-06", "M")

    def pair(period):
        return (
            simulate_batch(source, demo_schema, base_cfg, period)[0],
            simulate_batch(source, demo_schema, cfg, period)[0],
        )

    base, high = pair(peak)
    assert (high["monthly_charges"] == (base["monthly_charges"] * 1.2).round(2)).all()
    assert (high["churn"] == "Yes").mean() > (base["churn"] == "Yes").mean() + 0.15
    base, low = pair(trough)
    assert (low["monthly_charges"] == (base["monthly_charges"] * 0.8).round(2)).all()
    assert (low["churn"] == "Yes").mean() < (base["churn"] == "Yes").mean() - 0.05
    base, quarter = pair(pd.Period("2025-09", "M"))  # cos(90 degrees): no change
    assert (quarter["monthly_charges"] == base["monthly_charges"].round(2)).all()


def test_set_shifts_a_feature_mix_without_touching_labels(source, params, demo_schema):
    scen = [{"name": "g", "kind": "set", "from": "2025-01", "column": "female", "value": 1, "fraction": 0.6}]
    period = pd.Period("2025-02", "M")
    base, _ = simulate_batch(source, demo_schema, config(params, [], rows=1000), period)
    shifted, _ = simulate_batch(source, demo_schema, config(params, scen, rows=1000), period)
    assert shifted["female"].mean() > base["female"].mean() + 0.25
    assert (shifted["churn"] == base["churn"]).all()


def test_noise_flips_a_share_of_labels_both_ways(source, params, demo_schema):
    scen = [{"name": "n", "kind": "noise", "from": "2025-01", "fraction": 0.3}]
    period = pd.Period("2025-02", "M")
    base, _ = simulate_batch(source, demo_schema, config(params, [], rows=1000), period)
    noisy, _ = simulate_batch(source, demo_schema, config(params, scen, rows=1000), period)
    flipped = noisy["churn"] != base["churn"]
    assert 0.25 < flipped.mean() < 0.35
    assert (base.loc[flipped, "churn"] == "Yes").any() and (base.loc[flipped, "churn"] == "No").any()


def test_snapshot_batches_carry_one_date(source, params, demo_schema):
    scen = [{"name": "snap", "kind": "snapshot", "from": "2025-03"}]
    cfg = config(params, scen)
    before, _ = simulate_batch(source, demo_schema, cfg, pd.Period("2025-02", "M"))
    after, active = simulate_batch(source, demo_schema, cfg, pd.Period("2025-03", "M"))
    assert before["snapshot_date"].nunique() > 1 and active == ["snap"]
    assert set(after["snapshot_date"]) == {"2025-03-01"}
