"""Stage contracts: each stage declares exactly the code it runs, real params, and its outputs."""

import pytest
import yaml

from tests.helpers import ROOT
from tools.code_deps import closure, rewritten

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
STAGES = DVC["stages"]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_declares_exactly_the_code_it_runs(name):
    stage = STAGES[name]
    script = stage["cmd"].split()[-1]
    code_deps = {d for d in stage["deps"] if d.startswith("src/")}
    assert script in stage["deps"]
    assert code_deps == set(closure(ROOT / script))


def test_an_import_only_a_type_checker_runs_is_no_code_dependency(tmp_path):
    script = tmp_path / "stage.py"
    script.write_text(
        "import typing\n"
        "from typing import TYPE_CHECKING\n"
        "from retrain.errors import DataError\n"
        "if TYPE_CHECKING:\n"
        "    from retrain.registry.champion import Champion\n"
        "if typing.TYPE_CHECKING:\n"
        "    from retrain.registry.tags import Registry\n"
        "else:\n"
        "    from retrain.data import files\n"
        "def main():\n"
        "    from retrain.log import get\n"
    )
    found = closure(script)
    assert {"src/retrain/errors.py", "src/retrain/data/files.py", "src/retrain/log.py"} <= set(found)
    assert not {"src/retrain/registry/champion.py", "src/retrain/registry/tags.py"} & set(found)


def test_the_code_deps_script_finds_dvc_yaml_up_to_date():
    assert rewritten((ROOT / "dvc.yaml").read_text()) == (ROOT / "dvc.yaml").read_text()


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_params_exist_in_params_yaml(name):
    for key in STAGES[name].get("params", []):
        node = PARAMS
        for part in key.split("."):
            assert part in node, f"{name}: params key {key} is not in params.yaml"
            node = node[part]


def test_champion_pointer_is_never_a_stage_output():
    for stage in STAGES.values():
        outs = [
            next(iter(o)) if isinstance(o, dict) else o
            for kind in ("outs", "metrics", "plots")
            for o in stage.get(kind, [])
        ]
        assert not any(o.startswith("models/champion") for o in outs)
    assert "models/champion.json" in STAGES["evaluate"]["deps"]
    assert "models/champion.json" in STAGES["compare"]["deps"]


def test_shipped_pointer_is_a_cold_start():
    import json
    import subprocess

    pointer = json.loads((ROOT / "models/champion.json").read_text())
    promoted_here = subprocess.run(
        ["git", "tag", "--list", f"{pointer['name']}@*"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    if pointer["version"] and promoted_here:
        pytest.skip(
            "this checkout has promoted a model itself (README command 1); the shipped "
            "pointer is checked in a clean clone"
        )
    assert pointer["version"] is None and pointer["name"] == PARAMS["registry"]["model_name"]


def test_artifact_section_names_the_registry_model():
    assert PARAMS["registry"]["model_name"] in DVC["artifacts"]


def test_every_params_key_is_read_by_some_stage_or_command():
    listed = {k for s in STAGES.values() for k in s.get("params", [])}
    for section in ("schema", "prepare", "decide", "train", "compare", "metrics"):
        for key in PARAMS[section]:
            dotted = f"{section}.{key}"
            assert any(
                x == dotted or x.startswith(dotted + ".") or dotted.startswith(x + ".") for x in listed
            ), dotted
