"""A default DVC remote from the first command: README's flow in one clone, then a second clone
fetches the champion and runs the job on the next batch with no DVC step by hand; a rollback
pins production against the job."""

import hashlib

import pytest

from tests.helpers import ALWAYS_PROMOTE, ROOT, Repo

pytestmark = pytest.mark.e2e


def with_job(repo: Repo) -> Repo:
    (repo.path / ".ci").mkdir(exist_ok=True)
    (repo.path / ".ci/retrain").write_bytes((ROOT / ".ci/retrain").read_bytes())
    repo.commit_all("the job")
    return repo


def job(repo: Repo, push: str):
    return repo.run("bash", ".ci/retrain", env={"RETRAIN_PUSH": push})


def test_readme_flow_pushes_the_first_model_and_a_second_clone_carries_on(make_repo, tmp_path):
    first = with_job(make_repo(ALWAYS_PROMOTE))
    first.retrain("simulate", "--months", "3")
    first.commit_all("three months")
    said = first.retrain("init-remote").stdout
    storage = first.path.parent / f"{first.path.name}.dvc-storage"
    assert f"'storage' ({storage})" in said and storage.is_dir()
    assert "nothing changed" in first.retrain("init-remote").stdout
    first.repro()
    out = job(first, "models")
    assert "promoted churn-model v1.0.0" in out.stdout
    assert first.run("dvc", "status", "--quiet", check=False).returncode == 0
    assert first.git("status", "--porcelain") == ""
    md5 = first.json("models/champion.json")["md5"]
    assert (storage / "files/md5" / md5[:2] / md5[2:]).exists()

    second = Repo(tmp_path / "second")
    first.run("git", "clone", "-q", str(first.path), str(second.path))
    fetched = second.retrain("fetch", "--stage", "prod", "-o", "deploy")
    assert "v1.0.0" in fetched.stdout
    assert hashlib.md5((second.path / "deploy/model.skops").read_bytes()).hexdigest() == md5
    second.retrain("simulate")  # 2025-04
    second.commit_all("Batch 2025-04")
    out = job(second, "0")
    assert "promoted churn-model v1.1.0" in out.stdout
    assert second.json("reports/evaluation.json")["champion"]["version"] == "v1.1.0"

    rolled = second.retrain("rollback", "--previous", "--reason", "sales complained")
    assert "pinned there until 'retrain unpin'" in rolled.stdout
    job(second, "0")  # nothing new; the same bytes again
    verdict = second.json("reports/promotion.json")
    assert not verdict["promote"] and "pinned to v1.0.0" in verdict["reason"]
    assert "pinned to v1.0.0" in (second.path / "reports/job.md").read_text()
    assert second.json("models/champion.json")["version"] == "v1.0.0"
