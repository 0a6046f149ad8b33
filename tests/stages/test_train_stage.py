"""The train stage's contract with compare when no model can be trained."""

import shutil

from retrain.data.files import read_json, read_parquet, write_parquet
from tests.helpers import run_stages


def test_training_rows_of_one_label_give_no_challenger_and_compare_keeps_the_champion(
    cold_start_repo, params, tmp_path
):
    repo = tmp_path / "repo"
    shutil.copytree(cold_start_repo.path, repo, symlinks=True)
    target, negative = params["schema"]["target"], params["schema"]["negative"]
    train = read_parquet(repo / "data/prepared/train.parquet")
    write_parquet(repo / "data/prepared/train.parquet", train.assign(**{target: train[target] * 0}))
    assert read_json(repo / "reports/decision.json")["retrain"]
    run_stages(repo, ["train", "compare"])
    metadata = read_json(repo / "models/challenger/metadata.json")
    assert metadata["trained"] is False
    assert f"the {len(train)} training row(s)" in metadata["reason"] and repr(negative) in metadata["reason"]
    assert not (repo / "models/challenger/model.skops").exists()
    verdict = read_json(repo / "reports/promotion.json")
    assert not verdict["promote"] and verdict["challenger"] is None
    assert verdict["reason"] == f"no challenger was trained: {metadata['reason']}"
