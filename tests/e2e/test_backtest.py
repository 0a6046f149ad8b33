"""Threshold comparison with queued `dvc exp run`, in temporary clones, as the README shows."""

import json

import pytest

pytestmark = pytest.mark.e2e


def backtest_of(experiment: dict) -> dict:
    data = experiment["data"]
    return {"params": data["params"]["params.yaml"]["data"]["decide"]["performance"],
            "metrics": data["metrics"]["reports/backtest.json"]["data"]}


def test_queued_experiments_over_three_thresholds_give_three_retrain_counts(make_repo):
    repo = make_repo({"simulate": {"rows_per_batch": 300}})
    repo.retrain("simulate", "--months", "10")
    repo.commit_all("ten months")
    out = repo.run("dvc", "exp", "run", "--queue", "-S",
                   "decide.performance.threshold=0.5,0.8,0.95").stdout
    assert out.count("Queued experiment") == 3
    repo.run("dvc", "exp", "run", "--run-all")
    shown = json.loads(repo.run("dvc", "exp", "show", "--json").stdout)
    experiments = [e for row in shown for e in (row.get("experiments") or [])]
    results = [backtest_of(e["revs"][0]) for e in experiments]
    assert len(results) == 3
    counts = {r["params"]["threshold"]: r["metrics"]["policy"]["retrains"] for r in results}
    assert set(counts) == {0.5, 0.8, 0.95}
    assert counts[0.5] <= counts[0.8] <= counts[0.95]
    assert len(set(counts.values())) == 3, counts
