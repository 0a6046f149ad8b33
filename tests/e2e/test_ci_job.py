"""The retraining job (.ci/retrain) against a bare git origin and a local DVC remote."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import ROOT, Repo, create_repo

pytestmark = pytest.mark.e2e

PARAMS = {
    "prepare": {"window": "last_n", "window_batches": 1, "holdout_fraction": 0.5},
    "simulate": {
        "rows_per_batch": 300,
        "scenarios": [
            {
                "name": "senior_flag_as_text",
                "kind": "retype",
                "from": "2025-06",
                "column": "senior_citizen",
                "mapping": {"0": "No", "1": "Yes"},
            }
        ],
    },
}


def origin_state(origin) -> str:
    return Repo(origin).git("for-each-ref", "--format=%(refname) %(objectname)")


def remote_files(remote) -> set[str]:
    return {str(p.relative_to(remote)) for p in remote.rglob("*") if p.is_file()}


def clone(origin: Path, target: Path) -> Repo:
    """A fresh clone of `origin` at `target`."""
    Repo(target.parent).run("git", "clone", "-q", str(origin), str(target))
    return Repo(target)


def merge_with_a_merge_commit(origin: Path, reviewer: Path, branch: str, message: str) -> None:
    """A reviewer's clone merges `branch` into main with a merge commit and pushes it."""
    repo = clone(origin, reviewer)
    repo.git("fetch", "-q", "origin", branch)
    repo.git("merge", "-q", "--no-ff", "-m", message, "FETCH_HEAD")
    repo.git("push", "-q", "origin", "main")


SECRET = "sekrit-never-print-4711"


def build(base: Path, remote_url: Path) -> None:
    """A project pushed to a bare origin with a committed local DVC remote; a CI clone of it."""
    origin = base / "origin.git"
    Repo(base).run("git", "init", "-q", "--bare", "-b", "main", str(origin))
    project = create_repo(base / "project", PARAMS)
    (project.path / ".ci").mkdir()
    (project.path / ".ci/retrain").write_bytes((ROOT / ".ci/retrain").read_bytes())
    project.run("dvc", "remote", "add", "-d", "storage", str(remote_url))
    project.retrain("simulate", "--months", "3")
    project.commit_all("three months")
    project.git("remote", "add", "origin", str(origin))
    project.git("push", "-q", "origin", "main")
    project.run("git", "clone", "-q", str(origin), str(base / "ci"))


def job(repo: Repo, check: bool = True, **env):
    return repo.run("bash", ".ci/retrain", check=check, env={k: str(v) for k, v in env.items()})


def copy_of(base: Path, target: Path, remote_url: Path) -> tuple[Path, Path, Repo]:
    """Origin, DVC remote and CI clone copied from `base` into `target`: the clone's origin set to
    the copy, and the committed remote url (a link) pointed at the copy's remote."""
    shutil.copytree(base, target, symlinks=True, dirs_exist_ok=True)
    ci = Repo(target / "ci")
    ci.git("remote", "set-url", "origin", str(target / "origin.git"))
    (target / "dvc-remote").mkdir(exist_ok=True)
    remote_url.unlink(missing_ok=True)
    remote_url.symlink_to(target / "dvc-remote")
    return target / "origin.git", target / "dvc-remote", ci


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> tuple[Path, Path, Path, str]:
    """Built once for this file: the setup before any job, and after the first job (run with
    remote credentials in its environment; its output is kept). The DVC remote's url, committed
    in every copy, is a link that each test points at its own copy of the remote (the tests of a
    file run one at a time on one worker)."""
    remote_url = tmp_path_factory.getbasetemp() / "ci-job-dvc-remote"
    before = tmp_path_factory.mktemp("before-the-job")
    build(before, remote_url)
    after = tmp_path_factory.mktemp("after-the-job")
    ci = copy_of(before, after, remote_url)[2]
    out = job(ci, AWS_SECRET_ACCESS_KEY=SECRET, AWS_ACCESS_KEY_ID="AKIA-" + SECRET)
    return before, after, remote_url, out.stdout + out.stderr


@pytest.fixture
def setup(bases, tmp_path):
    """This test's own copy of the setup before any job: origin, empty DVC remote, CI clone."""
    return copy_of(bases[0], tmp_path, bases[2])


@pytest.fixture
def published(bases, tmp_path):
    """This test's own copy of the setup after the first job, which promoted v1.0.0."""
    return copy_of(bases[1], tmp_path, bases[2])


def test_job_promotes_publishes_and_a_fresh_clone_fetches_the_model(bases, published, tmp_path):
    origin, remote, ci = published
    assert "promoted churn-model v1.0.0" in bases[3] and SECRET not in bases[3]
    assert "set -x" not in (ci.path / ".ci/retrain").read_text()
    tags = Repo(origin).git("tag", "--list").split()
    assert {"churn-model@v1.0.0", "churn-model#prod#1"} <= set(tags)
    md5 = ci.json("models/champion.json")["md5"]
    assert f"files/md5/{md5[:2]}/{md5[2:]}" in remote_files(remote)
    report = (ci.path / "reports/job.md").read_text()
    assert "# Decision as of 2025-03" in report and "| roc auc |" in report
    page = (ci.path / "reports/report.html").read_text()  # the run that promoted, then the new champion
    assert '<span class="badge promoted">promoted v1.0.0</span>' in page
    assert "After the promotion: v1.0.0 on this batch" in page and "no record of the run" not in page
    assert "Verdict: **promoted**: no champion yet" in report  # the decision that promoted
    assert "In production after this job: v1.0.0" in report

    state = origin_state(origin)
    job(ci)  # no new data: nothing to do
    assert origin_state(origin) == state

    ci.retrain("simulate")  # 2025-04, a new batch
    ci.commit_all("Batch 2025-04")
    job(ci)
    log = Repo(origin).git("log", "--format=%s", "-3")
    assert "Evaluate batch 2025-04" in log or "churn-model" in log

    fresh = clone(origin, tmp_path / "fresh")
    out = fresh.retrain("fetch", "--stage", "prod", "-o", "deploy")
    version = fresh.json("models/champion.json")["version"]
    assert version in out.stdout
    fetched = (fresh.path / "deploy/model.skops").read_bytes()
    assert hashlib.md5(fetched).hexdigest() == fresh.json("models/champion.json")["md5"]


def test_schema_breaking_batch_fails_the_job_and_publishes_nothing(published):
    origin, remote, ci = published
    for _ in range(2):
        ci.retrain("simulate")  # 2025-04, 2025-05 fine
    ci.retrain("simulate")  # 2025-06: senior_citizen as text
    ci.commit_all("three more batches")
    state, files = origin_state(origin), remote_files(remote)
    summary = ci.path.parent / "summary.md"
    out = job(ci, check=False, GITHUB_STEP_SUMMARY=summary)
    assert out.returncode != 0
    assert "error: data/raw/2025-06.csv: column 'senior_citizen'" in out.stderr
    assert "The retraining job failed at: dvc repro" in summary.read_text()
    assert origin_state(origin) == state and remote_files(remote) == files


def test_pull_request_mode_reports_without_promoting_or_pushing(setup):
    origin, remote, ci = setup
    state = origin_state(origin)
    job(ci, RETRAIN_PROMOTE=0)
    assert json.loads((ci.path / "reports/promotion.json").read_text())["promote"]
    assert ci.json("models/champion.json")["version"] is None
    assert ci.tags() == [] and origin_state(origin) == state and remote_files(remote) == set()
    assert (ci.path / "reports/job.md").exists()


def test_a_challenger_that_loses_is_held_and_the_hold_is_published(published):
    origin, remote, ci = published  # v1.0.0 in production
    ci.set_params({"decide": {"performance": {"threshold": 0.99}}, "compare": {"min_improvement": 0.5}})
    ci.retrain("simulate")  # 2025-04: retrain, challenger loses
    ci.commit_all("Batch 2025-04, stricter thresholds")
    out = job(ci)
    assert "held churn-model v1.0.0 in prod as of 2025-04" in out.stdout
    pointer = json.loads(Repo(origin).git("show", "main:models/champion.json"))
    assert pointer["version"] == "v1.0.0" and pointer["baseline"]["as_of"] == "2025-04"
    decision = ci.json("reports/decision.json")  # judged against the held score
    assert not decision["retrain"], decision["reason"]
    assert "Evaluate batch 2025-04" in Repo(origin).git("log", "--format=%s", "-1")
    state = origin_state(origin)
    job(ci)  # nothing new: nothing published
    assert origin_state(origin) == state


def test_a_push_to_origin_during_the_job_is_met_by_an_atomic_rerun(setup, tmp_path):
    """Another commit lands on origin while the job runs (from the job's pre-push hook, so it
    lands after the job decided and before it pushed): the atomic push is rejected whole, the
    job drops its commits and tags, runs again on the new head and publishes once; a fresh
    clone's readers all name the published version, and every tag names a commit of main."""
    origin, remote, ci = setup
    other = clone(origin, tmp_path / "other")
    marker = tmp_path / "raced"
    hook = ci.path / ".git/hooks/pre-push"
    hook.write_text(f"""#!/bin/sh
if [ ! -e {marker} ]; then
  touch {marker}
  (unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE; cd {other.path} &&
   git commit -q --allow-empty -m "a teammate's commit" && git push -q origin main)
fi
""")
    hook.chmod(0o755)
    out = job(ci)
    assert marker.exists() and "origin's main moved during the job" in out.stderr
    log = Repo(origin).git("log", "--format=%s", "main").splitlines()
    assert "a teammate's commit" in log
    tags = Repo(origin).git("tag", "--list").split()
    assert sorted(t for t in tags if "@" in t) == ["churn-model@v1.0.0"]
    for tag in tags:
        commit = Repo(origin).git("rev-list", "-n1", tag)
        ancestor = Repo(origin).run("git", "merge-base", "--is-ancestor", commit, "main", check=False)
        assert ancestor.returncode == 0, tag
    fresh = clone(origin, tmp_path / "fresh")
    assert "ok: every reader names churn-model v1.0.0" in fresh.retrain("verify").stdout
    shown = json.loads(fresh.run("gto", "show", "--json").stdout)["churn-model"]["stage"]["prod"]
    assert shown == "v1.0.0" == fresh.json("models/champion.json")["version"]


def test_a_push_rejected_while_origin_stands_still_fails_and_retries_nothing(setup):
    origin, remote, ci = setup
    hook = ci.path / ".git/hooks/pre-push"
    hook.write_text("#!/bin/sh\nexit 1\n")
    hook.chmod(0o755)
    state = origin_state(origin)
    out = job(ci, check=False)
    assert out.returncode == 1 and "the push was rejected (attempt 1 of 3)" in out.stderr
    assert origin_state(origin) == state


def test_behind_branch_protection_a_pull_request_carries_the_model_and_its_tags_wait_for_the_merge(
    setup, tmp_path
):
    """RETRAIN_PUSH=pull-request: main and the tags stay as they were; the run's commits go to a
    branch and its tags to pending refs no reader sees. After a merge commit, the next job on
    main publishes the tags, and every reader of a fresh clone names the new version."""
    origin, remote, ci = setup
    main_before = Repo(origin).git("rev-parse", "main")
    out = job(ci, RETRAIN_PUSH="pull-request")
    assert "pushed retrain/2025-03 with the pending tags" in out.stdout
    refs = origin_state(origin)
    assert "refs/heads/retrain/2025-03" in refs and "refs/retrain/pending/2025-03/churn-model@v1.0.0" in refs
    assert "refs/tags/" not in refs and Repo(origin).git("rev-parse", "main") == main_before

    waiting = clone(origin, tmp_path / "waiting")
    assert "no model of churn-model is in production" in waiting.retrain("verify").stdout
    out = job(waiting, RETRAIN_PUSH="pull-request")
    assert "A pull request with churn-model@v1.0.0" in out.stdout and "awaits review" in out.stdout
    assert origin_state(origin) == refs

    merge_with_a_merge_commit(origin, tmp_path / "reviewer", "retrain/2025-03", "Merge the model of 2025-03")

    after_merge = clone(origin, tmp_path / "after-merge")
    out = job(after_merge, RETRAIN_PUSH="pull-request")
    assert "published churn-model" in out.stdout and "churn-model@v1.0.0" in out.stdout
    refs = origin_state(origin)
    assert "refs/retrain/pending/" not in refs and "refs/tags/churn-model@v1.0.0" in refs
    for tag in Repo(origin).git("tag", "--list").split():
        commit = Repo(origin).git("rev-list", "-n1", tag)
        assert (
            Repo(origin).run("git", "merge-base", "--is-ancestor", commit, "main", check=False).returncode
            == 0
        )
    reader = clone(origin, tmp_path / "reader")
    assert "ok: every reader names churn-model v1.0.0" in reader.retrain("verify").stdout
    shown = json.loads(reader.run("gto", "show", "--json").stdout)["churn-model"]["stage"]["prod"]
    assert shown == "v1.0.0" == reader.json("models/champion.json")["version"]

    # A closed pull request (its branch gone, its commit not on main) and a squash-merged one
    # (main has its pointer but not its commit): both pending tags are dropped, never
    # published, and the job stops at retrain verify saying how to merge instead.
    for version, period in (("v9.0.0", "2099-01"), ("v9.1.0", "2099-02")):
        reader.git("checkout", "-q", "-b", period, "main")
        if version == "v9.1.0":
            pointer = reader.json("models/champion.json")
            (reader.path / "models/champion.json").write_text(json.dumps({**pointer, "version": version}))
        reader.git("commit", "-q", "-a", "--allow-empty", "-m", f"the model {version}")
        reader.git("tag", "-a", "-m", version, f"churn-model@{version}")
        reader.git(
            "push",
            "-q",
            "origin",
            f"refs/tags/churn-model@{version}:refs/retrain/pending/{period}/churn-model@{version}",
        )
        reader.git("tag", "-d", f"churn-model@{version}")
    reader.git("checkout", "-q", "main")
    reader.git("merge", "-q", "--squash", "2099-02")
    reader.git("commit", "-q", "-m", "Squash the model of 2099-02")
    reader.git("push", "-q", "origin", "main")
    out = job(clone(origin, tmp_path / "after-squash"), check=False, RETRAIN_PUSH="pull-request")
    assert out.returncode == 1
    assert "dropping the pending tag churn-model@v9.0.0: the branch retrain/2099-01 is gone" in out.stderr
    assert "merged without a merge commit (squash or rebase)" in out.stderr and "v9.1.0" in out.stderr
    refs = origin_state(origin)
    assert "refs/retrain/pending/" not in refs and "v9." not in refs


def test_a_relative_remote_url_is_refused_before_any_work(setup):
    """DVC resolves a relative url from / when it pushes tagged commits (`dvc push --all-tags`
    wrote ../dvc-remote to /dvc-remote): the job refuses it before it does anything."""
    origin, remote, ci = setup
    ci.run("dvc", "remote", "modify", "--local", "storage", "url", "../dvc-remote")
    state = origin_state(origin)
    out = job(ci, check=False)
    assert out.returncode == 1
    assert "the DVC remote 'storage' has the relative url '../../dvc-remote'" in out.stderr
    assert "dvc repro" not in out.stdout + out.stderr and not (ci.path / "reports/decision.json").exists()
    assert origin_state(origin) == state and remote_files(remote) == set()
