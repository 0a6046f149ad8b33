"""The retraining loop end to end, with real git and real DVC in temporary repositories."""

import json
import re
import shutil

import pandas as pd
import pytest
import yaml

from tests.helpers import ROOT, TOY, ran_stages, toy_raw

pytestmark = pytest.mark.e2e

STAGES = {"prepare", "evaluate", "decide", "train", "compare", "backtest", "report"}
LOOP_PARAMS = {
    "prepare": {"window": "last_n", "window_batches": 1, "holdout_fraction": 0.5},
    "decide": {"performance": {"threshold": 0.75}, "age": {"max_batches": 12}},
    "compare": {"min_improvement": 0.02, "minimums": {"roc_auc": 0.6}, "guards": {"brier": 0.05}},
    "simulate": {
        "rows_per_batch": 600,
        "scenarios": [
            {
                "name": "long_contract_churn_rise",
                "kind": "concept",
                "from": "2025-05",
                "where": {"contract": ["One year", "Two year"]},
                "flip_to_positive": 0.7,
            }
        ],
    },
}


def assert_holdout_is_honest(repo):
    """The holdout is newer than, and disjoint from, every row either model trained on."""
    from retrain.data.splits import HoldoutCut

    train = pd.read_parquet(repo.path / "data/prepared/train.parquet")
    holdout = pd.read_parquet(repo.path / "data/prepared/holdout.parquet")
    assert train["snapshot_date"].max() <= holdout["snapshot_date"].min()
    keys = lambda f: set(zip(f["customer_id"], f["_period"], strict=True))  # noqa: E731
    assert not keys(train) & keys(holdout)
    cut = HoldoutCut.from_dict(repo.json("reports/prepare.json")["holdout_cut"])
    assert cut.at_or_after(holdout, "snapshot_date", "customer_id").all()
    assert not cut.at_or_after(train, "snapshot_date", "customer_id").any()
    challenger = repo.json("models/challenger/metadata.json")
    if challenger["trained"]:
        assert pd.Timestamp(challenger["trained_until"]) <= holdout["snapshot_date"].min()
    evaluation = repo.json("reports/evaluation.json")
    if evaluation["champion"]:
        assert pd.Timestamp(evaluation["champion"]["trained_until"]) <= holdout["snapshot_date"].min()


def test_monthly_loop_cold_start_promote_stable_drift_and_rejected_challenger(first_run_repo):
    repo = first_run_repo(LOOP_PARAMS, promote=False)  # three months committed, then `dvc repro`
    assert set(yaml.safe_load((repo.path / "dvc.lock").read_text())["stages"]) == STAGES
    decision = repo.json("reports/decision.json")
    assert decision["retrain"] and decision["fired"] == ["cold_start"]
    assert repo.json("reports/promotion.json")["promote"]
    assert_holdout_is_honest(repo)
    first_rows = repo.json("models/challenger/metadata.json")["window"]["rows"]
    assert "promoted churn-model v1.0.0" in repo.retrain("promote").stdout
    assert set(repo.tags()) == {"churn-model@v1.0.0", "churn-model#prod#1"}
    pointer = repo.json("models/champion.json")
    assert pointer["version"] == "v1.0.0"
    assert pointer["commit"] == repo.git("rev-list", "-n1", "churn-model@v1.0.0")
    assert "models/challenger" in repo.git("show", f"{pointer['commit']}:dvc.lock")

    out = repo.repro()
    assert {"evaluate", "decide"} <= ran_stages(out) and "prepare" not in ran_stages(out)
    assert repo.json("reports/evaluation.json")["champion"]["version"] == "v1.0.0"
    assert not repo.json("reports/decision.json")["retrain"]
    repo.commit_all("evaluate v1.0.0")
    assert ran_stages(repo.repro()) == set()

    repo.retrain("simulate")  # 2025-04, stable
    repo.commit_all("2025-04")
    out = repo.repro()
    assert "prepare" in ran_stages(out)
    evaluation = repo.json("reports/evaluation.json")
    assert evaluation["labelled_period"] == "2025-04"
    assert evaluation["metrics"]["roc_auc"] >= 0.75
    assert evaluation["data_growth"] == {
        "champion_rows": first_rows,  # v1.0.0 learned from the first run's whole window
        "window_rows": repo.json("reports/prepare.json")["train_rows"],
    }
    growth = next(t for t in repo.json("reports/decision.json")["triggers"] if t["name"] == "data_growth")
    assert not growth["fired"] and growth["value"] < 1.5
    assert not repo.json("reports/decision.json")["retrain"]
    assert not repo.json("reports/promotion.json")["promote"]
    assert_holdout_is_honest(repo)
    repo.commit_all("evaluate 2025-04")

    repo.retrain("simulate")  # 2025-05, churn rises
    repo.commit_all("2025-05")
    repo.repro()
    decision = repo.json("reports/decision.json")
    assert decision["retrain"] and "performance_roc_auc" in decision["fired"]
    promotion = repo.json("reports/promotion.json")
    assert promotion["promote"], promotion["reason"]
    assert promotion["challenger"]["roc_auc"] > promotion["champion"]["roc_auc"] + 0.02
    assert_holdout_is_honest(repo)
    repo.retrain("promote")
    assert repo.json("models/champion.json")["version"] == "v1.1.0"
    assert {"churn-model@v1.1.0", "churn-model#prod!#2", "churn-model#prod#3"} <= set(repo.tags())
    repo.repro()
    assert repo.json("reports/evaluation.json")["champion"]["version"] == "v1.1.0"
    repo.commit_all("evaluate v1.1.0")

    repo.retrain("simulate")  # 2025-06: challenger must lose
    repo.set_params({"decide": {"performance": {"threshold": 0.99}}, "compare": {"min_improvement": 0.5}})
    repo.commit_all("2025-06, stricter compare")
    pointer_before = (repo.path / "models/champion.json").read_bytes()
    tags_before = repo.tags()
    repo.repro()
    asked = repo.json("reports/decision.json")
    assert asked["retrain"]
    promotion = repo.json("reports/promotion.json")
    assert not promotion["promote"] and promotion["reason"].startswith("champion stays")
    assert promotion["asked_by"] == asked["fired"] and asked["fired"]
    refused = repo.retrain("promote", check=False)
    assert refused.returncode == 3
    assert refused.stderr.count("\n") == 1 and "says not to promote" in refused.stderr
    assert (repo.path / "models/champion.json").read_bytes() == pointer_before
    assert repo.tags() == tags_before

    # the champion held: its score on this holdout becomes its baseline, so the threshold the
    # challenger could not reach does not ask for a retrain again; no tag moves
    assert "held churn-model v1.1.0 in prod as of 2025-06" in repo.retrain("hold").stdout
    pointer = repo.json("models/champion.json")
    assert pointer["version"] == "v1.1.0" and pointer["baseline"]["as_of"] == "2025-06"
    assert pointer["baseline"]["metrics"] == promotion["champion"]
    assert pointer["baseline"]["asked_by"] == asked["fired"]  # what the losing challenger answered
    assert repo.tags() == tags_before
    assert "held as of 2025-06 already" in repo.retrain("hold").stdout
    repo.repro()
    decision = repo.json("reports/decision.json")
    assert not decision["retrain"], decision["reason"]
    performance = {t["name"]: t for t in decision["triggers"]}["performance_roc_auc"]
    assert performance["fired"] and not performance["counted"]
    assert "answered in 2025-06" in performance["detail"]
    assert repo.json("reports/promotion.json")["reason"] == "no challenger was trained"
    assert repo.retrain("hold", check=False).returncode == 3  # nothing left to hold
    history = json.loads(repo.retrain("history", "--json").stdout)
    assert history["production"] == "v1.1.0"
    last = history["events"][-1]
    assert (last["version"], last["action"], last["as_of"]) == ("v1.1.0", "hold", "2025-06")
    assert [e["action"] for e in history["events"]].count("promote") == 2


def test_decide_threshold_experiment_changes_decision_without_upstream_reruns(first_run_repo):
    repo = first_run_repo(LOOP_PARAMS)
    repo.next_month()  # a labelled batch newer than the champion's: a retrain would learn from it
    repo.repro()
    repo.commit_all("evaluated")
    assert not repo.json("reports/decision.json")["retrain"]

    for key, value, trigger in [
        ("decide.performance.threshold", "0.99", "performance_roc_auc"),
        ("decide.multivariate_drift.auc", "0.0", "multivariate_drift"),
    ]:
        repo.git("checkout", "--", "params.yaml")
        # drift counts without a loss to confirm it, as a team that wants it to would set
        out = repo.run("dvc", "exp", "run", "-S", f"{key}={value}", "-S", "decide.confirm.triggers=[]").stdout
        assert ran_stages(out) >= {"decide"}, key
        assert not ran_stages(out) & {"prepare", "evaluate"}, key
        decision = repo.json("reports/decision.json")
        assert decision["retrain"] and trigger in decision["fired"], key
    shown = json.loads(repo.run("dvc", "exp", "show", "--json").stdout)
    assert shown, "dvc exp show lists the experiment"
    metrics_out = repo.run("dvc", "metrics", "show", "--json").stdout
    for key in ("roc_auc", "brier", "promote"):
        assert key in metrics_out


def test_fresh_clone_flow_on_the_shipped_demo_data(make_repo):
    repo = make_repo()
    for batch in sorted((ROOT / "data/raw").glob("*.csv")):
        shutil.copy2(batch, repo.path / "data/raw" / batch.name)
    assert len(list((repo.path / "data/raw").glob("*.csv"))) >= 12
    repo.commit_all("shipped demo data")
    repo.repro()
    repo.retrain("promote")
    assert repo.json("models/champion.json")["version"] == "v1.0.0"
    assert (repo.path / "reports/decision.json").exists()
    assert (repo.path / "reports/promotion.json").exists()
    out = repo.repro()
    assert "evaluate" in ran_stages(out)
    decision = repo.json("reports/decision.json")
    assert not decision["retrain"], decision
    explanations = {"data_drift", "multivariate_drift", "label_shift", "schema_change"}
    assert not {t["name"] for t in decision["triggers"] if t["fired"]} & explanations, decision
    assert ran_stages(repo.repro()) == set()
    against = (repo.path / "reports/backtest.md").read_text()
    assert against.startswith("The params policy dominates the best fixed schedule"), against
    assert f"Backtest: {against.strip()}" in (repo.path / "reports/decision.md").read_text()
    drift = pd.read_csv(repo.path / "reports/backtest_drift.csv").set_index(["period", "feature"])
    assert drift.loc[("2025-07", "monthly_charges"), "drifted"] == 1  # the price rise, marked
    assert drift.loc[("2025-06", "monthly_charges"), "drifted"] == 0

    repo.commit_all("evaluated")
    repo.retrain("simulate")  # 2026-01, right after the promotion
    repo.commit_all("2026-01")
    out = repo.repro()
    assert "resumed after 2025-12 from the checkpoint" in out and "replayed 1 of 13" in out
    decision = repo.json("reports/decision.json")
    assert (
        not decision["retrain"] and not {t["name"] for t in decision["triggers"] if t["fired"]} & explanations
    ), decision
    repo.git("reset", "-q", "--hard", "HEAD~1")
    repo.retrain("simulate", "--unlabelled")  # label delay: 2026-01 has no labels
    repo.commit_all("2026-01 without labels")
    repo.repro()
    evaluation = repo.json("reports/evaluation.json")
    assert evaluation["as_of"] == "2026-01" and not evaluation["newest_labelled"]
    assert evaluation["labelled_period"] == "2025-12" and evaluation["estimated"]["roc_auc"]
    triggers = {t["name"]: t for t in repo.json("reports/decision.json")["triggers"]}
    assert "reported only" in triggers["estimated_roc_auc"]["detail"]
    assert "Decision as of 2026-01" in (repo.path / "reports/decision.md").read_text()

    repo.git("reset", "-q", "--hard", "HEAD~1")
    repo.retrain("simulate")  # 2026-01, labelled
    repo.retrain("simulate")  # 2026-02: a new payment method
    repo.commit_all("2026-01 and 2026-02")
    repo.repro()
    shares = repo.json("reports/evaluation.json")["drift"]["features"]["payment_method"]["distribution"]
    wallet = shares["categories"].index("Digital wallet")
    assert shares["reference"][wallet] == 0 and shares["current"][wallet] > 0
    page = (repo.path / "reports/report.html").read_text()
    assert re.findall(r'id="dist-([\w-]+)"', page)[0] == "payment_method"  # drifted, so first
    assert "<td>payment_method</td><td>0.0%</td><td>0.0%</td><td>–</td><td>Digital wallet (" in page


def test_raw_data_under_dvc_add_with_a_local_remote(make_repo, tmp_path):
    repo = make_repo(LOOP_PARAMS)
    remote = tmp_path / "remote"
    repo.retrain("simulate", "--months", "3")
    repo.run("dvc", "remote", "add", "-d", "local", str(remote))
    repo.run("dvc", "add", "data/raw")
    repo.commit_all("raw data tracked by dvc")
    repo.repro()
    repo.retrain("promote")
    repo.run("dvc", "push")
    version = repo.json("models/champion.json")["version"]

    clone = tmp_path / "clone"
    repo.run("git", "clone", "-q", str(repo.path), str(clone))
    from tests.helpers import Repo

    other = Repo(clone)
    other.run("dvc", "pull")
    out = other.repro()
    assert "evaluate" in ran_stages(out)
    assert other.json("reports/evaluation.json")["champion"]["version"] == version
    assert not other.json("reports/decision.json")["retrain"]


def test_weekly_batches_of_another_dataset_run_the_loop(make_repo):
    """Other column names, weekly batches named by each week's first day: cold start, promote,
    and a stable next week keeps the champion, judged on that week's rows."""
    repo = make_repo()
    params = yaml.safe_load((repo.path / "params.yaml").read_text())
    params["schema"] = {**TOY, "period": "W"}
    params["prepare"]["cleaning"]["bounds"] = {}
    (repo.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for k, week in enumerate(["2025-06-16", "2025-06-23", "2025-06-30"]):
        toy_raw(week, n=300, seed=k, freq="W").to_csv(repo.path / f"data/raw/{week}.csv", index=False)
    repo.commit_all("three weeks")
    repo.repro()
    assert repo.json("reports/decision.json")["retrain"]
    repo.retrain("promote")
    toy_raw("2025-07-07", n=300, seed=3, freq="W").to_csv(repo.path / "data/raw/2025-07-07.csv", index=False)
    repo.commit_all("the next week")
    repo.repro()
    evaluation = repo.json("reports/evaluation.json")
    assert evaluation["labelled_period"] == "2025-07-07" and evaluation["metrics"]["rows"] == 300
    decision = repo.json("reports/decision.json")
    assert not decision["retrain"], decision["reason"]


def test_schema_breaking_batch_stops_prepare_with_one_line_and_changes_nothing(make_repo):
    params = dict(LOOP_PARAMS)
    params["simulate"] = {
        "rows_per_batch": 300,
        "scenarios": [
            {
                "name": "senior_flag_as_text",
                "kind": "retype",
                "from": "2025-04",
                "column": "senior_citizen",
                "mapping": {"0": "No", "1": "Yes"},
            }
        ],
    }
    repo = make_repo(params)
    repo.retrain("simulate", "--months", "3")
    repo.commit_all("data")
    repo.repro()
    repo.commit_all("first run")
    repo.retrain("simulate")
    repo.commit_all("2025-04 with a changed column type")
    lock = (repo.path / "dvc.lock").read_bytes()
    pointer = (repo.path / "models/champion.json").read_bytes()
    raw = {p.name: p.read_bytes() for p in (repo.path / "data/raw").iterdir()}
    out = repo.run("dvc", "repro", check=False)
    assert out.returncode != 0
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert (
        errors == [errors[0]]
        and "data/raw/2025-04.csv: column 'senior_citizen', row 1" in errors[0]
        and "expected a number" in errors[0]
    )
    assert "Traceback" not in out.stderr
    assert (repo.path / "dvc.lock").read_bytes() == lock
    assert (repo.path / "models/champion.json").read_bytes() == pointer
    assert {p.name: p.read_bytes() for p in (repo.path / "data/raw").iterdir()} == raw


def test_evaluate_reads_only_the_newest_batch_and_the_champion_profile(make_repo):
    repo = make_repo(
        {
            "simulate": {"start": "2022-01", "rows_per_batch": 150, "scenarios": []},
            "decide": {"performance": {"threshold": 0.5}},
            "compare": {"min_holdout_rows": 50},
        }
    )
    repo.first_run(months=13)  # a year boundary in the history
    repo.repro()
    before = (repo.path / "reports/evaluation.json").read_bytes()
    assert repo.json("reports/evaluation.json")["champion"]["version"] == "v1.0.0"
    history = [
        *(repo.path / "data/raw").iterdir(),
        repo.path / "data/prepared/train.parquet",
        repo.path / "data/prepared/holdout.parquet",
    ]
    assert len(history) == 15
    for path in history:
        path.unlink()
    (repo.path / "reports/evaluation.json").unlink()
    repo.run("python", "stages/evaluate.py")
    assert (repo.path / "reports/evaluation.json").read_bytes() == before


def test_row_caps_sample_training_and_scoring_and_compare_still_reuses_scores(first_run_repo):
    """prepare.max_rows keeps a seeded sample of a large window and of the newest labelled
    batch; the holdout stays inside the rows evaluate scored, so nothing is scored twice."""
    repo = first_run_repo(LOOP_PARAMS)
    repo.next_month()
    repo.set_params({"prepare": {"max_rows": {"train": 200, "labelled": 300}}, "decide": {"force": True}})
    out = repo.repro("compare")
    prepared = repo.json("reports/prepare.json")
    assert (prepared["train_rows"], prepared["train_window_rows"]) == (200, 300)
    assert (prepared["labelled_rows"], prepared["labelled_batch_rows"]) == (300, 600)
    assert prepared["holdout_rows"] == 150 and prepared["newest_rows"] == 600
    assert "kept a sample of 200 of 300 train rows (prepare.max_rows.train)" in out
    assert "scored the" not in out
    evaluation = repo.json("reports/evaluation.json")
    assert evaluation["metrics"]["rows"] == 300 and evaluation["drift"]["rows"] == 600
    assert repo.json("reports/promotion.json")["holdout"]["rows"] == 150
    assert_holdout_is_honest(repo)
    train = (repo.path / "data/prepared/train.parquet").read_bytes()
    repo.run("python", "stages/prepare.py")
    assert (repo.path / "data/prepared/train.parquet").read_bytes() == train


def test_compare_scores_a_model_itself_when_its_stored_probabilities_miss_holdout_rows(first_run_repo):
    """Compare reuses the probabilities evaluate and train stored; without them it loads and
    scores both models, and the verdict is the same to the last digit."""
    from retrain.data.files import parquet_metadata, write_parquet

    repo = first_run_repo(LOOP_PARAMS)
    repo.next_month()
    repo.set_params({"decide": {"force": True}})
    out = repo.repro("compare")
    assert "scored the" not in out
    reused = repo.json("reports/promotion.json")
    assert reused["champion"] and reused["challenger"]
    for name in ("newest_champion", "holdout_challenger"):
        path = repo.path / f"data/scored/{name}.parquet"
        md5 = parquet_metadata(path)["model_md5"]
        write_parquet(
            path, pd.DataFrame({"customer_id": ["nobody"], "probability": [0.5]}), {"model_md5": md5}
        )
    out = repo.run("python", "stages/compare.py").stdout
    assert "scored the champion on the holdout" in out
    assert "scored the challenger on the holdout" in out
    rescored = repo.json("reports/promotion.json")
    assert rescored == reused
