"""On the demo data, each scenario's trigger fires in the month its scenario starts, and no
drift, concept or label trigger fires on a stable month. Month by month, through the same
functions the stages call: validate, split, train (with its profile), evaluate, decide."""

import pandas as pd
import pytest

from retrain.data.schema import CleaningPolicy, Schema, validate_batch
from retrain.data.simulate import SimConfig, simulate_batch
from retrain.params import load as load_params
from tests.helpers import ROOT, decisions_month_by_month

WATCHED = {"data_drift", "multivariate_drift", "concept_drift", "label_shift", "schema_change"}
EXPECTED = {  # the trigger each scenario must fire in its first month
    "fiber_price_rise": "data_drift",
    "long_contract_churn_rise": "concept_drift",
    "contract_mix_shift": "data_drift",
    "new_payment_method": "schema_change",
    "senior_flag_as_text": "schema_change",
}


@pytest.fixture(scope="module")
def replay():
    params = load_params(ROOT / "params.yaml")
    schema = Schema.from_params(params["schema"])
    config = SimConfig.from_params(params["simulate"])
    source = pd.read_parquet(ROOT / "data/source/wa_churn.parquet")
    cleaning = CleaningPolicy.from_params({**params["prepare"]["cleaning"], "unparseable_numeric": "missing"})
    decide_params = {
        **params["decide"],
        "schema_change": {**params["decide"]["schema_change"], "type_change": "retrain"},
    }
    batches, starts = [], {}
    months = [pd.Period(config.start, "M") + k for k in range(15)]
    for period in months:
        frame, active = simulate_batch(source, schema, config, period)
        raw = frame.astype(str).replace({"nan": ""})
        batches.append(validate_batch(raw, f"data/raw/{period}.csv", schema, cleaning))
        for name in active:
            starts.setdefault(name, str(period))
    fired = {
        period: {t["name"] for t in decision["triggers"] if t["fired"]}
        for period, decision in decisions_month_by_month(params, batches, decide_params).items()
    }
    return starts, fired


def test_every_scenario_fires_its_trigger_in_its_first_month(replay):
    starts, fired = replay
    assert set(starts) == set(EXPECTED)
    for scenario, trigger in EXPECTED.items():
        assert trigger in fired[starts[scenario]], (scenario, starts[scenario], fired)


def test_no_drift_concept_or_label_trigger_fires_on_a_stable_month(replay):
    starts, fired = replay
    first_months = set(starts.values())
    stable = [p for p in fired if p not in first_months]
    assert len(stable) >= 8
    for period in stable:
        assert not fired[period] & WATCHED, (period, fired[period])
