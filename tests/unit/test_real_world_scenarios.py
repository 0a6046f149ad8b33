"""Scenarios real data has and the demo lacks, month by month through the functions the stages
call (validate, split, train with its profile, evaluate, decide), as in test_scenarios: a
yearly seasonal cycle, a harmless covariate shift, a persistent shift no retrain fixes,
batches of one snapshot date, and weekly batches. Each month's champion is trained on the months before it, so
every month is the batch right after a promotion."""

import pandas as pd
import pytest

from retrain.data.schema import CleaningPolicy, Schema, period_name, validate_batch
from retrain.data.simulate import SimConfig, simulate_batch
from retrain.params import load as load_params
from tests.helpers import ROOT, decisions_month_by_month

EXPLANATIONS = {"data_drift", "multivariate_drift", "label_shift", "schema_change"}
SEASONS = [
    {
        "name": "seasons",
        "kind": "seasonal",
        "from": "2015-01",
        "column": ["monthly_charges", "total_charges"],
        "peak": "2015-12",
        "amplitude": 0.3,
        "label_amplitude": 0.3,
    }
]
SCENARIOS = {
    "seasonal_years": SEASONS,
    "harmless": [
        {
            "name": "gender_mix",
            "kind": "set",
            "from": "2025-05",
            "column": "female",
            "value": 1,
            "fraction": 0.7,
        }
    ],
    "persistent": [{"name": "label_noise", "kind": "noise", "from": "2025-05", "fraction": 0.35}],
    "snapshot": [{"name": "monthly_extract", "kind": "snapshot", "from": "2025-01"}],
    "weekly": [],
}


def month_by_month(scenarios, months=8, freq="M", start="2025-01"):
    """Per period from the second: (fired triggers, counted triggers, the decision)."""
    params = load_params(ROOT / "params.yaml")
    schema = Schema.from_params({**params["schema"], "period": freq})
    config = SimConfig.from_params({**params["simulate"], "scenarios": scenarios, "start": start})
    source = pd.read_parquet(ROOT / "data/source/wa_churn.parquet")
    cleaning = CleaningPolicy.from_params(params["prepare"]["cleaning"])
    batches = []
    for k in range(months):
        period = pd.Period(config.start, freq) + k
        frame, _ = simulate_batch(source, schema, config, period)
        raw = frame.astype(str).replace({"nan": ""})
        batches.append(validate_batch(raw, f"data/raw/{period_name(period)}.csv", schema, cleaning))
    decisions = decisions_month_by_month({**params, "schema": schema.as_dict()}, batches)
    return {
        period: ({t["name"] for t in d["triggers"] if t["fired"]}, set(d["fired"]), d)
        for period, d in decisions.items()
    }


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def scenario(request):
    if request.param == "seasonal_years":
        return request.param, month_by_month(SEASONS, 7, "Y", "2015")
    if request.param == "weekly":
        return request.param, month_by_month([], 6, "W", "2025-01")
    return request.param, month_by_month(SCENARIOS[request.param])


def test_scenario_months(scenario):
    name, months = scenario
    if name == "seasonal_years":
        # every yearly batch holds all the seasons; the reference is a whole year, so the next
        # year looks like it: no drift, label or schema trigger fires, nothing asks for a retrain
        for period, (fired, counted, _) in months.items():
            assert not fired & EXPLANATIONS and not counted, (period, fired)
    elif name == "harmless":
        # the mix of a feature the model barely uses moves: drift is seen and explained in its
        # first month, never counted, because the champion's performance holds
        fired, _, decision = months["2025-05"]
        assert "data_drift" in fired and "without a performance loss" in decision["reason"]
        assert all(not counted for _, counted, _ in months.values()), months
    elif name == "weekly":
        # weekly batches, each file named by the week's first day: stable weeks fire nothing
        assert sorted(months)[:2] == ["2025-01-06", "2025-01-13"]
        for period, (fired, counted, _) in months.items():
            assert not fired & EXPLANATIONS and not counted, (period, fired)
    elif name == "persistent":
        # labels turn noisy for good: the performance triggers see it in its first month
        fired, counted, _ = months["2025-05"]
        assert {"performance_roc_auc", "performance_drop"} & counted, fired
        assert all(not counted for p, (_, counted, _) in months.items() if p < "2025-05")
    else:
        # every row of a month shares one date: the holdout and the training rows are split by
        # the hashed id, the champion is scored on the rows it never saw, and stable months
        # fire nothing
        for period, (fired, counted, _) in months.items():
            assert not fired & EXPLANATIONS and not counted, (period, fired)
