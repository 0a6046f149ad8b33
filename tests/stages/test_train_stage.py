"""The train stage's contract with compare when no model can be trained or judged."""

import shutil

import pytest

from retrain.data.files import read_json, read_parquet, write_parquet
from tests.helpers import Repo, run_stages


@pytest.fixture
def repo(cold_start_repo, tmp_path):
    """A copy of the cold-start folder, whose decision asks for a challenger."""
    shutil.copytree(cold_start_repo.path, tmp_path / "repo", symlinks=True)
    assert read_json(tmp_path / "repo/reports/decision.json")["retrain"]
    return Repo(tmp_path / "repo")


def test_training_rows_of_one_label_give_no_challenger_and_compare_keeps_the_champion(repo, params):
    target, negative = params["schema"]["target"], params["schema"]["negative"]
    train = read_parquet(repo.path / "data/prepared/train.parquet")
    write_parquet(repo.path / "data/prepared/train.parquet", train.assign(**{target: train[target] * 0}))
    run_stages(repo.path, ["train", "compare"])
    metadata = repo.json("models/challenger/metadata.json")
    assert metadata["trained"] is False
    assert f"the {len(train)} training row(s)" in metadata["reason"] and repr(negative) in metadata["reason"]
    assert not (repo.path / "models/challenger/model.skops").exists()
    verdict = repo.json("reports/promotion.json")
    assert not verdict["promote"] and verdict["challenger"] is None
    assert verdict["reason"] == f"no challenger was trained: {metadata['reason']}"


def test_a_holdout_too_small_for_compare_to_judge_gives_no_challenger(repo):
    rows = len(read_parquet(repo.path / "data/prepared/holdout.parquet"))
    repo.set_params({"compare": {"min_holdout_rows": rows + 1}})
    run_stages(repo.path, ["train", "compare"])
    metadata = repo.json("models/challenger/metadata.json")
    expected = f"undecided: the holdout has {rows} rows, fewer than compare.min_holdout_rows ({rows + 1}); "
    assert metadata["trained"] is False and metadata["reason"].startswith(expected)
    assert "once the newest labelled batch's holdout" in metadata["reason"]
    assert repo.json("reports/promotion.json")["reason"] == f"no challenger was trained: {metadata['reason']}"
