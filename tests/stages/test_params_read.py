"""Each stage reads exactly the params keys it declares, so `dvc repro` reruns what changed."""

import runpy
import sys
from collections.abc import Iterator

import pytest
import yaml

import retrain.params
from tests.helpers import ROOT

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


class Recorder(dict):
    """A params mapping that records every dotted key read from it."""

    def __init__(self, data: dict, seen: set[str], prefix: str = ""):
        super().__init__(data)
        self.seen, self.prefix = seen, prefix

    def _wrap(self, key, value):
        path = f"{self.prefix}{key}"
        self.seen.add(path)
        return Recorder(value, self.seen, path + ".") if isinstance(value, dict) else value

    def __getitem__(self, key):
        return self._wrap(key, super().__getitem__(key))

    def get(self, key, default=None):
        return self._wrap(key, super().get(key, default)) if key in self else default

    def items(self) -> Iterator:
        for key in self:
            yield key, self[key]


def covered(key: str, declared: list[str]) -> bool:
    return any(key == d or key.startswith(d + ".") for d in declared)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_reads_exactly_its_declared_params(name, cold_start_repo, monkeypatch):
    monkeypatch.chdir(cold_start_repo.path)
    seen: set[str] = set()
    data = yaml.safe_load((cold_start_repo.path / "params.yaml").read_text())
    monkeypatch.setattr(retrain.params, "load", lambda path="params.yaml": Recorder(data, seen))
    monkeypatch.setattr(sys, "argv", [f"stages/{name}.py"])
    runpy.run_path(f"stages/{name}.py", run_name="__main__")
    declared = STAGES[name].get("params", [])
    leaves = {k for k in seen if not any(other.startswith(k + ".") for other in seen)}
    undeclared = sorted(k for k in leaves if not covered(k, declared))
    unread = sorted(d for d in declared if not any(k == d or k.startswith(d + ".") for k in leaves))
    assert undeclared == [], f"{name} reads params it does not declare"
    assert unread == [], f"{name} declares params it never reads"
