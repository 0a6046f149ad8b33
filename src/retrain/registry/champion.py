"""The champion pointer and the one verified way to load the model it names, or the challenger
train wrote."""

from __future__ import annotations

import io
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from retrain.data.files import (
    md5_bytes,
    md5_file,
    read_json,
    read_npy,
)
from retrain.errors import RegistryError
from retrain.log import get
from retrain.records import ModelMetadata, Pointer, TagRecord
from retrain.registry.tags import (
    STAGE,
    Disagreement,
    Registry,
    parse_version,
    read_registry,
    tag_record,
    tags_root,
    version_tag,
)

POINTER = "models/champion.json"


CHALLENGER_DIR = "models/challenger"


MODEL_FILE = "model.skops"


METADATA_FILE = "metadata.json"


PROFILE_FILE = "profile.json"


REFERENCE_FILE = "reference.parquet"


log = get("registry")


def empty_pointer(name: str) -> Pointer:
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


def read_pointer(root: str | Path) -> Pointer:
    path = Path(root) / POINTER
    pointer = read_json(path)
    if not isinstance(pointer, dict) or "version" not in pointer:
        raise RegistryError(f"{POINTER}: expected a JSON object with a 'version' key")
    return cast(Pointer, pointer)


@dataclass
class Champion:
    pointer: Pointer
    model: Any
    metadata: ModelMetadata
    profile: dict[str, Any] | None = None
    reference: Any = None
    trained_rows: Any = None  # fingerprints of its training rows (splits.row_fingerprints)


def _repair(version: str | None) -> str:
    target = version or "<version>"
    return (
        f"repair: `retrain rollback --to {target} --reason ...` points the pointer and the "
        f"stage tags at one version (`retrain verify` shows every reader)"
    )


def agreed_record(pointer: Pointer, registry: Registry) -> TagRecord | None:
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
    record = tag_record(registry, version)
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


def trusted_pointer(root: str | Path) -> tuple[Pointer, TagRecord | None]:
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
        f"{str(pointer['commit'])[:12]}, md5 {pointer['md5']}",
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


def has_commit(root: str | Path, commit: str) -> bool:
    found = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=root, capture_output=True)
    return found.returncode == 0


def cached_objects(root: str | Path, md5s: list[str]) -> list[bytes] | None:
    """The bytes of each md5 from the local DVC cache, or None unless the cache holds them all:
    DVC stores a file under its md5, so reading it there skips opening the repository at a
    commit (the caller still checks every md5)."""
    from dvc.config import Config

    configured = Config(dvc_dir=str(Path(root).resolve() / ".dvc"))["cache"].get("dir")
    objects = Path(configured or Path(root) / ".dvc" / "cache") / "files" / "md5"
    paths = [objects / md5[:2] / md5[2:] for md5 in md5s]
    if not all(path.is_file() for path in paths):
        return None
    return [path.read_bytes() for path in paths]


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


def verified_files(root: str | Path, record: TagRecord) -> dict[str, bytes]:
    """The model and its side files at the version tag's commit, each checked against the md5
    in the tag's record before anything reads them; keyed by file name."""
    beside = Path(record["path"])
    side = list(record["files"]) if "files" in record else LEGACY_SIDE_FILES
    names = {MODEL_FILE: record["path"], **{n: str(beside.with_name(n)) for n in side}}
    expected = {MODEL_FILE: record["md5"], **(record.get("files") or {})}
    known = has_commit(root, record["commit"])
    cached = (
        cached_objects(root, [expected[name] for name in names])
        if known and expected.keys() == names.keys()
        else None
    )
    if cached is not None:
        files = dict(zip(names, cached, strict=True))
    else:
        try:
            found = read_many_at_commit(root, list(names.values()), record["commit"])
        except RegistryError:
            if known:
                raise
            raise RegistryError(
                f"tag {record['tag']} names commit {record['commit'][:12]}, which "
                "this repository does not have; fetch it (git fetch --tags)"
            ) from None
        files = {name: found[path] for name, path in names.items()}
    if "files" not in record:
        log.warning(
            "tag %s predates side-file md5s: %s are read unverified",
            record["tag"],
            ", ".join(LEGACY_SIDE_FILES),
        )
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


def load_trusted(root: str | Path, pointer: Pointer, record: TagRecord) -> Champion:
    """The champion named by a pointer whose agreement with `record` was already checked
    (trusted_pointer); every file is still checked against the record's md5s."""
    import pandas as pd

    from retrain.model.modeling import load

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
    from retrain.model.modeling import load

    found = _challenger_model(Path(directory))
    if found is None:
        return None, None
    return load(found[0]), found[1]
