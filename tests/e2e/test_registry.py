"""The model registry in git tags, end to end: promote, rollback, history, fetch, agreement."""

import hashlib
import json

import pytest

from tests.helpers import ALWAYS_PROMOTE, Repo

pytestmark = pytest.mark.e2e


def readers(repo: Repo, tmp_path, label: str) -> dict:
    """Which version each reader of the registry says is in production."""
    pointer = repo.json("models/champion.json")
    gto_cli = json.loads(repo.run("gto", "show", "--json").stdout)["churn-model"]["stage"]["prod"]
    api = repo.run(
        "python",
        "-c",
        "import gto.api as g; print(g.find_versions_in_stage('.', 'churn-model', 'prod')[0].version)",
    ).stdout.strip()
    out = tmp_path / f"artifact-{label}" / "model.skops"
    repo.run("dvc", "artifacts", "get", ".", "churn-model", "--stage", "prod", "-o", str(out))
    by_md5 = {
        json.loads(repo.git("tag", "-l", "--format=%(contents:body)", t))["md5"]: t
        for t in repo.tags()
        if "@" in t
    }
    dvc_artifacts = by_md5[hashlib.md5(out.read_bytes()).hexdigest()].split("@")[1]
    return {
        "pointer": pointer["version"],
        "gto show": gto_cli,
        "gto api": api,
        "dvc artifacts get": dvc_artifacts,
    }


def month(repo: Repo, message: str) -> None:
    repo.retrain("simulate")
    repo.commit_all(message)
    repo.repro()


def test_promote_three_rollback_promote_again_and_every_reader_agrees(first_run_repo, tmp_path):
    repo = first_run_repo(ALWAYS_PROMOTE)
    assert repo.json("models/champion.json")["version"] == "v1.0.0"
    repo.run("dvc", "remote", "add", "-d", "local", str(tmp_path / "remote"))
    repo.commit_all("a DVC remote")
    for period in ["2025-04", "2025-05"]:
        month(repo, period)
        repo.retrain("promote")
    assert repo.json("models/champion.json")["version"] == "v1.2.0"
    assert set(readers(repo, tmp_path, "v3").values()) == {"v1.2.0"}

    out = repo.retrain("rollback", "--to", "v1.1.0", "--reason", "complaints from sales")
    assert "from v1.2.0 to v1.1.0" in out.stdout
    assert set(readers(repo, tmp_path, "rollback").values()) == {"v1.1.0"}
    pointer = repo.json("models/champion.json")
    assert pointer["action"] == "rollback" and "complaints from sales" in pointer["reason"]
    assert pointer["commit"] == repo.git("rev-list", "-n1", "churn-model@v1.1.0")
    assert pointer["pinned"]["reason"] == "complaints from sales"
    assert pointer["rolled_back"][0]["version"] == "v1.2.0"
    repo.repro()
    assert repo.json("reports/evaluation.json")["champion"]["version"] == "v1.1.0"
    verdict = repo.json("reports/promotion.json")
    assert verdict["locked"] and not verdict["promote"] and "pinned to v1.1.0" in verdict["reason"]
    refused = repo.retrain("promote", check=False)
    assert refused.returncode == 3 and "pinned" in refused.stderr
    repo.commit_all("evaluate the rolled-back model")

    assert "unpinned churn-model v1.1.0" in repo.retrain("unpin", "--reason", "reviewed").stdout
    assert "pinned" not in repo.json("models/champion.json")
    repo.repro()  # the same data: the challenger is v1.2.0's bytes again
    verdict = repo.json("reports/promotion.json")
    assert verdict["locked"] and "bytes are those of v1.2.0" in verdict["reason"]
    assert verdict["challenger_md5"] == repo.json("models/champion.json")["rolled_back"][0]["md5"]
    repo.commit_all("evaluate again")
    again = repo.retrain("unpin", "--reason", "twice", check=False)
    assert again.returncode == 3 and "is not pinned" in again.stderr

    month(repo, "2025-06")
    assert "v1.3.0" in repo.retrain("promote").stdout
    assert set(readers(repo, tmp_path, "after").values()) == {"v1.3.0"}

    history = json.loads(repo.retrain("history", "--json").stdout)
    story = [(e["version"], e["action"], e["as_of"]) for e in history["events"]]
    assert story == [
        ("v1.0.0", "promote", "2025-03"),
        ("v1.1.0", "promote", "2025-04"),
        ("v1.2.0", "promote", "2025-05"),
        ("v1.1.0", "rollback", "2025-05"),
        ("v1.1.0", "unpin", "2025-05"),
        ("v1.3.0", "promote", "2025-06"),
    ]
    assert history["production"] == "v1.3.0"
    assert history["events"][1]["window"] == ["2025-04"] and history["events"][1]["rows"] > 0
    text = repo.retrain("history").stdout
    assert text.splitlines()[-1].startswith("*") and "v1.3.0" in text.splitlines()[-1]
    expected = {
        "2025-01": None,
        "2025-03": None,
        "2025-04": "v1.0.0",
        "2025-05": "v1.1.0",
        "2025-06": "v1.1.0",
        "2025-07": "v1.3.0",
        "2026-01": "v1.3.0",
    }
    for period, version in expected.items():
        answer = json.loads(repo.retrain("history", "--at", period, "--json").stdout)
        assert answer["version"] == version, period

    previous = repo.retrain("rollback", "--previous", "--reason", "drill")
    assert "to v1.1.0" in previous.stdout
    assert set(readers(repo, tmp_path, "previous").values()) == {"v1.1.0"}

    repo.run("dvc", "push", "--all-commits")
    clone = Repo(tmp_path / "clone")
    repo.run("git", "clone", "-q", str(repo.path), str(clone.path))
    fetched = clone.retrain("fetch", "--stage", "prod", "-o", "deploy")
    assert "v1.1.0" in fetched.stdout
    expected_md5 = repo.json("models/champion.json")["md5"]
    assert hashlib.md5((clone.path / "deploy/model.skops").read_bytes()).hexdigest() == expected_md5
    assert json.loads((clone.path / "deploy/version.json").read_text())["version"] == "v1.1.0"


def test_rollback_refuses_unknown_versions_and_needs_a_reason(first_run_repo):
    repo = first_run_repo(ALWAYS_PROMOTE)
    before = (repo.git("rev-parse", "HEAD"), repo.tags())
    out = repo.retrain("rollback", "--to", "v9.0.0", "--reason", "x", check=False)
    assert out.returncode == 3 and "no version v9.0.0 of churn-model (known: v1.0.0)" in out.stderr
    out = repo.retrain("rollback", "--to", "v1.0.0", check=False)
    assert out.returncode == 2 and "--reason" in out.stderr
    out = repo.retrain("rollback", "--previous", "--reason", "x", check=False)
    assert out.returncode == 3 and "no version was in production before v1.0.0" in out.stderr
    assert (repo.git("rev-parse", "HEAD"), repo.tags()) == before


def test_promote_ignores_files_a_user_left_untracked_but_not_edits_to_committed_files(first_run_repo):
    repo = first_run_repo(ALWAYS_PROMOTE, promote=False)
    (repo.path / "scored.csv").write_text("customer_id,probability\n1,0.5\n")
    (repo.path / "dvc_plots").mkdir()
    (repo.path / "dvc_plots/index.html").write_text("<html></html>")
    readme = repo.path / "README.md"
    readme.write_text("edited\n")
    repo.git("add", "README.md")
    repo.git("commit", "-q", "-m", "a readme")
    readme.write_text("edited again\n")
    refused = repo.retrain("promote", check=False)
    assert refused.returncode == 3
    assert "changes to committed files beyond the pipeline's outputs: README.md" in refused.stderr
    repo.git("checkout", "--", "README.md")
    assert "promoted churn-model v1.0.0" in repo.retrain("promote").stdout
    assert (repo.path / "scored.csv").exists()
    assert "scored.csv" not in repo.git("show", "--stat", "HEAD~1")
    assert repo.git("status", "--porcelain", "--", "dvc_plots") == ""  # ignored
