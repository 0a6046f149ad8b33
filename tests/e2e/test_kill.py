"""Crash safety: SIGKILL `dvc repro` inside every stage and `retrain promote` / `rollback` at every
step (the whole process group, as when a CI runner dies), rerun, and check that nothing is mixed.

A kill point is RETRAIN_KILL_AT (see retrain.faults): `write:<path>` right after a stage wrote
that output (others of the stage still old), or `promote:<step>`. After the rerun, dvc.lock (the
md5 of every output) equals that of a run never killed, and every registry reader names the same
production version.
"""

import json
import shutil
import signal
import subprocess

import pytest

from tests.helpers import Repo, command_env, create_repo, run

pytestmark = pytest.mark.e2e

PARAMS = {
    "prepare": {"window": "last_n", "window_batches": 2, "holdout_fraction": 0.5},
    "decide": {"performance": {"threshold": 0.99}},
    "compare": {"min_improvement": -1.0, "minimums": {"roc_auc": 0.5}, "guards": {"brier": 1.0}},
    "simulate": {"rows_per_batch": 300, "scenarios": []},
}
REPRO_POINTS = [
    "write:data/prepared/newest.parquet",
    "write:data/prepared/train.parquet",
    "write:reports/prepare.json",
    "write:reports/evaluation.json",
    "write:reports/plots/newest_champion.csv",
    "write:reports/decision.json",
    "write:models/challenger/model.skops",
    "write:models/challenger/profile.json",
    "write:reports/promotion.json",
    "write:reports/plots/roc_champion.csv",
    "write:reports/backtest.json",
    "write:data/backtest/state.json",
    "write:reports/decision.md",
    "write:reports/report.html",
]
PROMOTE_POINTS = [
    "promote:start",
    "promote:after_register_commit",
    "promote:after_version_tag",
    "promote:after_pointer_commit",
    "promote:after_unassign_tag",
    "promote:after_stage_tag",
]
ROLLBACK_POINTS = ["rollback:after_pointer_commit", "rollback:after_unassign_tag", "rollback:after_stage_tag"]


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    """v1.0.0 in production and a fourth month committed, not yet reproduced."""
    repo = create_repo(tmp_path_factory.mktemp("kill") / "repo", PARAMS)
    repo.first_run(months=3)
    repo.next_month()
    return repo


@pytest.fixture(scope="module")
def reference(month, tmp_path_factory):
    """The same month reproduced (kept as `verdict`: promote v1.1.0) and promoted, never killed."""
    repo = copy(month, tmp_path_factory.mktemp("reference"))
    repo.repro()
    lock = (repo.path / "dvc.lock").read_bytes()
    assert repo.json("reports/promotion.json")["promote"]
    verdict = copy(repo, tmp_path_factory.mktemp("verdict"))
    repo.retrain("promote")
    return {"lock": lock, "repo": repo, "readers": readers(repo), "verdict": verdict}


def copy(repo: Repo, where) -> Repo:
    target = where / "copy"
    shutil.copytree(repo.path, target, symlinks=True)
    return Repo(target)


def killed(repo: Repo, point: str, *cmd: str) -> None:
    """Run `cmd` in its own process group with RETRAIN_KILL_AT=point; it must die by SIGKILL."""
    proc = subprocess.run(
        cmd,
        cwd=repo.path,
        capture_output=True,
        text=True,
        timeout=600,
        start_new_session=True,
        env=command_env({"RETRAIN_KILL_AT": point}),
    )
    assert proc.returncode == -signal.SIGKILL, (point, proc.returncode, proc.stderr[-2000:])


def readers(repo: Repo) -> dict:
    """What the pointer, GTO, the history command and the stage tags each say is in production."""
    from gto.api import find_versions_in_stage

    from retrain.registry.tags import read_registry

    found = find_versions_in_stage(str(repo.path), "churn-model", "prod")
    history = json.loads(repo.retrain("history", "--json").stdout)
    return {
        "pointer": repo.json("models/champion.json")["version"],
        "gto": found[0].version if found else None,
        "history": history["production"],
        "in_prod": read_registry(repo.path, "churn-model").active("prod"),
    }


def test_dvc_repro_killed_inside_every_stage_in_turn_reruns_to_the_same_outputs(month, reference, tmp_path):
    """Each run is killed at the next point (the stage before it completed and is kept), the
    last one runs through: every rerun resumes from a killed stage."""
    repo = copy(month, tmp_path)
    pointer, tags = (repo.path / "models/champion.json").read_bytes(), repo.tags()
    assert len(REPRO_POINTS) >= 13
    for point in REPRO_POINTS:
        killed(repo, point, "dvc", "repro")
        assert (repo.path / "models/champion.json").read_bytes() == pointer
        assert repo.tags() == tags
        stage = repo.run("dvc", "status", "--json").stdout
        assert stage.strip() not in ("", "{}"), f"{point}: the killed stage looks complete"
    repo.repro()
    assert (repo.path / "dvc.lock").read_bytes() == reference["lock"]
    assert repo.run("dvc", "status").stdout.strip() == "Data and pipelines are up to date."
    assert not [p for p in repo.git("status", "--porcelain", "--ignored").splitlines() if p.endswith(".tmp")]


@pytest.fixture(scope="module")
def verdict(reference):
    """The month reproduced, not promoted: the verdict is to promote v1.1.0."""
    return reference["verdict"]


@pytest.mark.parametrize("point", PROMOTE_POINTS)
def test_promote_killed_at_any_step_then_rerun_promotes_once(verdict, reference, tmp_path, point):
    repo = copy(verdict, tmp_path)
    killed(repo, point, "retrain", "promote")
    now = repo.json("models/champion.json")["version"]
    assert now in {"v1.0.0", "v1.1.0"}
    repo.retrain("promote")
    after = readers(repo)
    assert after == reference["readers"]
    assert after["pointer"] == after["gto"] == after["history"] == "v1.1.0"
    assert after["in_prod"] == ["v1.1.0"]
    assert sorted(repo.tags()) == sorted(reference["repo"].tags())


@pytest.mark.parametrize("point", ROLLBACK_POINTS)
def test_rollback_killed_at_any_step_then_rerun_rolls_back_once(reference, tmp_path, point):
    repo = copy(reference["repo"], tmp_path)
    killed(repo, point, "retrain", "rollback", "--to", "v1.0.0", "--reason", "kill test")
    repo.retrain("rollback", "--to", "v1.0.0", "--reason", "kill test")
    after = readers(repo)
    assert after["pointer"] == after["gto"] == after["history"] == "v1.0.0"
    assert after["in_prod"] == ["v1.0.0"]


def test_two_promotes_at_once_one_wins_the_other_changes_nothing(verdict, tmp_path):
    repo = copy(verdict, tmp_path)
    resume = tmp_path / "resume"
    env = command_env(
        {"RETRAIN_PAUSE_AT": "promote:after_version_tag:60", "RETRAIN_RESUME_FILE": str(resume)}
    )
    first = subprocess.Popen(
        ["retrain", "promote"],
        cwd=repo.path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    import time

    deadline = time.time() + 60
    while "churn-model@v1.1.0" not in repo.tags() and time.time() < deadline:
        time.sleep(0.1)
    before = {"tags": repo.tags(), "head": repo.git("rev-parse", "HEAD")}
    second = run(["retrain", "promote"], repo.path, check=False)
    assert second.returncode == 3, second.stderr
    assert second.stderr.count("\n") == 1 and "another promote or rollback" in second.stderr
    assert {"tags": repo.tags(), "head": repo.git("rev-parse", "HEAD")} == before
    assert first.poll() is None, "the first promote went on before the second was tried"
    resume.touch()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    after = readers(repo)
    assert after["pointer"] == after["gto"] == after["history"] == "v1.1.0"
    assert after["in_prod"] == ["v1.1.0"]


def test_two_clean_runs_give_byte_identical_outputs(month, reference, tmp_path):
    """Same inputs and params in another directory: the md5 of every output (dvc.lock) agrees."""
    repo = copy(month, tmp_path)
    repo.repro()
    assert (repo.path / "dvc.lock").read_bytes() == reference["lock"]
    outs = [line for line in reference["lock"].decode().splitlines() if "md5:" in line]
    assert len(outs) > 30


@pytest.fixture(scope="module")
def hold_verdict(reference, tmp_path_factory):
    """v1.1.0 in production, then a month whose challenger loses: the verdict is to hold."""
    repo = copy(reference["repo"], tmp_path_factory.mktemp("hold"))
    repo.repro()
    repo.commit_all("evaluate v1.1.0")
    repo.set_params({"decide": {"performance": {"threshold": 0.99}}, "compare": {"min_improvement": 0.5}})
    repo.next_month()
    repo.repro()
    verdict = repo.json("reports/promotion.json")
    assert not verdict["promote"] and verdict["challenger"], verdict
    return repo


@pytest.mark.parametrize("point", ["hold:start", "hold:after_pointer_commit"])
def test_hold_killed_at_any_step_then_rerun_holds_once(hold_verdict, tmp_path, point):
    repo = copy(hold_verdict, tmp_path)
    head, tags = repo.git("rev-parse", "HEAD"), repo.tags()
    killed(repo, point, "retrain", "hold")
    repo.retrain("hold")
    pointer = repo.json("models/champion.json")
    assert pointer["version"] == "v1.1.0" and pointer["baseline"]["version"] == "v1.1.0"
    assert repo.git("rev-list", "--count", f"{head}..HEAD") == "1"
    assert repo.tags() == tags
    assert "already" in repo.retrain("hold").stdout


@pytest.mark.parametrize("command", [("promote",), ("rollback", "--to", "v1.0.0", "--reason", "kill")])
def test_killed_inside_git_commit_the_next_run_removes_the_stale_index_lock(
    verdict, reference, tmp_path, command
):
    """The whole process group dies while `git commit` holds .git/index.lock (killed from a
    pre-commit hook, in the commit of the pointer): the next run recovers, removes the lock and
    completes."""
    repo = copy(verdict if command[0] == "promote" else reference["repo"], tmp_path)
    tags = repo.tags()
    hook = repo.path / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\nif test -f .git/index.lock; then kill -KILL 0; fi\n")
    hook.chmod(0o755)
    proc = subprocess.run(
        ["retrain", *command],
        cwd=repo.path,
        capture_output=True,
        text=True,
        timeout=600,
        start_new_session=True,
        env=command_env(),
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert (repo.path / ".git/index.lock").exists()
    hook.unlink()
    out = repo.retrain(*command)
    assert "removed" in out.stdout and "index.lock" in out.stdout
    assert not (repo.path / ".git/index.lock").exists()
    after = readers(repo)
    expected = "v1.1.0" if command[0] == "promote" else "v1.0.0"
    assert after["pointer"] == after["gto"] == after["history"] == expected
    assert after["in_prod"] == [expected]
    if command[0] == "rollback":
        assert repo.tags() != tags


def test_a_foreign_index_lock_is_refused_and_kept(verdict, tmp_path):
    repo = copy(verdict, tmp_path)
    (repo.path / ".git/index.lock").write_text("")
    out = repo.retrain("promote", check=False)
    assert out.returncode == 3 and "another git command is running" in out.stderr
    assert (repo.path / ".git/index.lock").exists()
    assert "churn-model@v1.1.0" not in repo.tags()


REFUSED_WHILE_REPRO_RUNS = [("promote",), ("rollback", "--to", "v1.0.0", "--reason", "x"), ("hold",)]


@pytest.mark.parametrize(
    "commands,pause",
    [
        (REFUSED_WHILE_REPRO_RUNS, "write:reports/evaluation.json"),
        (REFUSED_WHILE_REPRO_RUNS[:1], "write:reports/backtest.json"),
    ],
    ids=["inside-evaluate", "inside-backtest"],
)
def test_production_never_moves_while_dvc_repro_runs(verdict, tmp_path, commands, pause):
    """A repro paused inside evaluate (which reads the pointer) or the backtest (which writes
    reports promote would commit) holds DVC's locks: promote, hold and rollback are refused and
    change nothing, and the evaluation it records describes the pointer it read."""
    repo = copy(verdict, tmp_path)
    repo.retrain("simulate")
    repo.commit_all("one more month")
    before = {
        "tags": repo.tags(),
        "head": repo.git("rev-parse", "HEAD"),
        "pointer": (repo.path / "models/champion.json").read_bytes(),
    }
    written = repo.path / pause.removeprefix("write:")
    before_mtime = written.stat().st_mtime_ns if written.exists() else 0
    resume = tmp_path / "resume"
    env = command_env({"RETRAIN_PAUSE_AT": f"{pause}:120", "RETRAIN_RESUME_FILE": str(resume)})
    running = subprocess.Popen(
        ["dvc", "repro"], cwd=repo.path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    import time

    deadline = time.time() + 120
    while not written.exists() or written.stat().st_mtime_ns == before_mtime:
        assert time.time() < deadline and running.poll() is None, running.stderr.read()
        time.sleep(0.2)
    for command in commands:
        out = repo.retrain(*command, check=False)
        assert out.returncode == 3 and "dvc repro?" in out.stderr, (command, out.stderr)
        assert running.poll() is None, "the pause ended before every command was tried"
        assert {
            "tags": repo.tags(),
            "head": repo.git("rev-parse", "HEAD"),
            "pointer": (repo.path / "models/champion.json").read_bytes(),
        } == before, command
    resume.touch()
    _, err = running.communicate(timeout=300)
    assert running.returncode == 0, err
    assert repo.run("dvc", "status").stdout.strip() == "Data and pipelines are up to date."
