"""Versions and stages as GTO-format annotated tags: read into a Registry, numbered, checked."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from retrain.errors import RegistryError
from retrain.records import TagRecord
from retrain.registry.git import git

VERSION_RE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")


STAGE = "prod"


def version_tag(name: str, version: str) -> str:
    return f"{name}@{version}"


def parse_version(text: str) -> tuple[int, int, int]:
    match = VERSION_RE.match(text)
    if not match:
        raise RegistryError(f"{text!r} is not a version of the form vX.Y.Z")
    return int(match[1]), int(match[2]), int(match[3])


def next_version(existing: list[str], bump: str) -> str:
    """The version after the highest existing one; v1.0.0 when there is none."""
    if not existing:
        return "v1.0.0"
    major, minor, patch = max(parse_version(v) for v in existing)
    if bump == "major":
        return f"v{major + 1}.0.0"
    if bump == "minor":
        return f"v{major}.{minor + 1}.0"
    if bump == "patch":
        return f"v{major}.{minor}.{patch + 1}"
    raise RegistryError(f"params.yaml: registry.bump is {bump!r}, expected major, minor or patch")


def bump_for(bump: str, changed: bool, on_schema_change: str) -> str:
    """The bump policy: `on_schema_change` wins when the feature schema changed."""
    return on_schema_change if changed else bump


@dataclass(frozen=True)
class StageEvent:
    """One stage tag: `name#stage#N` assigns, `name#stage!#N` unassigns the version at commit."""

    number: int
    stage: str
    assign: bool
    commit: str
    version: str | None
    tag: str
    time: int


@dataclass
class Registry:
    """What the tags of one model say: its versions (with their records) and stage events."""

    name: str
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[StageEvent] = field(default_factory=list)
    last_time: int = 0

    def version_at(self, commit: str) -> str | None:
        found = [v for v, info in self.versions.items() if info["commit"] == commit]
        return max(found, key=parse_version) if found else None

    def active(self, stage: str = STAGE) -> list[str]:
        """Versions whose latest event in `stage` is an assignment, oldest assignment first."""
        last: dict[str, StageEvent] = {}
        for event in sorted(self.events, key=lambda e: e.number):
            if event.stage == stage and event.version:
                last[event.version] = event
        return [v for v, e in sorted(last.items(), key=lambda kv: kv[1].number) if e.assign]

    def next_number(self) -> int:
        return max((e.number for e in self.events), default=0) + 1


STAGE_TAG_RE = re.compile(r"^(?P<name>.+)#(?P<stage>[^#!]+)(?P<un>!?)#(?P<n>\d+)$")


def parse_registry(name: str, refs: list[dict[str, Any]]) -> Registry:
    """Build the registry from annotated tags: {tag, commit, time, message}; others are ignored."""
    registry = Registry(name)
    stage_refs = []
    for ref in refs:
        tag = ref["tag"]
        registry.last_time = max(registry.last_time, int(ref["time"] or 0))
        if tag.startswith(f"{name}@"):
            version = tag.split("@", 1)[1]
            if VERSION_RE.match(version):
                registry.versions[version] = {
                    "commit": ref["commit"],
                    "tag": tag,
                    "record": _record(ref["message"]),
                }
            continue
        match = STAGE_TAG_RE.match(tag)
        if match and match["name"] == name:
            stage_refs.append((match, ref))
    for match, ref in stage_refs:
        registry.events.append(
            StageEvent(
                int(match["n"]),
                match["stage"],
                not match["un"],
                ref["commit"],
                registry.version_at(ref["commit"]),
                ref["tag"],
                int(ref["time"] or 0),
            )
        )
    registry.events.sort(key=lambda e: e.number)
    return registry


def _record(message: str) -> dict[str, Any]:
    """The JSON record that promote writes after the first line of a version tag's message."""
    for line in message.splitlines():
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return {}
    return {}


class Disagreement(RegistryError):
    """The pointer, the version tag and the stage tags do not name the same model."""


def tags_root(root: str | Path) -> Path:
    """Where the model's tags live: the repository, or, for a stage run by a queued
    `dvc exp run` (a temporary workspace that DVC fills with commits but no tags), the
    repository the experiment came from, found through the cache DVC shares with it."""
    root = Path(root)
    if not os.environ.get("DVC_EXP_BASELINE_REV") or git(root, "tag", "--list"):
        return root
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        cache = Path(repo.cache.local_cache_dir).resolve()
    origin = cache.parent.parent
    return origin if (origin / ".dvc").is_dir() and origin != root.resolve() else root


def read_registry(root: str | Path, name: str) -> Registry:
    fmt = "%(refname:strip=2)%00%(objecttype)%00%(*objectname)%00%(taggerdate:unix)%00%(contents)%1e"
    out = git(
        root, "for-each-ref", f"--format={fmt}", f"refs/tags/{name}@*", f"refs/tags/{name}#*", strip=False
    )
    refs = []
    for record in out.split("\x1e"):
        parts = record.lstrip("\n").split("\x00")
        if len(parts) == 5 and parts[1] == "tag":
            refs.append({"tag": parts[0], "commit": parts[2], "time": parts[3] or 0, "message": parts[4]})
    return parse_registry(name, refs)


def tag_record(registry: Registry, version: str) -> TagRecord:
    """The record of a version tag made by promote, with the commit the tag points at."""
    info = registry.versions[version]
    record = info["record"]
    if not record.get("md5") or not record.get("path"):
        raise RegistryError(
            f"tag {info['tag']} carries no model record; it was not made by 'retrain promote'"
        )
    if record.get("commit") and record["commit"] != info["commit"]:
        raise Disagreement(
            f"tag {info['tag']} points at commit {info['commit'][:12]}, but its "
            f"record names {record['commit'][:12]}: the tag was moved; restore it "
            f"from the team's remote: git fetch --tags --force"
        )
    return cast(TagRecord, {**record, "commit": info["commit"], "tag": info["tag"]})
