"""Shared test helpers: a toy dataset and temporary git + DVC repositories."""

import contextlib
import fcntl
import hashlib
import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = str(Path(sys.executable).parent)


TOY = {
    "id": "key",
    "time": "ts",
    "period": "M",
    "target": "label",
    "positive": "1",
    "negative": "0",
    "numeric": ["x1", "x2"],
    "categorical": ["colour"],
}

# Params under which every challenger is promoted: one-batch windows, no improvement needed.
ALWAYS_PROMOTE = {
    "prepare": {"window": "last_n", "window_batches": 1, "holdout_fraction": 0.5},
    "decide": {"performance": {"threshold": 0.99}},
    "compare": {"min_improvement": -1.0, "minimums": {"roc_auc": 0.5}, "guards": {"brier": 1.0}},
    "simulate": {"rows_per_batch": 300, "scenarios": []},
}


def toy_raw(
    period: str, n: int = 200, seed: int = 0, labelled: bool = True, shift: float = 0.0, freq: str = "M"
) -> pd.DataFrame:
    """A raw (text) batch of the toy dataset whose label depends on x1 and colour, dated within
    the first 28 days of its period (or the whole period when shorter: a week)."""
    rng = np.random.default_rng(seed)
    span = pd.Period(period, freq=freq)
    start, days = span.start_time, min(28, (span.end_time - span.start_time).days + 1)
    x1 = rng.normal(shift, 1, n)
    colour = rng.choice(["red", "green", "blue"], n)
    logit = 1.5 * x1 + (colour == "red") * 1.0 - 0.5
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(
        {
            "key": [f"{period}-{i}" for i in range(n)],
            "ts": (start + pd.to_timedelta(rng.integers(0, days, n), unit="D")).strftime("%Y-%m-%d"),
            "x1": x1.round(4).astype(str),
            "x2": rng.integers(0, 100, n).astype(str),
            "colour": colour,
            "label": label.astype(str) if labelled else "",
        }
    )
    return frame


# --- temporary git + dvc repositories ------------------------------------------------------

PROJECT_FILES = [
    "dvc.yaml",
    "params.yaml",
    ".gitignore",
    "models/champion.json",
    "data/source/wa_churn.parquet",
]
PROJECT_DIRS = ["stages", "src/retrain"]


def command_env(extra: dict | None = None) -> dict:
    """The environment of every command a test runs: this venv first, a git identity."""
    return {
        **os.environ,
        "PATH": BIN + os.pathsep + os.environ.get("PATH", ""),
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "t@e.st",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "t@e.st",
        **(extra or {}),
    }


def run(
    cmd: list[str], cwd: Path, check: bool = True, env: dict | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=command_env(env), timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
        )
    return proc


def deep_update(base: dict, changes: dict) -> dict:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


class Repo:
    """A temporary copy of the project as a fresh git + DVC repository."""

    def __init__(self, path: Path):
        self.path = path

    def run(self, *cmd: str, check: bool = True, env: dict | None = None):
        return run(list(cmd), self.path, check=check, env=env)

    def retrain(self, *args: str, check: bool = True):
        return self.run("retrain", *args, check=check)

    def repro(self, *args: str) -> str:
        return self.run("dvc", "repro", *args).stdout

    def git(self, *args: str, check: bool = True) -> str:
        return self.run("git", *args, check=check).stdout.strip()

    def commit_all(self, message: str) -> None:
        self.git("add", "-A")
        if self.git("status", "--porcelain"):
            self.git("commit", "-q", "-m", message)

    def first_run(self, months: int = 3, promote: bool = True) -> None:
        """Simulate `months` batches, commit, `dvc repro` and promote the first model."""
        self.retrain("simulate", "--months", str(months))
        self.commit_all(f"{months} months of data")
        self.repro()
        if promote:
            self.retrain("promote")

    def next_month(self) -> None:
        """Simulate and commit the batch after the newest one."""
        self.retrain("simulate")
        self.commit_all("the next month")

    def set_params(self, changes: dict) -> None:
        path = self.path / "params.yaml"
        path.write_text(
            yaml.safe_dump(deep_update(yaml.safe_load(path.read_text()), changes), sort_keys=False)
        )

    def json(self, rel: str) -> dict:
        return json.loads((self.path / rel).read_text())

    def tags(self) -> list[str]:
        return self.git("tag", "--list").split()


def run_stages(path: Path, names: list[str]) -> None:
    """Run these stage scripts in `path`, in this process, in order, as `dvc repro` runs them."""
    argv = sys.argv
    try:
        with contextlib.chdir(path):
            for name in names:
                sys.argv = [f"stages/{name}.py"]
                runpy.run_path(f"stages/{name}.py", run_name="__main__")
    finally:
        sys.argv = argv


def ran_stages(output: str) -> set[str]:
    import re

    return set(re.findall(r"Running stage '([^']+)'", output))


def create_repo(path: Path, params: dict | None = None) -> Repo:
    """A temporary copy of the project as a fresh git + DVC repository at cold start."""
    from retrain.data.files import write_json
    from retrain.registry.champion import empty_pointer

    path.mkdir(parents=True)
    for rel in PROJECT_FILES:
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, path / rel)
    for rel in PROJECT_DIRS:
        shutil.copytree(ROOT / rel, path / rel, ignore=shutil.ignore_patterns("__pycache__"))
    (path / "data/raw").mkdir(parents=True)
    write_json(path / "models/champion.json", empty_pointer("churn-model"))
    repo = Repo(path)
    if params:
        repo.set_params(params)
    repo.git("init", "-q", "-b", "main")
    repo.run("dvc", "init", "-q")
    repo.run("dvc", "config", "core.analytics", "false")
    return repo


class FirstRuns:
    """Repositories after `Repo.first_run`, built once per test session and copied for each test
    that starts from one: the same params and months give the same repository, so the tests
    share one build of each (across pytest-xdist workers, under a file lock)."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def copy(self, dest: Path, params: dict | None = None, months: int = 3, promote: bool = True) -> Repo:
        """A copy at `dest` of the repository `create_repo(params)` + `first_run(months, promote)`."""
        key = hashlib.sha256(json.dumps([params, months], sort_keys=True).encode()).hexdigest()[:16]
        ran, promoted = self.root / key / "ran", self.root / key / "promoted"
        with open(self.root / f"{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (self.root / key / "ran.done").exists():
                shutil.rmtree(self.root / key, ignore_errors=True)
                create_repo(ran, params).first_run(months, promote=False)
                (self.root / key / "ran.done").touch()
            if promote and not (self.root / key / "promoted.done").exists():
                shutil.rmtree(promoted, ignore_errors=True)
                shutil.copytree(ran, promoted, symlinks=True)
                Repo(promoted).retrain("promote")
                (self.root / key / "promoted.done").touch()
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(promoted if promote else ran, dest, symlinks=True)
        return Repo(dest)


def decisions_month_by_month(params: dict, batches: list, decide_params: dict | None = None) -> dict:
    """Per batch from the second: the decision about it of a champion trained, through the
    stages' own functions, on every batch before it (the batch right after a promotion)."""
    from retrain.data.schema import Schema
    from retrain.data.splits import WindowPolicy, split
    from retrain.model.training import TrainingSettings, train_challenger
    from retrain.monitor.evaluation import DomainCheck, evaluate
    from retrain.monitor.triggers import decide
    from retrain.registry.champion import Champion

    schema = Schema.from_params(params["schema"])
    window = WindowPolicy.from_params(params["prepare"])
    domain = params["evaluate"]["domain_classifier"]
    out = {}
    for t in range(1, len(batches)):
        data = split(batches[:t], schema, window)
        trained = train_challenger(
            data.train,
            data.holdout,
            schema,
            TrainingSettings.from_params(params),
            {"as_of": "", "reason": ""},
        )
        champion = Champion(
            {"version": "v1", "tag": "t", "commit": "c"},
            trained.model,  # as the backtest does: predicts as load(trained.model_bytes) would
            trained.metadata,
            trained.profile,
            trained.reference,
        )
        batch = batches[t]
        record = evaluate(
            champion,
            batch.frame,
            batch.frame,
            schema,
            params["metrics"]["threshold"],
            observed=batch.observed(),
            domain=DomainCheck(domain["folds"], domain["max_rows"], domain["seed"]),
        )
        out[batch.period] = decide(record, decide_params or params["decide"])
    return out
