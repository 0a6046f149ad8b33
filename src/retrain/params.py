"""Reading params.yaml: only stage scripts and CLI commands call this, never the logic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML, YAMLError

from .errors import DataError


def load(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read params the way DVC does (YAML 1.2: `Yes` stays a string after `dvc exp run -S`)."""
    path = Path(path)
    try:
        data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run from the repository root") from None
    except YAMLError as err:
        raise DataError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a mapping of sections")
    return data


def section(params: dict[str, Any], name: str) -> dict[str, Any]:
    try:
        value = params[name]
    except KeyError:
        raise DataError(f"params.yaml: section {name!r} is missing") from None
    if not isinstance(value, dict):
        raise DataError(f"params.yaml: section {name!r} must be a mapping")
    return value
