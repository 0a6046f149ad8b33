"""The GitHub workflows pass the workflow schema and zizmor's audit, offline."""

import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers import ROOT

WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def test_workflows_match_the_github_schema():
    proc = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_finds_nothing_of_medium_or_high_severity():
    proc = subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--min-severity", "medium", str(ROOT / ".github/workflows")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_retrain_workflow_runs_the_job_script_on_data_pushes_with_least_permissions():
    flow = yaml.safe_load((ROOT / ".github/workflows/retrain.yml").read_text())
    triggers = flow[True]  # YAML reads the key `on` as True
    assert {"data/raw/**", "params.yaml", "dvc.yaml", "models/champion.json"} <= set(
        triggers["push"]["paths"]
    )
    assert "workflow_dispatch" in triggers
    assert flow["permissions"] == {} and flow["concurrency"]["cancel-in-progress"] is False
    job = flow["jobs"]["retrain"]
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert flow["env"]["RETRAIN_PUSH"] == "${{ vars.RETRAIN_PUSH || '1' }}"
    steps = job["steps"]
    assert steps[0]["with"]["fetch-depth"] == 0 and steps[0]["with"]["fetch-tags"] is True
    assert all("@" in s["uses"] and len(s["uses"].split("@")[1]) == 40 for s in steps if "uses" in s)
    run = next(s for s in steps if s.get("run") == "bash .ci/retrain")
    assert any("secrets." in str(v) for v in run["env"].values()), "credentials from secrets"
    uses = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    assert uses["actions/setup-python"]["with"]["cache"] == "pip"
    assert uses["actions/cache"]["with"]["path"] == ".dvc/cache"
    assert "reports/report.html" in uses["actions/upload-artifact"]["with"]["path"]
    assert steps.index(uses["actions/upload-artifact"]) > steps.index(run)
    assert ".[${DVC_EXTRA}]" in next(s["run"] for s in steps if s.get("name") == "Install")
    review = next(s for s in steps if "gh pr create" in s.get("run", ""))
    assert steps.index(review) > steps.index(run) and "steps.job.outputs.review_branch" in review["if"]
    assert '--head "$REVIEW_BRANCH"' in review["run"] and review["env"]["GH_TOKEN"] == "${{ github.token }}"
    pr = yaml.safe_load((ROOT / ".github/workflows/retrain-pr.yml").read_text())
    assert {"params.yaml", "dvc.yaml"} <= set(pr[True]["pull_request"]["paths"])
    pr_job = pr["jobs"]["report"]
    assert pr_job["permissions"] == {"contents": "read"}
    pr_run = next(s for s in pr_job["steps"] if s.get("run") == "bash .ci/retrain")
    assert pr_run["env"]["RETRAIN_PROMOTE"] == "0"
    assert "DVC_READONLY" in str(pr_run["env"]), "read-only remote credentials"


def test_ingest_workflow_runs_daily_beside_the_retrain_job_and_may_open_a_pull_request():
    flow = yaml.safe_load((ROOT / ".github/workflows/ingest.yml").read_text())
    retrain = yaml.safe_load((ROOT / ".github/workflows/retrain.yml").read_text())
    triggers = flow[True]
    assert triggers["schedule"][0]["cron"] and "workflow_dispatch" in triggers
    assert flow["concurrency"] == retrain["concurrency"]
    assert flow["permissions"] == {}
    job = flow["jobs"]["ingest"]
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert flow["env"]["RETRAIN_PUSH"] == retrain["env"]["RETRAIN_PUSH"]
    steps = job["steps"]
    run = next(s for s in steps if s.get("run") == "bash .ci/ingest")
    review = next(s for s in steps if "gh pr create" in s.get("run", ""))
    assert steps.index(review) > steps.index(run) and run["id"] in review["if"]
    assert run["env"]["RETRAIN_DB_URL"] == "${{ secrets.RETRAIN_DB_URL }}"
    assert run["env"]["RETRAIN_DB_PASSWORD"] == "${{ secrets.RETRAIN_DB_PASSWORD }}"
    assert "postgres" in next(s["run"] for s in job["steps"] if s.get("name") == "Install")


def test_deploy_workflow_acts_on_prod_assignments_only_with_read_permissions():
    flow = yaml.safe_load((ROOT / ".github/workflows/deploy.yml").read_text())
    assert flow[True]["push"]["tags"] == ["churn-model#prod#*"]
    assert flow["permissions"] == {}
    job = flow["jobs"]["deploy"]
    assert job["permissions"] == {"contents": "read"}
    steps = {s.get("name"): s for s in job["steps"]}
    parse = steps["Parse the stage tag"]["run"]
    assert 'gto check-ref "$GITHUB_REF_NAME" --event' in parse and "assignment" in parse
    assert steps["Fetch the prod model (md5-checked)"]["run"] == "retrain fetch --stage prod -o deploy/model"
    assert steps["Fetch the prod model (md5-checked)"]["if"] == "steps.tag.outputs.deploy == 'true'"
    assert "/hooks/registry" in steps["Deploy (adapt this step)"]["run"]
