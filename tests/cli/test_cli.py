"""The `retrain` command: promote's refusals and atomicity, simulate, one-line errors.

Each module fixture builds a real repository with `dvc repro`, so these run with the end-to-end
tests, not in the fast loop."""

import shutil

import pandas as pd
import pytest

from retrain.errors import RegistryError
from retrain.registry import commands, tags
from tests.helpers import ALWAYS_PROMOTE, FirstRuns, Repo, run

pytestmark = pytest.mark.e2e

STEPS = [
    "after_register_commit",
    "after_version_tag",
    "after_pointer_commit",
    "after_unassign_tag",
    "after_stage_tag",
]


def new_repo(first_runs: FirstRuns, base, params=None) -> Repo:
    """A repository after a cold-start `dvc repro` over three months, verdict: promote."""
    repo = first_runs.copy(base / "repo", params, promote=False)
    assert repo.json("reports/promotion.json")["promote"]
    return repo


@pytest.fixture(scope="module")
def ready(first_runs, tmp_path_factory):
    """A repository after a cold-start `dvc repro` whose verdict is to promote."""
    return new_repo(first_runs, tmp_path_factory.mktemp("ready")).path


@pytest.fixture(scope="module")
def second(first_runs, tmp_path_factory):
    """v1.0.0 in production and a second challenger whose verdict is to promote."""
    repo = new_repo(first_runs, tmp_path_factory.mktemp("second"), ALWAYS_PROMOTE)
    repo.retrain("promote")
    repo.retrain("simulate")
    repo.commit_all("2025-04")
    repo.repro()
    assert repo.json("reports/promotion.json")["promote"]
    return repo.path


@pytest.fixture(scope="module")
def promoted(ready, tmp_path_factory):
    """v1.0.0 in production: a copy of `ready`, promoted."""
    repo = copy_of(ready, tmp_path_factory.mktemp("promoted"))
    repo.retrain("promote")
    return repo.path


def copy_of(path, tmp_path) -> Repo:
    target = tmp_path / "copy"
    shutil.copytree(path, target, symlinks=True)
    return Repo(target)


@pytest.fixture
def repo(ready, tmp_path):
    return copy_of(ready, tmp_path)


def snapshot(repo: Repo) -> dict:
    return {
        "head": repo.git("rev-parse", "HEAD"),
        "tags": repo.git("tag", "--list"),
        "status": repo.git("status", "--porcelain"),
        "pointer": (repo.path / "models/champion.json").read_bytes(),
    }


@pytest.mark.parametrize("step", STEPS)
def test_failure_at_any_promote_step_leaves_the_repository_as_it_was(second, tmp_path, step):
    repo = copy_of(second, tmp_path)
    before = snapshot(repo)
    with pytest.raises(RegistryError, match=f"injected failure {step}"):
        commands.promote(repo.path, "churn-model", "minor", fail_at=step)
    assert snapshot(repo) == before
    assert "promoted churn-model v1.1.0" in repo.retrain("promote").stdout
    assert repo.json("models/champion.json")["version"] == "v1.1.0"
    assert tags.read_registry(repo.path, "churn-model").active() == ["v1.1.0"]


@pytest.mark.parametrize("step", ["after_pointer_commit", "after_unassign_tag", "after_stage_tag"])
def test_failure_at_any_rollback_step_leaves_the_repository_as_it_was(second, tmp_path, step):
    repo = copy_of(second, tmp_path)
    repo.retrain("promote")
    before = snapshot(repo)
    with pytest.raises(RegistryError, match=f"injected failure {step}"):
        commands.rollback(repo.path, "churn-model", "test", to="v1.0.0", fail_at=step)
    assert snapshot(repo) == before
    repo.retrain("rollback", "--to", "v1.0.0", "--reason", "test")
    assert tags.read_registry(repo.path, "churn-model").active() == ["v1.0.0"]


def test_tampered_champion_is_refused_before_it_is_unpickled(second, tmp_path):
    import pickle

    repo = copy_of(second, tmp_path)
    md5 = repo.json("models/champion.json")["md5"]
    cached = repo.path / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    cached.chmod(0o644)
    cached.write_bytes(pickle.dumps(Exploit()))
    out = repo.run("python", "stages/evaluate.py", check=False)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "does not match" in out.stderr
    assert not marker.exists()


def test_promote_twice_promotes_once(repo):
    repo.retrain("promote")
    state = snapshot(repo)
    again = repo.retrain("promote")
    assert again.returncode == 0 and "already in production as v1.0.0" in again.stdout
    assert snapshot(repo) == state


def test_promote_refuses_with_edits_to_committed_files_and_changes_nothing(repo):
    (repo.path / "notes.txt").write_text("committed\n")
    repo.git("add", "notes.txt")
    repo.git("commit", "-q", "-m", "notes")
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
    (tmp_path / "params.yaml").write_text(
        "schema: {id: i, time: t, target: y, positive: 1, negative: 0,"
        " numeric: [x]}\nregistry: {model_name: m, bump: minor}\n"
    )
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
    frame = pd.read_csv(repo.path / "data/raw/2025-04.csv", dtype=str, keep_default_na=False)
    assert (frame["churn"] == "").all() and len(frame) > 0


def test_simulated_batches_stay_inside_the_repository(repo):
    before = sorted(p.name for p in repo.path.parent.iterdir())
    out = repo.retrain("simulate", "--out", "../escaped", check=False)
    assert out.returncode == 1, out.stderr
    assert out.stderr.count("\n") == 1 and "outside the repository" in out.stderr
    assert sorted(p.name for p in repo.path.parent.iterdir()) == before


def recorded_state(repo: Repo) -> dict:
    return {
        str(p.relative_to(repo.path)): p.read_bytes()
        for p in sorted(repo.path.rglob("*"))
        if p.is_file()
        and not p.is_relative_to(repo.path / ".dvc/tmp")
        and not p.is_relative_to(repo.path / "reports")
    }


@pytest.mark.parametrize(
    "command",
    [
        ("report", "-o", "models/champion.json"),
        ("report", "-o", "dvc.lock"),
        ("report", "-o", "./params.yaml"),
        ("report", "-o", "reports/../.git/HEAD"),
        ("predict", "data/raw/2025-01.csv", "-o", "data/prepared/holdout.parquet"),
        ("predict", "data/raw/2025-01.csv", "-o", "data/raw/scored.csv"),
        ("fetch", "--stage", "prod", "-o", "data/raw"),
        ("fetch", "--stage", "prod", "-o", "models"),
    ],
)
def test_command_outputs_never_overwrite_recorded_state(promoted, tmp_path, command):
    repo = copy_of(promoted, tmp_path)
    before = recorded_state(repo)
    out = repo.retrain(*command, check=False)
    assert out.returncode == 1, out.stderr
    assert out.stderr.count("\n") == 1 and "which the repository records" in out.stderr
    assert recorded_state(repo) == before


def test_command_outputs_go_anywhere_the_user_names(promoted, tmp_path):
    repo = copy_of(promoted, tmp_path / "copy")
    outside = tmp_path / "elsewhere"
    repo.retrain("predict", "data/raw/2025-01.csv", "-o", str(outside / "scored.csv"))
    assert len(pd.read_csv(outside / "scored.csv")) > 0
    repo.retrain("report", "-o", str(outside / "job.md"))
    assert (outside / "job.md").read_text().startswith("#")
    repo.retrain("fetch", "--stage", "prod", "-o", str(outside / "model"))
    assert (outside / "model" / "model.skops").exists()
