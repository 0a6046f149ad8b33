"""The champion pointer, versions in GTO's tag format, loading a champion, and promote."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import Refused, RegistryError
from .io import atomic_write_bytes, dumps_json, md5_bytes, md5_file, read_json, write_text
from .modeling import load

POINTER = "models/champion.json"
CHALLENGER_DIR = "models/challenger"
MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
VERSION_RE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")
OWN_OUTPUTS = ("dvc.lock", "reports/", ".gitignore")


def empty_pointer(name: str) -> dict[str, Any]:
    return {"name": name, "version": None, "tag": None, "commit": None, "path": None,
            "md5": None, "promoted_as_of": None, "trained_through_period": None,
            "reason": "cold start: no model promoted yet", "metrics": None}


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


def read_pointer(root: str | Path) -> dict[str, Any]:
    path = Path(root) / POINTER
    pointer = read_json(path)
    if not isinstance(pointer, dict) or "version" not in pointer:
        raise RegistryError(f"{POINTER}: expected a JSON object with a 'version' key")
    return pointer


@dataclass
class Champion:
    pointer: dict[str, Any]
    model: Any
    metadata: dict[str, Any]


def read_at_commit(root: str | Path, path: str, commit: str) -> bytes:
    """Bytes of a DVC-tracked file as of `commit`, from the cache or the remote."""
    import dvc.api

    try:
        with dvc.api.open(path, repo=str(root), rev=commit, mode="rb") as fh:
            return fh.read()
    except Exception as err:  # dvc raises many types; the message is what matters
        raise RegistryError(
            f"{POINTER}: cannot read {path} at commit {commit[:12]} "
            f"({type(err).__name__}: {str(err).strip()[:200]}); run 'dvc pull' or check the remote"
        ) from None


def load_champion(root: str | Path, pointer: dict[str, Any]) -> Champion | None:
    """The production model named by the pointer, md5-checked before it is unpickled."""
    if not pointer.get("version"):
        return None
    for key in ("commit", "path", "md5"):
        if not pointer.get(key):
            raise RegistryError(f"{POINTER}: version {pointer['version']} has no {key!r}")
    data = read_at_commit(root, pointer["path"], pointer["commit"])
    actual = md5_bytes(data)
    if actual != pointer["md5"]:
        raise RegistryError(f"{pointer['path']} at {pointer['commit'][:12]}: md5 {actual} does not "
                            f"match {pointer['md5']} in {POINTER}; refusing to load it")
    meta_path = str(Path(pointer["path"]).with_name(METADATA_FILE))
    metadata = json.loads(read_at_commit(root, meta_path, pointer["commit"]))
    return Champion(pointer, load(data), metadata)


# --- git ---------------------------------------------------------------------------------

def git(root: str | Path, *args: str, check: bool = True, strip: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          env=_git_env(root))
    if check and proc.returncode != 0:
        raise RegistryError(f"git {' '.join(args[:3])} failed: {proc.stderr.strip()[:300]}")
    return proc.stdout.strip() if strip else proc.stdout


def _git_env(root: str | Path) -> dict[str, str]:
    """The environment for git; a fallback identity only where git has none configured."""
    env = dict(os.environ)
    configured = subprocess.run(["git", "config", "user.email"], cwd=root, capture_output=True,
                                text=True).stdout.strip()
    if not configured and "GIT_AUTHOR_EMAIL" not in env:
        env.update(GIT_AUTHOR_NAME="retrain", GIT_AUTHOR_EMAIL="retrain@localhost",
                   GIT_COMMITTER_NAME="retrain", GIT_COMMITTER_EMAIL="retrain@localhost")
    return env


def list_versions(root: str | Path, name: str) -> list[str]:
    tags = git(root, "tag", "--list", f"{name}@v*").splitlines()
    return [t.split("@", 1)[1] for t in tags if VERSION_RE.match(t.split("@", 1)[1])]


def stage_tags(root: str | Path, name: str, stage: str) -> list[str]:
    return git(root, "tag", "--list", f"{name}#{stage}*").splitlines()


def changed_paths(root: str | Path) -> list[str]:
    out = git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", strip=False)
    entries = out.split("\0")
    paths, i = [], 0
    while i < len(entries):
        entry = entries[i]
        if entry:
            paths.append(entry[3:])
            if entry[0] in "RC":
                i += 1
        i += 1
    return paths


def is_own_output(path: str) -> bool:
    return path == "dvc.lock" or path.startswith("reports/") or path.endswith(".gitignore")


def dvc_pipeline_clean(root: str | Path) -> tuple[bool, str]:
    proc = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=root,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return False, proc.stderr.strip()[:300]
    try:
        status = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        return False, proc.stdout.strip()[:300]
    return (not status), ", ".join(sorted(status))


def promote(root: str | Path, model_name: str, bump: str, fail_at: str | None = None) -> str:
    """Apply reports/promotion.json: register, tag and point production at the challenger.

    All or nothing: on any failure the commits are undone, the tags deleted and the pointer
    restored. Returns the new version, or raises Refused when there is nothing to promote.
    """
    root = Path(root)
    verdict = read_json(root / "reports/promotion.json")
    if not verdict.get("promote"):
        raise Refused(f"reports/promotion.json says not to promote: {verdict.get('reason')}")
    model_path = root / CHALLENGER_DIR / MODEL_FILE
    if not model_path.exists():
        raise Refused(f"{CHALLENGER_DIR}/{MODEL_FILE} is missing; run 'dvc repro'")
    md5 = md5_file(model_path)
    if md5 != verdict.get("challenger_md5"):
        raise Refused("reports/promotion.json was written for another challenger; run 'dvc repro'")
    pointer = read_pointer(root)
    if pointer.get("md5") == md5:
        raise AlreadyPromoted(pointer["version"])
    clean, detail = dvc_pipeline_clean(root)
    if not clean:
        raise Refused(f"dvc.lock is not up to date with the workspace ({detail}); run 'dvc repro'")
    foreign = [p for p in changed_paths(root) if not is_own_output(p)]
    if foreign:
        raise Refused(f"the working tree has changes beyond the pipeline's outputs: "
                      f"{', '.join(foreign[:5])}; commit or stash them first")
    metadata = read_json(root / CHALLENGER_DIR / METADATA_FILE)
    version = next_version(list_versions(root, model_name), bump)
    tag = version_tag(model_name, version)
    n_stage = len(stage_tags(root, model_name, "prod")) + 1

    original_head = git(root, "rev-parse", "HEAD")
    pointer_file = root / POINTER
    original_pointer = pointer_file.read_bytes()
    created: list[str] = []
    try:
        own = [p for p in changed_paths(root) if is_own_output(p)]
        if own:
            git(root, "add", "--", *own)
            git(root, "commit", "-q", "-m",
                f"Register {model_name} {version}: trained through "
                f"{metadata['trained_through_period']}")
        model_commit = git(root, "rev-parse", "HEAD")
        _maybe_fail(fail_at, "after_register_commit")
        git(root, "tag", "-a", tag, model_commit, "-m",
            f"{model_name} {version}: {verdict['reason']}")
        created.append(tag)
        _maybe_fail(fail_at, "after_version_tag")
        new_pointer = {
            "name": model_name, "version": version, "tag": tag, "commit": model_commit,
            "path": f"{CHALLENGER_DIR}/{MODEL_FILE}", "md5": md5,
            "promoted_as_of": verdict.get("as_of"),
            "trained_through_period": metadata["trained_through_period"],
            "reason": verdict["reason"],
            "metrics": verdict.get("challenger"),
        }
        write_text(pointer_file, dumps_json(new_pointer))
        git(root, "add", "--", POINTER)
        git(root, "commit", "-q", "-m", f"Promote {model_name} {version} to prod")
        _maybe_fail(fail_at, "after_pointer_commit")
        stage_tag = f"{model_name}#prod#{n_stage}"
        git(root, "tag", "-a", stage_tag, model_commit, "-m",
            f"Assign {model_name} {version} to prod")
        created.append(stage_tag)
        _maybe_fail(fail_at, "after_stage_tag")
    except BaseException:
        for name in reversed(created):
            git(root, "tag", "-d", name, check=False)
        git(root, "reset", "-q", "--mixed", original_head, check=False)
        atomic_write_bytes(pointer_file, original_pointer)
        raise
    return version


class AlreadyPromoted(Refused):
    """The challenger is the champion already: promoting twice promotes once."""

    exit_code = 0

    def __init__(self, version: str) -> None:
        super().__init__(f"the challenger is already in production as {version}; nothing to do")


def _maybe_fail(fail_at: str | None, step: str) -> None:
    if fail_at == step:
        raise RegistryError(f"injected failure {step}")
