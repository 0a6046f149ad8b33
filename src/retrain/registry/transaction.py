"""All or nothing: a journal of the commits and tags a registry command made, undone together on
failure or after a kill, and the locks held meanwhile."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from retrain.data.files import (
    atomic_write_bytes,
    dumps_json,
    read_json,
)
from retrain.errors import Refused, RegistryError
from retrain.faults import checkpoint
from retrain.registry.champion import POINTER
from retrain.registry.git import git, git_dir
from retrain.registry.tags import Registry, read_registry

JOURNAL = "retrain-transaction.json"


LOCK = "retrain.lock"


@contextlib.contextmanager
def pipeline_paused(root: str | Path) -> Iterator[Any]:
    """Hold DVC's locks while production moves: the repository lock (held by `dvc repro`
    between stages), a read lock on the whole workspace (a running stage holds write locks on
    its outputs) and a write lock on the pointer (a stage that reads it holds a read lock). So
    nothing is committed while a stage writes, no stage records an evaluation of a pointer that
    changed under it, and a repro that starts meanwhile stops with DVC's lock error."""
    from dvc.lock import LockError
    from dvc.repo import Repo, lock_repo
    from dvc.rwlock import rwlock

    with Repo(str(root)) as repo:
        try:
            with (
                lock_repo(repo),
                rwlock(
                    repo.tmp_dir,
                    repo.fs,
                    " ".join(sys.argv),
                    [repo.root_dir],
                    [repo.fs.join(repo.root_dir, POINTER)],
                    repo.config["core"].get("hardlink_lock", False),
                ),
            ):
                yield repo
        except LockError:
            raise Refused(
                "a DVC command (dvc repro?) is running in this repository; nothing "
                "was changed: run this again when it has finished"
            ) from None


def dvc_pipeline_clean(repo: Any) -> tuple[bool, str]:
    """Whether compare and every stage before it are up to date (the verdict is current); the
    backtest and the report may lag without making the verdict stale."""
    from dvc.lock import LockError

    try:
        status = repo.status(targets=[f"{repo.root_dir}/dvc.yaml:compare"], with_deps=True)
    except LockError:
        raise
    except Exception as err:  # dvc raises many types; the message is what matters
        return False, f"{type(err).__name__}: {str(err).strip()[:300]}"
    return (not status), ", ".join(sorted(status))


class Transaction:
    """Commits and tags made so far, undone together if a later step fails.

    A journal in the git directory names the starting HEAD, the pointer and every tag before it
    is made, so that a process killed halfway (SIGKILL runs no handler) is undone by the next
    promote or rollback before it starts: see `recover`.
    """

    def __init__(
        self,
        root: Path,
        registry: Registry,
        command: str = "promote",
        fail_at: str | None = None,
        journal: dict[str, Any] | None = None,
    ):
        self.root, self.registry, self.command, self.fail_at = root, registry, command, fail_at
        self.journal_path = git_dir(root) / JOURNAL
        if journal is None:
            journal = {
                "command": command,
                "head": git(root, "rev-parse", "HEAD"),
                "pointer": (root / POINTER).read_text(),
                "tags": [],
                "added": [],
            }
        self.head, self.pointer = journal["head"], journal["pointer"].encode()
        self.tags: list[str] = list(journal["tags"])
        self.added: list[str] = list(journal["added"])
        self.clock = max(int(time.time()), registry.last_time)
        self._save()

    def _save(self) -> None:
        atomic_write_bytes(
            self.journal_path,
            dumps_json(
                {
                    "command": self.command,
                    "head": self.head,
                    "pointer": self.pointer.decode(),
                    "tags": self.tags,
                    "added": self.added,
                }
            ).encode(),
        )

    def step(self, name: str) -> None:
        _maybe_fail(self.fail_at, name)
        checkpoint(f"{self.command}:{name}")

    def add(self, paths: list[str]) -> None:
        self.added = paths
        self._save()

    def tag(self, name: str, commit: str, message: str) -> None:
        self.clock += 1 if self.clock <= self.registry.last_time or self.tags else 0
        self.tags.append(name)
        self._save()
        git(self.root, "tag", "-a", name, commit, "-m", message, date=self.clock)
        self.registry.last_time = self.clock

    def done(self) -> None:
        self.journal_path.unlink(missing_ok=True)

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, failed: type[BaseException] | None, *_: Any) -> None:
        """Keep everything on success, undo everything on any exception (and re-raise it)."""
        if failed:
            self.undo()
        else:
            self.done()

    def undo(self) -> None:
        """Delete the tags, reset HEAD, restore the pointer; the journal is kept, and the
        failure raised, unless the repository is back where it started."""
        for name in reversed(self.tags):
            git(self.root, "tag", "-d", name, check=False)
        git(self.root, "reset", "-q", "--soft", self.head, check=False)
        git(self.root, "reset", "-q", self.head, "--", POINTER, *self.added, check=False)
        atomic_write_bytes(self.root / POINTER, self.pointer)
        left = [t for t in self.tags if git(self.root, "tag", "--list", t)]
        head = git(self.root, "rev-parse", "HEAD", check=False)
        if left or head != self.head:
            raise RegistryError(
                f"could not undo an interrupted {self.command}: HEAD is {head[:12] or '?'}, "
                f"expected {self.head[:12]}; tags left: {', '.join(left) or 'none'}; the journal "
                f"{self.journal_path} is kept for the next attempt (is a git command holding "
                f"{git_dir(self.root) / 'index.lock'}?)"
            )
        self.done()


def recover(root: str | Path, registry: Registry) -> str | None:
    """Undo a promote or rollback that was killed halfway; the command it was, or None."""
    path = git_dir(root) / JOURNAL
    if not path.exists():
        return None
    journal = read_json(path)
    Transaction(Path(root), registry, journal["command"], journal=journal).undo()
    print(
        f"recovered: undid an interrupted {journal['command']} (restored HEAD "
        f"{journal['head'][:12]}, removed {len(journal['tags'])} tag(s))"
    )
    return str(journal["command"])


def _stale_index_lock(root: Path) -> None:
    """Remove git's index lock when a killed promote or rollback left it: that is when its
    journal remains, and this process holds the lock no other promote or rollback can."""
    lock = git_dir(root) / "index.lock"
    if not lock.exists():
        return
    if not (git_dir(root) / JOURNAL).exists():
        raise Refused(
            f"{lock} exists: another git command is running, or one was killed; if "
            "none is running, delete that file and run this again"
        )
    lock.unlink()
    print(f"recovered: removed {lock} left by the interrupted command")


@contextlib.contextmanager
def exclusive(root: str | Path, model_name: str) -> Iterator[None]:
    """One promote or rollback at a time per repository (a second one is refused at once),
    starting from a registry where no interrupted one is left half done."""
    fd = os.open(git_dir(root) / LOCK, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Refused(
                "another promote or rollback is running in this repository "
                f"({LOCK} in the git directory is held); nothing was changed"
            ) from None
        _stale_index_lock(Path(root))
        recover(root, read_registry(root, model_name))
        yield
    finally:
        os.close(fd)


def _maybe_fail(fail_at: str | None, step: str) -> None:
    if fail_at == step:
        raise RegistryError(f"injected failure {step}")
