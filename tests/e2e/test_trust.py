"""The chain of trust, end to end: the version tag is the root, every reader checks against it."""

import hashlib
import json
import pickle
import shutil

import pytest

from tests.helpers import ALWAYS_PROMOTE, Repo

pytestmark = pytest.mark.e2e

READERS = [
    ("verify",),
    ("predict", "data/raw/2025-01.csv", "-o", "never-written.csv"),
    ("fetch", "--stage", "prod", "-o", "fetched"),
    ("history",),
    ("promote",),
]


@pytest.fixture(scope="module")
def pending(first_runs, tmp_path_factory):
    """v1.0.0 then v1.1.0 promoted, and a third challenger whose verdict is to promote."""
    repo = first_runs.copy(tmp_path_factory.mktemp("trust") / "repo", ALWAYS_PROMOTE)
    for _ in range(2):
        repo.next_month()
        repo.repro()
    assert "v1.1.0" in repo.retrain("promote").stdout
    repo.next_month()
    repo.repro()
    assert repo.json("reports/promotion.json")["promote"]
    return repo.path


@pytest.fixture
def repo(pending, tmp_path):
    target = tmp_path / "repo"
    shutil.copytree(pending, target, symlinks=True)
    return Repo(target)


def refused_by_every_reader(repo: Repo, expected: str) -> None:
    """Each command that reads the champion stops with one line saying `expected`."""
    state = (repo.git("rev-parse", "HEAD"), repo.tags(), repo.git("status", "--porcelain"))
    for command in READERS:
        out = repo.retrain(*command, check=False)
        assert out.returncode != 0 and out.stderr.count("\n") == 1, (command, out.stderr)
        assert expected in out.stderr, (command, out.stderr)
    stage = repo.run("dvc", "repro", "-f", "-s", "evaluate", check=False)
    assert stage.returncode != 0 and expected in stage.stderr + stage.stdout
    assert (repo.git("rev-parse", "HEAD"), repo.tags()) == state[:2]
    assert not (repo.path / "fetched").exists()


def plant(repo: Repo, marker) -> None:
    """An attacker swaps the cached model file and edits the pointer's md5 to match it."""

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    pointer = repo.json("models/champion.json")
    cached = repo.path / ".dvc/cache/files/md5" / pointer["md5"][:2] / pointer["md5"][2:]
    cached.chmod(0o644)
    cached.write_bytes(pickle.dumps(Exploit()))
    pointer["md5"] = hashlib.md5(cached.read_bytes()).hexdigest()
    (repo.path / "models/champion.json").write_text(json.dumps(pointer, indent=2) + "\n")
    repo.commit_all("innocent-looking change")


def test_a_planted_model_with_a_matching_pointer_is_never_executed(repo, tmp_path):
    marker = tmp_path / "pwned"
    plant(repo, marker)
    refused_by_every_reader(repo, "but tag churn-model@v1.1.0 records")
    assert not marker.exists()
    out = repo.retrain("rollback", "--to", "v1.1.0", "--reason", "repair", check=False)
    assert out.returncode != 0 and "does not match" in out.stderr and not marker.exists()
    repo.retrain("rollback", "--to", "v1.0.0", "--reason", "the v1.1.0 file was tampered with")
    assert "ok: every reader names churn-model v1.0.0" in repo.retrain("verify").stdout
    assert not marker.exists()


def test_a_side_file_changed_in_the_cache_is_refused(repo):
    tag = json.loads(repo.git("tag", "-l", "--format=%(contents:body)", "churn-model@v1.1.0"))
    md5 = tag["files"]["metadata.json"]
    cached = repo.path / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    cached.chmod(0o644)
    text = json.loads(cached.read_text())
    text["trained_until"] = "2099-01-01 00:00:00"
    cached.write_text(json.dumps(text))
    out = repo.retrain("verify", check=False)
    assert out.returncode == 1 and "metadata.json at" in out.stderr and "does not match" in out.stderr


@pytest.mark.parametrize("change", ["gto assign", "deleted stage tag"])
def test_a_stage_change_outside_retrain_stops_every_reader_until_repaired(repo, change):
    if change == "gto assign":
        repo.run("gto", "assign", "churn-model", "--version", "v1.0.0", "--stage", "prod")
        refused_by_every_reader(repo, "put v1.1.0 and v1.0.0 in prod")
    else:
        last = max((t for t in repo.tags() if "#prod#" in t), key=lambda t: int(t.rsplit("#")[-1]))
        repo.git("tag", "-d", last)
        refused_by_every_reader(repo, "the stage tags (gto show) put no version in prod")
    repo.retrain("rollback", "--to", "v1.1.0", "--reason", "restore what the pointer says")
    assert "ok: every reader names churn-model v1.1.0" in repo.retrain("verify").stdout
    shown = json.loads(repo.run("gto", "show", "--json").stdout)["churn-model"]["stage"]["prod"]
    assert shown == "v1.1.0"


def test_a_deleted_version_tag_of_the_champion_is_named(repo):
    repo.git("tag", "-d", "churn-model@v1.1.0")
    refused_by_every_reader(repo, "but no tag churn-model@v1.1.0 records it (known: v1.0.0)")


def test_a_moved_version_tag_is_named(repo):
    body = repo.git("tag", "-l", "--format=%(contents)", "churn-model@v1.1.0")
    repo.git("tag", "-f", "-a", "churn-model@v1.1.0", "HEAD", "-m", body)
    refused_by_every_reader(repo, "the tag was moved")


def test_a_clone_without_tags_refuses_until_they_are_fetched(repo, tmp_path):
    clone = Repo(tmp_path / "clone")
    repo.run("git", "clone", "-q", "--no-tags", str(repo.path), str(clone.path))
    clone.run("dvc", "config", "--local", "cache.dir", str(repo.path / ".dvc/cache"))
    clone.run("dvc", "checkout", "-q", check=False)
    out = clone.retrain("verify", check=False)
    assert out.returncode == 1 and "this clone has no version tags" in out.stderr
    assert "git fetch --tags" in out.stderr
    clone.git("fetch", "-q", "--tags")
    assert "ok: every reader names churn-model v1.1.0" in clone.retrain("verify").stdout


def test_a_version_number_is_never_issued_twice_even_with_tags_deleted(repo):
    for tag in repo.tags():
        repo.git("tag", "-d", tag)
    first = repo.git("rev-list", "--max-parents=0", "HEAD")
    repo.git("checkout", first, "--", "models/champion.json")
    repo.commit_all("start the registry again")
    repo.repro()
    out = repo.retrain("promote")
    assert "promoted churn-model v1.2.0" in out.stdout, out.stdout


def test_promote_and_rollback_refuse_a_detached_head(repo):
    repo.git("checkout", "-q", "--detach")
    for command in (("promote",), ("rollback", "--to", "v1.0.0", "--reason", "x")):
        out = repo.retrain(*command, check=False)
        assert out.returncode != 0 and "HEAD is detached" in out.stderr
    assert "churn-model@v1.2.0" not in repo.tags()


def test_queued_experiments_read_the_tags_of_the_repository_they_came_from(repo):
    out = repo.run("dvc", "exp", "run", "--queue", "-f", "-S", "decide.age.max_batches=5")
    assert "Queued experiment" in out.stdout
    repo.run("dvc", "exp", "run", "--run-all")
    shown = json.loads(repo.run("dvc", "exp", "show", "--json").stdout)
    experiments = [e for row in shown for e in (row.get("experiments") or [])]
    assert len(experiments) == 1
    evaluation = json.loads(repo.git("show", f"{experiments[0]['revs'][0]['rev']}:reports/evaluation.json"))
    assert evaluation["champion"]["version"] == "v1.1.0"
