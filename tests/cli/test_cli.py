"""The `retrain` command: promote's refusals and atomicity, simulate, one-line errors."""

import shutil

import pytest

from retrain import registry
from retrain.errors import RegistryError
from tests.helpers import Repo, run

STEPS = ["after_register_commit", "after_version_tag", "after_pointer_commit", "after_stage_tag"]


@pytest.fixture(scope="module")
def ready(tmp_path_factory):
    """A repository after a cold-start `dvc repro` whose verdict is to promote."""
    base = tmp_path_factory.mktemp("ready")
    from tests.conftest import PROJECT_DIRS, PROJECT_FILES, ROOT, empty_pointer, write_json
    path = base / "repo"
    path.mkdir()
    for rel in PROJECT_FILES:
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, path / rel)
    for rel in PROJECT_DIRS:
        shutil.copytree(ROOT / rel, path / rel, ignore=shutil.ignore_patterns("__pycache__"))
    write_json(path / "models/champion.json", empty_pointer("churn-model"))
    repo = Repo(path)
    repo.git("init", "-q", "-b", "main")
    repo.run("dvc", "init", "-q")
    repo.retrain("simulate", "--months", "3")
    repo.commit_all("data")
    repo.repro()
    assert repo.json("reports/promotion.json")["promote"]
    return path


@pytest.fixture
def repo(ready, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(ready, target, symlinks=True)
    return Repo(target)


def snapshot(repo: Repo) -> dict:
    return {"head": repo.git("rev-parse", "HEAD"), "tags": repo.git("tag", "--list"),
            "status": repo.git("status", "--porcelain"),
            "pointer": (repo.path / "models/champion.json").read_bytes()}


@pytest.mark.parametrize("step", STEPS)
def test_failure_at_any_promote_step_leaves_the_repository_as_it_was(repo, step):
    before = snapshot(repo)
    with pytest.raises(RegistryError, match=f"injected failure {step}"):
        registry.promote(repo.path, "churn-model", "minor", fail_at=step)
    assert snapshot(repo) == before
    assert "promoted churn-model v1.0.0" in repo.retrain("promote").stdout
    assert repo.json("models/champion.json")["version"] == "v1.0.0"


def test_promote_twice_promotes_once(repo):
    repo.retrain("promote")
    state = snapshot(repo)
    again = repo.retrain("promote")
    assert again.returncode == 0 and "already in production as v1.0.0" in again.stdout
    assert snapshot(repo) == state


def test_promote_refuses_with_foreign_changes_and_changes_nothing(repo):
    (repo.path / "notes.txt").write_text("local edit\n")
    before = snapshot(repo)
    out = repo.retrain("promote", check=False)
    assert out.returncode == 3
    assert out.stderr.strip().count("\n") == 0 and "notes.txt" in out.stderr
    assert snapshot(repo) == before


def test_promote_refuses_when_dvc_lock_is_stale(repo):
    repo.set_params({"decide": {"performance": {"threshold": 0.5}}})
    out = repo.retrain("promote", check=False)
    assert out.returncode == 3 and "dvc.lock is not up to date" in out.stderr


def test_promote_refuses_a_verdict_written_for_another_model(repo):
    import json
    verdict = repo.json("reports/promotion.json")
    verdict["challenger_md5"] = "0" * 32
    (repo.path / "reports/promotion.json").write_text(json.dumps(verdict))
    out = repo.retrain("promote", check=False)
    assert out.returncode == 3 and "another challenger" in out.stderr


def test_promote_without_a_verdict_is_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text("registry: {model_name: m, bump: minor}\n")
    out = run(["retrain", "promote"], tmp_path, check=False)
    assert out.returncode == 1
    assert out.stderr == "error: reports/promotion.json: file not found\n"


def test_simulate_never_overwrites_a_batch(repo):
    target = repo.path / "data/raw/2025-02.csv"
    before = target.read_bytes()
    out = repo.retrain("simulate", "--period", "2025-02", check=False)
    assert out.returncode == 1 and "exists already" in out.stderr
    assert target.read_bytes() == before


def test_simulate_writes_the_next_period_and_can_leave_labels_blank(repo):
    out = repo.retrain("simulate", "--unlabelled")
    assert "2025-04.csv" in out.stdout and "no labels" in out.stdout
    import pandas as pd
    frame = pd.read_csv(repo.path / "data/raw/2025-04.csv", dtype=str, keep_default_na=False)
    assert (frame["churn"] == "").all() and len(frame) > 0
