"""Pointing the repository at another dataset is a params change: no demo column in code."""

import ast

import yaml

from tests.helpers import ROOT


def test_no_demo_column_name_appears_in_code():
    schema = yaml.safe_load((ROOT / "params.yaml").read_text())["schema"]
    names = {schema["id"], schema["time"], schema["target"], *schema["numeric"], *schema["categorical"]}
    offenders = []
    for path in [*ROOT.glob("src/retrain/**/*.py"), *ROOT.glob("stages/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            used = (
                node.value
                if isinstance(node, ast.Constant) and isinstance(node.value, str)
                else node.id
                if isinstance(node, ast.Name)
                else node.attr
                if isinstance(node, ast.Attribute)
                else None
            )
            if used in names:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {used}")
    assert offenders == []
