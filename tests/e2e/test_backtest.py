"""Threshold comparison with queued `dvc exp run`, in temporary clones, as the README shows."""

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def backtest_of(experiment: dict) -> dict:
    data = experiment["data"]
    return {
        "params": data["params"]["params.yaml"]["data"]["decide"]["age"],
        "metrics": {
            Path(path).stem: value["data"]
            for path, value in data["metrics"].items()
            if path.startswith("reports/metrics/backtest/")
        },
    }


def test_queued_experiments_over_three_age_limits_give_three_backtests(make_repo):
    repo = make_repo({"simulate": {"rows_per_batch": 300}})
    repo.retrain("simulate", "--months", "6")
    repo.commit_all("six months")
    out = repo.run("dvc", "exp", "run", "--queue", "-S", "decide.age.max_batches=0,2,12").stdout
    assert out.count("Queued experiment") == 3
    repo.run("dvc", "exp", "run", "--run-all")
    shown = json.loads(repo.run("dvc", "exp", "show", "--json").stdout)
    experiments = [e for row in shown for e in (row.get("experiments") or [])]
    results = [backtest_of(e["revs"][0]) for e in experiments]
    assert len(results) == 3
    policy = {r["params"]["max_batches"]: r["metrics"]["policy"] for r in results}
    assert set(policy) == {0, 2, 12}
    assert policy[0]["retrains"] > policy[2]["retrains"] >= policy[12]["retrains"]
    outcomes = {(p["retrains"], p["roc_auc"]) for p in policy.values()}
    assert len(outcomes) == 3, policy
    schedules = {"every_2", "every_3", "every_4", "every_6"}
    for name in schedules:  # every experiment judged its policy against the same schedules
        assert len({json.dumps(r["metrics"][name], sort_keys=True) for r in results}) == 1, name
