"""The champion pointer, versions and stages as GTO tags, loading a champion; promote, rollback, fetch."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import Refused, RegistryError
from .faults import checkpoint
from .io import (
    atomic_write_bytes,
    dumps_json,
    md5_bytes,
    md5_file,
    read_json,
    read_npy,
    write_text,
)
from .log import get
from .modeling import load

POINTER = "models/champion.json"
JOURNAL = "retrain-transaction.json"
LOCK = "retrain.lock"
CHALLENGER_DIR = "models/challenger"
MODEL_FILE = "model.skops"
METADATA_FILE = "metadata.json"
PROFILE_FILE = "profile.json"
REFERENCE_FILE = "reference.parquet"
VERSION_RE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")


STAGE = "prod"
log = get("registry")


def empty_pointer(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "version": None,
        "tag": None,
        "commit": None,
        "path": None,
        "md5": None,
        "action": None,
        "promoted_as_of": None,
        "trained_through_period": None,
        "window": None,
        "rows": None,
        "reason": "cold start: no model promoted yet",
        "metrics": None,
    }


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
    profile: dict[str, Any] | None = None
    reference: Any = None
    trained_rows: Any = None  # fingerprints of its training rows (splits.row_fingerprints)


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


def _repair(version: str | None) -> str:
    target = version or "<version>"
    return (
        f"repair: `retrain rollback --to {target} --reason ...` points the pointer and the "
        f"stage tags at one version (`retrain verify` shows every reader)"
    )


def agreed_record(pointer: dict[str, Any], registry: Registry) -> dict[str, Any] | None:
    """The version tag's record of the champion once the pointer, that annotated tag and the
    prod stage tags (what `gto show` reads) agree on it; None for a cold start. Any
    disagreement stops with one line naming who says what."""
    version, name, active = pointer.get("version"), registry.name, registry.active(STAGE)
    if not version:
        if active:
            raise Disagreement(
                f"{POINTER} names no champion, but the stage tags put {name} "
                f"{active[-1]} in {STAGE}; {_repair(active[-1])}"
            )
        return None
    if version not in registry.versions:
        if not registry.versions:
            raise Disagreement(
                f"{POINTER} names {name} {version}, but this clone has no version "
                f"tags of {name}; fetch them: git fetch --tags"
            )
        known = ", ".join(sorted(registry.versions, key=parse_version))
        raise Disagreement(
            f"{POINTER} names {name} {version}, but no tag "
            f"{version_tag(name, version)} records it (known: {known}); fetch the "
            f"tags (git fetch --tags) or {_repair(None)}"
        )
    record = _tag_record(registry, version)
    for key in ("commit", "path", "md5"):
        if pointer.get(key) != record[key]:
            raise Disagreement(
                f"{POINTER} says {name} {version} has {key} {pointer.get(key)}, "
                f"but tag {record['tag']} records {record[key]}; "
                f"{_repair(version)}"
            )
    if active != [version]:
        says = " and ".join(active) if active else "no version"
        raise Disagreement(
            f"{POINTER} names {name} {version}, but the stage tags (gto show) put "
            f"{says} in {STAGE}; {_repair(version)}"
        )
    return record


def trusted_pointer(root: str | Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The pointer and its version tag's record, checked to agree (see agreed_record)."""
    pointer = read_pointer(root)
    name = pointer.get("name")
    if not name:
        raise RegistryError(f"{POINTER}: expected a 'name'")
    return pointer, agreed_record(pointer, read_registry(tags_root(root), str(name)))


def verify(root: str | Path, model_name: str) -> list[str]:
    """What each reader of the production model says, one line each, after checking that they
    agree: the pointer, the version tag, the stage tags as this package and GTO's API read
    them, and the md5 of every file at the tag's commit. Stops at the first disagreement."""
    from gto.api import find_versions_in_stage
    from gto.exceptions import ArtifactNotFound

    pointer = read_pointer(root)
    if pointer.get("name") != model_name:
        raise Disagreement(
            f"{POINTER} names model {pointer.get('name')!r}, but params.yaml "
            f"registry.model_name is {model_name!r}"
        )
    tags = tags_root(root)
    registry = read_registry(tags, model_name)
    record = agreed_record(pointer, registry)
    try:
        found = find_versions_in_stage(str(tags), model_name, STAGE, versions_per_stage=-1) or []
    except ArtifactNotFound:
        found = []
    gto = sorted(v.version for v in found)
    if gto != sorted(registry.active(STAGE)):
        raise Disagreement(
            f"GTO puts {' and '.join(gto) or 'no version'} in {STAGE}, this "
            f"package reads {' and '.join(registry.active(STAGE)) or 'none'}"
        )
    if record is None:
        return [
            f"pointer      {POINTER}: no champion yet (cold start)",
            f"stage tags   {STAGE}: no version (gto show agrees)",
            f"ok: no model of {model_name} is in production",
        ]
    files = verified_files(root, record)
    return [
        f"pointer      {POINTER}: {model_name} {pointer['version']} at "
        f"{pointer['commit'][:12]}, md5 {pointer['md5']}",
        f"version tag  {record['tag']}: commit {record['commit'][:12]}, md5 {record['md5']}",
        f"stage tags   {STAGE}: {', '.join(gto)} (this package and gto show agree)",
        f"files        {', '.join(files)}: md5 as the tag records"
        + ("" if "files" in record else " (side files: tag predates their md5s)"),
        f"ok: every reader names {model_name} {pointer['version']}",
    ]


def current_remotes(root: str | Path) -> dict[str, Any] | None:
    """The DVC remotes configured in the working tree now (repository, local, global and
    system config), to read an old commit's files through: that commit's own .dvc/config may
    name no remote, or one that has moved."""
    from dvc.config import Config

    conf = Config(dvc_dir=str(Path(root).resolve() / ".dvc"))
    if not conf["remote"]:
        return None
    return {"core": {"remote": conf["core"].get("remote")}, "remote": conf["remote"]}


def read_many_at_commit(root: str | Path, paths: list[str], commit: str) -> dict[str, bytes]:
    """Bytes of DVC-tracked files as of `commit`, through one view of the repository at it."""
    from dvc.repo import Repo

    found: dict[str, bytes] = {}
    try:
        with Repo.open(str(root), rev=commit, config=current_remotes(root)) as repo:
            for path in paths:
                with repo.dvcfs.open(path, "rb") as fh:
                    found[path] = fh.read()
    except Exception as err:  # dvc raises many types; the message is what matters
        missing = next((p for p in paths if p not in found), paths[0])
        raise RegistryError(
            f"cannot read {missing} at commit {commit[:12]} "
            f"({type(err).__name__}: {str(err).strip()[:200]}); run 'dvc pull' or check the remote"
        ) from None
    return found


TRAINED_ROWS_FILE = "trained_rows.npy"
SIDE_FILES = (METADATA_FILE, PROFILE_FILE, REFERENCE_FILE, TRAINED_ROWS_FILE)
LEGACY_SIDE_FILES = SIDE_FILES[:3]  # tags made before side-file md5s were recorded


def side_file_md5s(directory: str | Path) -> dict[str, str]:
    """The md5 of each file that travels with a model, for its version tag's record."""
    return {name: md5_file(Path(directory) / name) for name in SIDE_FILES}


def load_champion(root: str | Path) -> Champion | None:
    """The production model: the pointer checked against its version tag and the stage tags,
    then every file checked against the md5 in the tag's record before any byte is loaded."""
    pointer, record = trusted_pointer(root)
    if record is None:
        return None
    return load_trusted(root, pointer, record)


def verified_files(root: str | Path, record: dict[str, Any]) -> dict[str, bytes]:
    """The model and its side files at the version tag's commit, each checked against the md5
    in the tag's record before anything reads them; keyed by file name."""
    beside = Path(record["path"])
    side = list(record["files"]) if "files" in record else LEGACY_SIDE_FILES
    names = {MODEL_FILE: record["path"], **{n: str(beside.with_name(n)) for n in side}}
    try:
        found = read_many_at_commit(root, list(names.values()), record["commit"])
    except RegistryError:
        known = (
            subprocess.run(
                ["git", "cat-file", "-e", f"{record['commit']}^{{commit}}"], cwd=root, capture_output=True
            ).returncode
            == 0
        )
        if known:
            raise
        raise RegistryError(
            f"tag {record['tag']} names commit {record['commit'][:12]}, which "
            "this repository does not have; fetch it (git fetch --tags)"
        ) from None
    if "files" not in record:
        log.warning(
            "tag %s predates side-file md5s: %s are read unverified",
            record["tag"],
            ", ".join(LEGACY_SIDE_FILES),
        )
    expected = {MODEL_FILE: record["md5"], **(record.get("files") or {})}
    files = {name: found[path] for name, path in names.items()}
    for name, md5 in expected.items():
        checked_bytes(files[name], md5, f"{names[name]} at {record['commit'][:12]}", f"tag {record['tag']}")
    return files


def check_library_version(metadata: dict[str, Any], what: str) -> None:
    """Refuse a model trained under another major version of scikit-learn; warn on any other
    difference (constraints.txt pins the version the job installs)."""
    import sklearn

    trained, here = metadata.get("sklearn_version"), sklearn.__version__
    if not trained or trained == here:
        return
    if trained.split(".")[0] != here.split(".")[0]:
        raise RegistryError(
            f"{what} was trained with scikit-learn {trained}, this environment "
            f"has {here}; install the pinned versions (pip install -c "
            "constraints.txt -e .) or retrain"
        )
    log.warning(
        "%s was trained with scikit-learn %s, this environment has %s; install the "
        "pinned versions (pip install -c constraints.txt -e .)",
        what,
        trained,
        here,
    )


def load_trusted(root: str | Path, pointer: dict[str, Any], record: dict[str, Any]) -> Champion:
    """The champion named by a pointer whose agreement with `record` was already checked
    (trusted_pointer); every file is still checked against the record's md5s."""
    files = verified_files(root, record)
    metadata = json.loads(files[METADATA_FILE])
    check_library_version(metadata, f"{record['tag']}")
    return Champion(
        pointer,
        load(files[MODEL_FILE]),
        metadata,
        json.loads(files[PROFILE_FILE]),
        pd.read_parquet(io.BytesIO(files[REFERENCE_FILE])),
        read_npy(files[TRAINED_ROWS_FILE]) if TRAINED_ROWS_FILE in files else None,
    )


def checked_bytes(data: bytes, expected: str, what: str, recorded_in: str) -> bytes:
    """`data` when its md5 is the one recorded in `recorded_in`."""
    actual = md5_bytes(data)
    if actual != expected:
        raise RegistryError(
            f"{what}: md5 {actual} does not match {expected} in {recorded_in}; refusing to load it"
        )
    return data


def _challenger_model(directory: Path) -> tuple[bytes, str] | None:
    """The model bytes train wrote and their md5, checked against its metadata; None if it
    trained none."""
    metadata = read_json(directory / METADATA_FILE)
    if not metadata.get("trained"):
        return None
    data = checked_bytes(
        (directory / MODEL_FILE).read_bytes(),
        metadata["model_md5"],
        f"{directory}/{MODEL_FILE}",
        f"{directory}/{METADATA_FILE}",
    )
    return data, str(metadata["model_md5"])


def challenger_md5(directory: str | Path) -> str | None:
    """The md5 of the model train wrote, checked against its metadata; None if it trained none."""
    found = _challenger_model(Path(directory))
    return None if found is None else found[1]


def load_challenger(directory: str | Path) -> tuple[Any, str | None]:
    """The challenger train wrote, md5-checked against its metadata; (None, None) if none."""
    found = _challenger_model(Path(directory))
    if found is None:
        return None, None
    return load(found[0]), found[1]


# --- git ---------------------------------------------------------------------------------


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


class AlreadyPromoted(Refused):
    """The challenger is the champion already: promoting twice promotes once."""

    exit_code = 0

    def __init__(self, version: str) -> None:
        super().__init__(f"the challenger is already in production as {version}; nothing to do")


class AlreadyHeld(Refused):
    """The verdict was recorded already: holding twice holds once."""

    exit_code = 0

    def __init__(self, version: str, as_of: str) -> None:
        super().__init__(f"{version} is held as of {as_of} already; nothing to do")


class _Transaction:
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

    def __enter__(self) -> _Transaction:
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


def git_dir(root: str | Path) -> Path:
    return Path(root) / git(root, "rev-parse", "--git-dir")


def recover(root: str | Path, registry: Registry) -> str | None:
    """Undo a promote or rollback that was killed halfway; the command it was, or None."""
    path = git_dir(root) / JOURNAL
    if not path.exists():
        return None
    journal = read_json(path)
    _Transaction(Path(root), registry, journal["command"], journal=journal).undo()
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


def _commit_pointer(tx: _Transaction, pointer: dict[str, Any], message: str) -> None:
    """Write the pointer and commit it alone; the transaction undoes it if a later step fails."""
    write_text(tx.root / POINTER, dumps_json(pointer))
    git(tx.root, "add", "--", POINTER)
    git(tx.root, "commit", "-q", "-m", message[:200], "--", POINTER)
    tx.step("after_pointer_commit")


def _point(
    tx: _Transaction,
    name: str,
    version: str,
    record: dict[str, Any],
    action: str,
    as_of: str | None,
    reason: str,
    before: dict[str, Any],
    pin: dict[str, Any] | None = None,
) -> None:
    """Commit the pointer, then make `version` the only one assigned to prod. The versions
    rolled back from are carried over from `before` (the pointer until now); `pin` (a
    rollback's) holds production there."""
    rolled_back = [r for r in before.get("rolled_back") or [] if r.get("md5") != record["md5"]]
    if action == "rollback" and before.get("version") and before.get("md5") != record["md5"]:
        rolled_back.append(
            {"version": before["version"], "md5": before["md5"], "as_of": as_of, "reason": reason}
        )
    pointer = {
        "name": name,
        "version": version,
        "tag": version_tag(name, version),
        "commit": record["commit"],
        "path": record["path"],
        "md5": record["md5"],
        "action": action,
        "promoted_as_of": as_of,
        "trained_through_period": record.get("trained_through_period"),
        "window": record.get("window"),
        "rows": record.get("rows"),
        "reason": reason,
        "metrics": record.get("metrics"),
        **({"rolled_back": rolled_back} if rolled_back else {}),
        **({"pinned": pin} if pin else {}),
    }
    verb = "Promote" if action == "promote" else "Roll back"
    _commit_pointer(tx, pointer, f"{verb} {name} {version} to {STAGE}: {reason}")
    number = tx.registry.next_number()
    for other in tx.registry.active(STAGE):
        if other != version:
            tx.tag(
                f"{name}#{STAGE}!#{number}",
                tx.registry.versions[other]["commit"],
                f"Unassign {name} {other} from {STAGE}",
            )
            number += 1
            tx.step("after_unassign_tag")
    tx.tag(f"{name}#{STAGE}#{number}", record["commit"], f"Assign {name} {version} to {STAGE}")
    tx.step("after_stage_tag")


def promote(
    root: str | Path,
    model_name: str,
    bump: str,
    on_schema_change: str = "major",
    fail_at: str | None = None,
    freq: str | None = None,
) -> str:
    """Apply reports/promotion.json: register, tag and point production at the challenger.

    All or nothing: on any failure the commits are undone, the tags deleted and the pointer
    restored. Returns the new version, or raises Refused when there is nothing to promote.
    """
    root = Path(root)
    verdict = read_json(root / "reports/promotion.json")
    with exclusive(root, model_name), pipeline_paused(root) as repo:
        return _promote(root, repo, verdict, model_name, bump, on_schema_change, fail_at, freq)


def production_lock(
    pointer: dict[str, Any], challenger: str | None, as_of: str | None, freq: str | None = None
) -> str | None:
    """Why no challenger may be promoted now, or None: production is pinned by a rollback (until
    `retrain unpin`, or through the pin's `until` period), or the challenger's bytes are those
    of a version production was rolled back from."""
    pin = pointer.get("pinned")
    if pin:
        until = pin.get("until")
        over = (
            until is not None
            and as_of is not None
            and freq is not None
            and pd.Period(as_of, freq) > pd.Period(until, freq)
        )
        if not over:
            ends = f"through {until}" if until else "until 'retrain unpin --reason ...'"
            return (
                f"production is pinned to {pointer.get('version')} since the rollback as of "
                f"{pin.get('as_of')} ({pin.get('reason')}), {ends}"
            )
    for old in pointer.get("rolled_back") or []:
        if challenger and old.get("md5") == challenger:
            return (
                f"the challenger's bytes are those of {old['version']}, which production was "
                f"rolled back from as of {old.get('as_of')} ({old.get('reason')})"
            )
    return None


def locked_verdict(verdict: dict[str, Any], pointer: dict[str, Any], freq: str) -> dict[str, Any]:
    """The verdict as compare records it: a promotion the production lock forbids becomes
    `locked`, not promoted, its reason saying why and what the verdict was otherwise."""
    lock = production_lock(pointer, verdict.get("challenger_md5"), verdict.get("as_of"), freq)
    if not lock or not verdict.get("promote"):
        return verdict
    return {
        **verdict,
        "promote": False,
        "locked": True,
        "reason": f"not promoted: {lock}; otherwise: {verdict['reason']}",
    }


def schema_changed(before: Any, after: Any, decision: dict[str, Any]) -> bool:
    """Whether a challenger's inputs differ from the champion's: other columns or types, or
    categories the champion never saw (decide's schema_change found new categories or a type
    change in the batch the challenger was trained on)."""
    found = next(
        (t.get("value") or [] for t in decision.get("triggers") or [] if t.get("name") == "schema_change"), []
    )
    return before != after or bool({"new_category", "type_change"} & set(found))


def _promote(
    root: Path,
    repo: Any,
    verdict: dict[str, Any],
    model_name: str,
    bump: str,
    on_schema_change: str,
    fail_at: str | None,
    freq: str | None = None,
) -> str:
    if not verdict.get("promote"):
        raise Refused(f"reports/promotion.json says not to promote: {verdict.get('reason')}")
    model_path = root / CHALLENGER_DIR / MODEL_FILE
    if not model_path.exists():
        raise Refused(f"{CHALLENGER_DIR}/{MODEL_FILE} is missing; run 'dvc repro'")
    md5 = md5_file(model_path)
    if md5 != verdict.get("challenger_md5"):
        raise Refused("reports/promotion.json was written for another challenger; run 'dvc repro'")
    on_branch(root)
    pointer, _ = trusted_pointer(root)
    if pointer.get("md5") == md5:
        raise AlreadyPromoted(pointer["version"])
    lock = production_lock(pointer, md5, verdict.get("as_of"), freq)
    if lock:
        raise Refused(f"not promoting: {lock}")
    clean, detail = dvc_pipeline_clean(repo)
    if not clean:
        raise Refused(f"dvc.lock is not up to date with the workspace ({detail}); run 'dvc repro'")
    foreign = [p for p in changed_paths(root, untracked=False) if not is_own_output(p)]
    if foreign:
        raise Refused(
            f"the working tree has changes to committed files beyond the pipeline's "
            f"outputs: {', '.join(foreign[:5])}; commit or stash them first"
        )
    metadata = read_json(root / CHALLENGER_DIR / METADATA_FILE)
    registry = read_registry(root, model_name)
    current = registry.versions.get(pointer.get("version") or "", {}).get("record", {})
    decided = root / "reports/decision.json"
    decision = read_json(decided) if decided.exists() else {}
    changed = bool(current) and schema_changed(current.get("schema"), metadata.get("schema"), decision)
    issued = [*registry.versions, *versions_ever_issued(root, model_name)]
    version = next_version(issued, bump_for(bump, changed, on_schema_change))
    tag = version_tag(model_name, version)
    with _Transaction(root, registry, "promote", fail_at) as tx:
        tx.step("start")
        own = [p for p in changed_paths(root) if is_own_output(p)]
        if own:
            tx.add(own)
            git(root, "add", "--", *own)
            git(
                root,
                "commit",
                "-q",
                "-m",
                f"Register {model_name} {version}: trained through {metadata['trained_through_period']}",
            )
        commit = git(root, "rev-parse", "HEAD")
        tx.step("after_register_commit")
        record = {
            "version": version,
            "commit": commit,
            "path": f"{CHALLENGER_DIR}/{MODEL_FILE}",
            "md5": md5,
            "as_of": verdict.get("as_of"),
            "trained_through_period": metadata["trained_through_period"],
            "trained_until": metadata["trained_until"],
            "window": metadata["window"]["periods"],
            "rows": metadata["window"]["rows"],
            "estimator": metadata.get("estimator"),
            "metrics": verdict.get("challenger"),
            "schema": metadata.get("schema"),
            "reason": verdict["reason"],
            "files": side_file_md5s(root / CHALLENGER_DIR),
        }
        tx.tag(
            tag,
            commit,
            f"{model_name} {version}: {verdict['reason']}\n\n{json.dumps(record, sort_keys=True)}",
        )
        registry.versions[version] = {"commit": commit, "tag": tag, "record": record}
        tx.step("after_version_tag")
        _point(tx, model_name, version, record, "promote", verdict.get("as_of"), verdict["reason"], pointer)
    return version


def on_branch(root: str | Path) -> None:
    """Refuse to move production from a detached HEAD: its commits would be on no branch."""
    if subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=root, capture_output=True).returncode != 0:
        raise Refused("HEAD is detached; check out the branch production lives on first (git switch main)")


def versions_ever_issued(root: str | Path, model_name: str) -> list[str]:
    """Every version the pointer has named in this branch's history, and every tag of the model
    (lightweight ones too): a version number is never issued twice, even with tags missing."""
    history = git(root, "log", "--format=", "-p", "--", POINTER, check=False)
    found = set(re.findall(r'"version": "(v\d+\.\d+\.\d+)"', history))
    prefix = f"{model_name}@"
    found |= {
        t[len(prefix) :]
        for t in git(root, "tag", "--list", f"{prefix}*").splitlines()
        if VERSION_RE.match(t[len(prefix) :])
    }
    return sorted(found, key=parse_version)


def _tag_record(registry: Registry, version: str) -> dict[str, Any]:
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
    return {**record, "commit": info["commit"], "tag": info["tag"]}


def held_baseline(verdict: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """What a champion scored on the newest holdout when a challenger trained on that data
    failed to beat it (a compare verdict), or None when no challenger was trained and lost.
    From then on the champion is judged against this score, not its own old holdout: a change
    that a retrain could not exploit is answered, and fires again only when the data moves
    further. `holds` counts the challengers in a row that lost to this version (`previous` is
    the pointer's baseline before this one)."""
    if (
        verdict.get("promote")
        or verdict.get("undecided")
        or verdict.get("locked")
        or not verdict.get("challenger")
        or not verdict.get("champion")
    ):
        return None
    version = verdict.get("champion_version")
    before = previous or {}
    holds = int(before.get("holds", 1)) + 1 if before.get("version") == version else 1
    return {
        "version": version,
        "as_of": verdict.get("as_of"),
        "metrics": verdict["champion"],
        "challenger_md5": verdict.get("challenger_md5"),
        "reason": verdict.get("reason"),
        "holds": holds,
    }


def hold(root: str | Path, model_name: str, fail_at: str | None = None) -> str:
    """Apply a verdict that kept the champion against a challenger: the pointer records the
    champion's score on that newest holdout as its baseline (held_baseline), in one commit.
    Returns the version held; refuses when there is no such verdict or it is stale."""
    root = Path(root)
    verdict = read_json(root / "reports/promotion.json")
    with exclusive(root, model_name), pipeline_paused(root) as repo:
        on_branch(root)
        pointer, _ = trusted_pointer(root)
        before = pointer.get("baseline") or {}
        baseline = held_baseline(verdict, before)
        if baseline is None:
            raise Refused(
                "reports/promotion.json records no challenger that lost to the "
                f"champion ({verdict.get('reason')}); nothing to hold"
            )
        version = pointer.get("version")
        if version != baseline["version"]:
            raise Refused(
                f"reports/promotion.json judged champion {baseline['version']}, but "
                f"{POINTER} names {version}; run 'dvc repro'"
            )
        if all(before.get(k) == baseline[k] for k in ("version", "as_of", "challenger_md5")):
            raise AlreadyHeld(str(version), str(baseline["as_of"]))
        clean, detail = dvc_pipeline_clean(repo)
        if not clean:
            raise Refused(f"dvc.lock is not up to date with the workspace ({detail}); run 'dvc repro'")
        with _Transaction(root, read_registry(root, model_name), "hold", fail_at) as tx:
            tx.step("start")
            _commit_pointer(
                tx,
                {**pointer, "baseline": baseline},
                f"Hold {model_name} {version} in {STAGE} as of {baseline['as_of']}: {baseline['reason']}",
            )
    return str(version)


def rollback(
    root: str | Path,
    model_name: str,
    reason: str,
    to: str,
    as_of: str | None = None,
    fail_at: str | None = None,
    until: str | None = None,
) -> str:
    """Point production back at version `to` and pin it there (through period `until`, or
    until `unpin`); all or nothing."""
    root = Path(root)
    if not reason or not reason.strip():
        raise Refused("a rollback needs a --reason")
    with exclusive(root, model_name), pipeline_paused(root):
        return _rollback(root, model_name, reason, to, as_of, fail_at, until)


def unpin(root: str | Path, model_name: str, reason: str, fail_at: str | None = None) -> str:
    """Let the automatic loop promote again after a rollback pinned production; one commit."""
    root = Path(root)
    if not reason or not reason.strip():
        raise Refused("unpinning needs a --reason")
    with exclusive(root, model_name), pipeline_paused(root):
        on_branch(root)
        if POINTER in changed_paths(root):
            raise Refused(f"{POINTER} has uncommitted changes; commit or restore it first")
        pointer, _ = trusted_pointer(root)
        if not pointer.get("pinned"):
            raise Refused(f"{model_name} {pointer.get('version')} is not pinned")
        unpinned = {k: v for k, v in pointer.items() if k != "pinned"}
        with _Transaction(root, read_registry(root, model_name), "unpin", fail_at) as tx:
            tx.step("start")
            _commit_pointer(
                tx,
                {**unpinned, "unpinned": reason.strip()},
                f"Unpin {model_name} {pointer['version']} in {STAGE}: {reason.strip()}",
            )
    return str(pointer["version"])


def _rollback(
    root: Path,
    model_name: str,
    reason: str,
    to: str,
    as_of: str | None,
    fail_at: str | None,
    until: str | None = None,
) -> str:
    on_branch(root)
    if POINTER in changed_paths(root):
        raise Refused(f"{POINTER} has uncommitted changes; commit or restore it first")
    pointer = read_pointer(root)
    registry = read_registry(root, model_name)
    target = to
    parse_version(target)
    if target not in registry.versions:
        known = ", ".join(sorted(registry.versions, key=parse_version)) or "none"
        raise Refused(f"no version {target} of {model_name} (known: {known})")
    with contextlib.suppress(Disagreement):
        if target == pointer.get("version") and agreed_record(pointer, registry):
            raise Refused(f"{model_name} {target} is in production already")
    record = _tag_record(registry, target)
    verified_files(root, record)
    with _Transaction(root, registry, "rollback", fail_at) as tx:
        when = as_of or pointer.get("promoted_as_of")
        _point(
            tx,
            model_name,
            target,
            record,
            "rollback",
            when,
            f"rollback: {reason.strip()}",
            pointer,
            pin={"as_of": when, "reason": reason.strip(), "until": until},
        )
    return target


def fetch(
    root: str | Path,
    model_name: str,
    out_dir: str | Path,
    stage: str | None = STAGE,
    version: str | None = None,
) -> dict[str, Any]:
    """Write the model of a stage (or a version) to `out_dir`, verified against its tag's md5."""
    if version is None and stage == STAGE:
        trusted_pointer(root)
    registry = read_registry(root, model_name)
    if version is None:
        active = registry.active(stage or STAGE)
        if not active:
            raise Refused(f"no version of {model_name} is assigned to {stage}")
        version = active[-1]
    if version not in registry.versions:
        raise Refused(f"no version {version} of {model_name}")
    record = _tag_record(registry, version)
    files = verified_files(root, record)
    out = Path(out_dir)
    atomic_write_bytes(out / MODEL_FILE, files[MODEL_FILE])
    atomic_write_bytes(out / METADATA_FILE, files[METADATA_FILE])
    summary = {
        "name": model_name,
        "version": version,
        "tag": record["tag"],
        "commit": record["commit"],
        "md5": record["md5"],
    }
    write_text(out / "version.json", dumps_json(summary))
    return summary


def _maybe_fail(fail_at: str | None, step: str) -> None:
    if fail_at == step:
        raise RegistryError(f"injected failure {step}")
