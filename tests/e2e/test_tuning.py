"""train.tune through the real stages: `dvc exp run -S train.tune.when=always`, the records it
leaves, a promotion and `retrain history`."""

import json

import pytest

pytestmark = pytest.mark.e2e


def test_an_experiment_that_tunes_records_the_search_and_history_marks_the_tuned_version(make_repo):
    repo = make_repo({"simulate": {"rows_per_batch": 300}, "backtest": {"every_k": [3]}})
    repo.retrain("simulate", "--months", "3")
    repo.commit_all("three months")
    out = repo.run(
        "dvc",
        "exp",
        "run",
        "-S",
        "train.tune.when=always",
        "-S",
        "train.tune.trials=4",
        "-S",
        "train.tune.min_gain=0",
    ).stdout
    assert "Running stage 'train'" in out

    metadata = repo.json("models/challenger/metadata.json")
    tuning = metadata["tuning"]
    assert tuning["when"] == "always" and tuning["trials"] == 4 and tuning["stopped_by"] == "trials"
    assert tuning["validation"]["until"] <= metadata["holdout"]["from"]  # never newer than the holdout
    chosen = {k: metadata["hyperparameters"][k] for k in tuning["best_hyperparameters"]}
    assert tuning["tuned"] is True and chosen == tuning["best_hyperparameters"]  # min_gain 0

    promotion = repo.json("reports/promotion.json")
    assert promotion["challenger_tuning"]["trials"] == 4
    shown = json.loads(repo.run("dvc", "metrics", "show", "--json").stdout)
    metrics = next(iter(shown.values()))["data"]["reports/metrics/holdout/challenger.json"]["data"]
    assert metrics["roc_auc"] == promotion["challenger"]["roc_auc"] and "promote" in metrics
    assert "hyperparameters" in (repo.path / "reports/decision.md").read_text()
    backtest = repo.json("reports/backtest.json")
    assert "policy_fixed" in backtest and backtest["policy"]["tuning_trials"] >= 4
    assert "Tuning (train.tune)" in (repo.path / "reports/backtest.md").read_text()

    repo.commit_all("the experiment, applied")
    repo.retrain("promote")
    history = repo.retrain("history").stdout
    assert "promote (tuned)" in history, history
    assert (
        repo.json("models/champion.json")["tuned"]["best_hyperparameters"] == tuning["best_hyperparameters"]
    )
