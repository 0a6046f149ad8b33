"""The documentation matches the code: every params key is in the reference, README links resolve."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel

from retrain.params import Params

ROOT = Path(__file__).resolve().parents[2]


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{info.alias or name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += _keys(annotation, f"{key}.")
        else:
            keys.append(key)
    return keys


def test_every_params_key_is_in_the_reference():
    reference = (ROOT / "docs" / "params.md").read_text()
    quoted = " ".join(re.findall(r"`([^`]+)`", reference))
    missing = [
        key
        for key in _keys(Params)
        if not re.search(rf"(?<![\w]){re.escape(key.rsplit('.', 1)[-1])}(?![\w])", quoted)
    ]
    assert not missing, f"docs/params.md does not name {missing}"


def test_readme_is_an_entry_point_whose_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    links = re.findall(r"\]\(((?!https?:)[^)#]+)", readme)
    assert links
    assert [link for link in links if not (ROOT / link).is_file()] == []


def test_every_docs_page_is_in_the_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(path.name for path in (ROOT / "docs").glob("*.md"))
    assert [page for page in pages if f": {page}" not in nav] == []


def test_every_params_yaml_key_carries_a_comment():
    text = (ROOT / "params.yaml").read_text()
    lines = text.splitlines()

    def bare(node: yaml.Node) -> list[str]:
        found = []
        if isinstance(node, yaml.MappingNode) and not node.flow_style:
            for key, value in node.value:
                number = key.start_mark.line
                if "#" not in lines[number] and not lines[number - 1].lstrip().startswith("#"):
                    found.append(f"params.yaml:{number + 1}: {key.value}")
                found += bare(value)
        return found

    assert bare(yaml.compose(text)) == []
