"""The scheduled extract (.ci/ingest): a new period in the warehouse becomes a batch commit, a
pipeline run and a promoted model on a bare origin and a local DVC remote; a second run is a no-op."""

import sqlite3

import pandas as pd
import pytest

from tests.e2e.test_ci_job import clone, merge_with_a_merge_commit, origin_state, remote_files
from tests.helpers import ROOT, Repo

pytestmark = pytest.mark.e2e


@pytest.fixture
def setup(make_repo, tmp_path):
    origin, remote, db = tmp_path / "origin.git", tmp_path / "dvc-remote", tmp_path / "wh.sqlite"
    Repo(tmp_path).run("git", "init", "-q", "--bare", "-b", "main", str(origin))
    project = make_repo({"simulate": {"rows_per_batch": 300, "scenarios": []}})
    (project.path / ".ci").mkdir()
    (project.path / "sql").mkdir()
    for rel in (".ci/retrain", ".ci/ingest", "sql/batch.sql"):
        (project.path / rel).write_bytes((ROOT / rel).read_bytes())
    project.retrain("simulate", "--months", "4", "--out", "warehouse-rows")
    rows = pd.concat(
        pd.read_csv(p, dtype=str, keep_default_na=False)
        for p in sorted((project.path / "warehouse-rows").iterdir())
    )
    with sqlite3.connect(db) as conn:
        rows.to_sql("customers", conn, index=False)
    for month in ("2025-01", "2025-02", "2025-03"):
        (project.path / f"warehouse-rows/{month}.csv").rename(project.path / f"data/raw/{month}.csv")
    (project.path / "warehouse-rows/2025-04.csv").unlink()
    (project.path / "warehouse-rows").rmdir()
    project.run("dvc", "remote", "add", "-d", "storage", str(remote))
    project.commit_all("three months")
    project.git("remote", "add", "origin", str(origin))
    project.git("push", "-q", "origin", "main")
    ci = Repo(tmp_path / "ci")
    project.run("git", "clone", "-q", str(origin), str(ci.path))
    return origin, remote, ci, db


def test_a_scheduled_run_takes_the_new_period_retrains_and_publishes_then_does_nothing(setup):
    origin, remote, ci, db = setup
    env = {"RETRAIN_DB_URL": f"sqlite:///{db}"}
    first = ci.run("bash", ".ci/ingest", env=env)
    assert "wrote data/raw/2025-04.parquet: 300 rows" in first.stdout
    log = Repo(origin).git("log", "--format=%s", "main").splitlines()
    assert "Batch 2025-04 from the warehouse" in log
    register = next(i for i, subject in enumerate(log) if subject.startswith("Register churn-model v1.0.0"))
    assert log.index("Batch 2025-04 from the warehouse") > register  # newest first: batch, then model
    assert {"churn-model@v1.0.0", "churn-model#prod#1"} <= set(Repo(origin).git("tag", "--list").split())
    assert ci.json("reports/decision.json")["as_of"] == "2025-04"
    md5 = ci.json("models/champion.json")["md5"]
    assert f"files/md5/{md5[:2]}/{md5[2:]}" in remote_files(remote)

    state = origin_state(origin)
    second = ci.run("bash", ".ci/ingest", env=env)
    assert second.stdout.strip().splitlines()[-1] == "retrain ingest job: nothing new in the warehouse"
    assert origin_state(origin) == state
    assert ci.git("status", "--porcelain") == ""


def test_behind_branch_protection_the_batch_and_its_model_arrive_as_one_pull_request(setup, tmp_path):
    """RETRAIN_PUSH=pull-request: main stays as it was; the batch commit and the run's answers go to
    the branch retrain/<period> with the model's tags pending; no period is taken while that pull
    request is open, and once it is merged the warehouse has nothing new."""
    origin, remote, ci, db = setup
    env = {"RETRAIN_DB_URL": f"sqlite:///{db}", "RETRAIN_PUSH": "pull-request"}
    main_before = Repo(origin).git("rev-parse", "main")
    outputs = tmp_path / "github-output"
    out = ci.run("bash", ".ci/ingest", env={**env, "GITHUB_OUTPUT": str(outputs)})
    assert "pushed retrain/2025-04 with the pending tags churn-model#prod#1 churn-model@v1.0.0" in out.stdout
    assert outputs.read_text() == "review_branch=retrain/2025-04\n"
    assert Repo(origin).git("rev-parse", "main") == main_before
    refs = origin_state(origin)
    assert "refs/tags/" not in refs and "refs/retrain/pending/2025-04/churn-model@v1.0.0" in refs
    review = Repo(origin).git("log", "--format=%s", "main..retrain/2025-04").splitlines()
    assert review[-1] == "Batch 2025-04 from the warehouse"
    assert any(subject.startswith("Register churn-model v1.0.0") for subject in review)

    waiting = clone(origin, tmp_path / "waiting")
    out = waiting.run("bash", ".ci/ingest", env=env)
    assert "the pull request from retrain/2025-04 awaits review" in out.stdout
    assert origin_state(origin) == refs and not (waiting.path / "data/raw/2025-04.parquet").exists()

    merge_with_a_merge_commit(origin, tmp_path / "reviewer", "retrain/2025-04", "Merge the batch of 2025-04")
    merged = clone(origin, tmp_path / "merged")
    out = merged.run("bash", ".ci/ingest", env=env)
    assert out.stdout.strip().splitlines()[-1] == "retrain ingest job: nothing new in the warehouse"
    assert merged.git("status", "--porcelain") == ""
