"""The DVC remote that model versions are pushed to and read back from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from retrain.errors import Refused, RegistryError
from retrain.registry.champion import current_remotes
from retrain.registry.git import changed_paths, git

REMOTE_NAME = "storage"


def default_remote(root: str | Path) -> tuple[str, str] | None:
    """The default DVC remote's name and url, from every config level, or None."""
    conf = current_remotes(root)
    name = conf and conf["core"]["remote"]
    if not conf or not name or name not in conf["remote"]:
        return None
    return name, str(conf["remote"][name]["url"])


def written_url(root: str | Path, name: str) -> str | None:
    """The remote's url as the repository's config files hold it (local config first), or None;
    DVC's own readers resolve a relative path and so hide it."""
    from configobj import ConfigObj

    for level in ("config.local", "config"):
        url = ConfigObj(str(Path(root) / ".dvc" / level)).get(f'remote "{name}"', {}).get("url")
        if url:
            return str(url)
    return None


def beside(root: str | Path) -> Path:
    """The default place of a local remote: a folder next to the clone, outside its work tree."""
    root = Path(root).resolve()
    return root.parent / f"{root.name}.dvc-storage"


def dvc(root: str | Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RegistryError(f"dvc {' '.join(args[:2])} failed: {(proc.stderr or proc.stdout).strip()[:300]}")
    return proc.stdout


def init_remote(root: str | Path, path: str | Path | None = None, name: str = REMOTE_NAME) -> str:
    """Make a local folder outside the work tree the default DVC remote, committed in
    .dvc/config so every clone on this machine reads and pushes models there, and push what the
    cache holds for the workspace and every version tag. A default remote already set is kept."""
    root = Path(root).resolve()
    existing = default_remote(root)
    if existing:
        return f"the default DVC remote is already '{existing[0]}' ({existing[1]}); nothing changed"
    target = Path(path).expanduser().resolve() if path else beside(root)
    if target == root or root in target.parents:
        raise Refused(f"{target} is inside the work tree; a DVC remote must live outside it")
    if ".dvc/config" in changed_paths(root):
        raise Refused(".dvc/config has uncommitted changes; commit or restore it first")
    target.mkdir(parents=True, exist_ok=True)
    dvc(root, "remote", "add", "--default", name, str(target))
    git(root, "add", "--", ".dvc/config")
    git(root, "commit", "-q", "-m", f"Use {target} as the default DVC remote", "--", ".dvc/config")
    dvc(root, "push", "--all-tags")
    return f"the default DVC remote is now '{name}' ({target}), committed in .dvc/config"
