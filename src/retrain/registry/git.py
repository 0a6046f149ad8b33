"""Git as the registry uses it: one call with a fallback identity, the working tree, the branch."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

from retrain.errors import Refused, RegistryError


def git(root: str | Path, *args: str, check: bool = True, strip: bool = True, date: int | None = None) -> str:
    env = _git_env(root)
    if date is not None:
        env["GIT_COMMITTER_DATE"] = f"{date} +0000"
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise RegistryError(f"git {' '.join(args[:3])} failed: {proc.stderr.strip()[:300]}")
    return proc.stdout.strip() if strip else proc.stdout


def _git_env(root: str | Path) -> dict[str, str]:
    """The environment for git; a fallback identity only where git has none configured."""
    env = dict(os.environ)
    if not _has_identity(str(Path(root).resolve())) and "GIT_AUTHOR_EMAIL" not in env:
        env.update(
            GIT_AUTHOR_NAME="retrain",
            GIT_AUTHOR_EMAIL="retrain@localhost",
            GIT_COMMITTER_NAME="retrain",
            GIT_COMMITTER_EMAIL="retrain@localhost",
        )
    return env


@functools.lru_cache(maxsize=8)
def _has_identity(root: str) -> bool:
    return bool(
        subprocess.run(
            ["git", "config", "user.email"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    )


def changed_paths(root: str | Path, untracked: bool = True) -> list[str]:
    """Paths git reports as changed; with `untracked=False` only files git already tracks."""
    out = git(
        root,
        "status",
        "--porcelain=v1",
        "-z",
        f"--untracked-files={'all' if untracked else 'no'}",
        strip=False,
    )
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


def git_dir(root: str | Path) -> Path:
    return Path(root) / git(root, "rev-parse", "--git-dir")


def on_branch(root: str | Path) -> None:
    """Refuse to move production from a detached HEAD: its commits would be on no branch."""
    if subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=root, capture_output=True).returncode != 0:
        raise Refused("HEAD is detached; check out the branch production lives on first (git switch main)")
