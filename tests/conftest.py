from __future__ import annotations

import os

# Test workers share the machine's cores (pytest -n auto, one per core): one OpenMP thread each, set
# before scikit-learn is imported, and inherited by every dvc and stage process a test starts.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RETRAIN_THREADS", "1")

import pytest  # noqa: E402
import yaml  # noqa: E402

from retrain.data.schema import CleaningPolicy, Schema, validate_batch
from tests.helpers import ROOT, TOY, FirstRuns, Repo, create_repo, run, run_stages, toy_raw


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: one worker per core and one more, since the end-to-end tests spend part of
    their time waiting on git, DVC's locks and servers (on two cores: 660 s against 709 s)."""
    return len(os.sched_getaffinity(0)) + 1


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
        return validate_batch(
            toy_raw(period, **kwargs), f"data/raw/{period}.csv", toy_schema, CleaningPolicy()
        )

    return make


@pytest.fixture
def make_repo(tmp_path):
    def make(params: dict | None = None, name: str = "repo") -> Repo:
        return create_repo(tmp_path / name, params)

    return make


@pytest.fixture(scope="session")
def first_runs(tmp_path_factory, worker_id) -> FirstRuns:
    """Built first runs shared by this session's workers (their common temporary folder)."""
    base = tmp_path_factory.getbasetemp()
    return FirstRuns((base if worker_id == "master" else base.parent) / "first-runs")


@pytest.fixture
def first_run_repo(first_runs, tmp_path):
    """A repository of this test's own after `first_run`: `first_run_repo(params, months, promote)`."""

    def make(params: dict | None = None, months: int = 3, promote: bool = True) -> Repo:
        return first_runs.copy(tmp_path / "repo", params, months, promote)

    return make


@pytest.fixture(scope="session")
def cold_start_repo(tmp_path_factory) -> Repo:
    """A folder (git, no DVC) after every stage of one cold start on three simulated months,
    run in this process: every stage did all its work. Tests that change it work on a copy."""
    import shutil

    from retrain.data.files import write_json
    from retrain.registry.champion import empty_pointer

    path = tmp_path_factory.mktemp("cold-start") / "repo"
    path.mkdir()
    for rel in ["dvc.yaml", "params.yaml", "data/source/wa_churn.parquet"]:
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, path / rel)
    shutil.copytree(ROOT / "stages", path / "stages")
    write_json(path / "models/champion.json", empty_pointer("churn-model"))
    run(["git", "init", "-q"], path)
    run(["retrain", "simulate", "--months", "3"], path)
    run_stages(path, list(yaml.safe_load((path / "dvc.yaml").read_text())["stages"]))
    return Repo(path)
