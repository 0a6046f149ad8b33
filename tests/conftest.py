from __future__ import annotations

import shutil

import pytest
import yaml

from retrain.io import write_json
from retrain.registry import empty_pointer
from retrain.schema import CleaningPolicy, Schema, validate_batch
from tests.helpers import PROJECT_DIRS, PROJECT_FILES, ROOT, TOY, Repo, toy_raw


@pytest.fixture(scope="session")
def params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture(scope="session")
def demo_schema(params) -> Schema:
    return Schema.from_params(params["schema"])


@pytest.fixture
def toy_schema() -> Schema:
    """A dataset that shares no column name with the demo data."""
    return Schema.from_params(TOY)


@pytest.fixture
def toy_batch(toy_schema):
    def make(period: str, **kwargs):
        return validate_batch(toy_raw(period, **kwargs), f"data/raw/{period}.csv", toy_schema,
                              CleaningPolicy())
    return make


@pytest.fixture
def make_repo(tmp_path):
    def make(params: dict | None = None, name: str = "repo") -> Repo:
        path = tmp_path / name
        path.mkdir()
        for rel in PROJECT_FILES:
            (path / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, path / rel)
        for rel in PROJECT_DIRS:
            shutil.copytree(ROOT / rel, path / rel,
                            ignore=shutil.ignore_patterns("__pycache__"))
        (path / "data/raw").mkdir(parents=True)
        write_json(path / "models/champion.json", empty_pointer("churn-model"))
        repo = Repo(path)
        if params:
            repo.set_params(params)
        repo.git("init", "-q", "-b", "main")
        repo.run("dvc", "init", "-q")
        repo.run("dvc", "config", "core.analytics", "false")
        return repo
    return make
