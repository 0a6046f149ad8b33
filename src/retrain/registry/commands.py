"""The commands that move production: promote, hold, rollback, unpin, fetch; and the rules they apply."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any, cast

from retrain.data.files import (
    atomic_write_bytes,
    dumps_json,
    md5_file,
    read_json,
    write_text,
)
from retrain.errors import Refused
from retrain.records import Baseline, Decision, Pin, Pointer, Promotion, TagRecord
from retrain.registry.champion import (
    CHALLENGER_DIR,
    METADATA_FILE,
    MODEL_FILE,
    POINTER,
    agreed_record,
    read_pointer,
    side_file_md5s,
    trusted_pointer,
    verified_files,
)
from retrain.registry.git import changed_paths, git, is_own_output, on_branch
from retrain.registry.tags import (
    STAGE,
    VERSION_RE,
    Disagreement,
    bump_for,
    next_version,
    parse_version,
    read_registry,
    tag_record,
    version_tag,
)
from retrain.registry.transaction import Transaction, dvc_pipeline_clean, exclusive, pipeline_paused


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


def _commit_pointer(tx: Transaction, pointer: Pointer, message: str) -> None:
    """Write the pointer and commit it alone; the transaction undoes it if a later step fails."""
    write_text(tx.root / POINTER, dumps_json(pointer))
    git(tx.root, "add", "--", POINTER)
    git(tx.root, "commit", "-q", "-m", message[:200], "--", POINTER)
    tx.step("after_pointer_commit")


def _point(
    tx: Transaction,
    name: str,
    version: str,
    record: TagRecord,
    action: str,
    as_of: str | None,
    reason: str,
    before: Pointer,
    pin: Pin | None = None,
) -> None:
    """Commit the pointer, then make `version` the only one assigned to prod. The versions
    rolled back from are carried over from `before` (the pointer until now); `pin` (a
    rollback's) holds production there."""
    rolled_back = [r for r in before.get("rolled_back") or [] if r.get("md5") != record["md5"]]
    if action == "rollback" and before.get("version") and before.get("md5") != record["md5"]:
        rolled_back.append(
            {"version": str(before["version"]), "md5": str(before["md5"]), "as_of": as_of, "reason": reason}
        )
    pointer: Pointer = {
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
    }
    if record.get("tuned"):
        pointer["tuned"] = record["tuned"]
    if rolled_back:
        pointer["rolled_back"] = rolled_back
    if pin:
        pointer["pinned"] = pin
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
    pointer: Pointer, challenger: str | None, as_of: str | None, freq: str | None = None
) -> str | None:
    """Why no challenger may be promoted now, or None: production is pinned by a rollback (until
    `retrain unpin`, or through the pin's `until` period), or the challenger's bytes are those
    of a version production was rolled back from."""
    pin = pointer.get("pinned")
    if pin:
        import pandas as pd

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


def locked_verdict(verdict: Promotion, pointer: Pointer, freq: str) -> Promotion:
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


def schema_changed(before: Any, after: Any, decision: Decision) -> bool:
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
        raise AlreadyPromoted(str(pointer["version"]))
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
    decision = cast(Decision, read_json(decided) if decided.exists() else {})
    changed = bool(current) and schema_changed(current.get("schema"), metadata.get("schema"), decision)
    issued = [*registry.versions, *versions_ever_issued(root, model_name)]
    version = next_version(issued, bump_for(bump, changed, on_schema_change))
    tag = version_tag(model_name, version)
    with Transaction(root, registry, "promote", fail_at) as tx:
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
        record: dict[str, Any] = {
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
        tuning = verdict.get("challenger_tuning") or {}
        if tuning.get("tuned"):
            record["tuned"] = tuning
        tx.tag(
            tag,
            commit,
            f"{model_name} {version}: {verdict['reason']}\n\n{json.dumps(record, sort_keys=True)}",
        )
        registry.versions[version] = {"commit": commit, "tag": tag, "record": record}
        tx.step("after_version_tag")
        _point(
            tx,
            model_name,
            version,
            cast(TagRecord, {**record, "tag": tag}),
            "promote",
            verdict.get("as_of"),
            verdict["reason"],
            pointer,
        )
    return version


def held_baseline(verdict: Promotion, previous: Baseline | None = None) -> Baseline | None:
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
    holds = int(previous.get("holds", 1)) + 1 if previous and previous.get("version") == version else 1
    baseline: Baseline = {
        "version": version,
        "as_of": verdict.get("as_of"),
        "metrics": verdict["champion"] or {},
        "challenger_md5": verdict.get("challenger_md5"),
        "reason": verdict.get("reason"),
        "holds": holds,
    }
    if "asked_by" in verdict:
        baseline["asked_by"] = list(verdict["asked_by"])
    if "challenger_tuning" in verdict:
        baseline["challenger_tuned"] = bool(verdict["challenger_tuning"]["tuned"])
    return baseline


def hold(root: str | Path, model_name: str, fail_at: str | None = None) -> str:
    """Apply a verdict that kept the champion against a challenger: the pointer records the
    champion's score on that newest holdout as its baseline (held_baseline), in one commit.
    Returns the version held; refuses when there is no such verdict or it is stale."""
    root = Path(root)
    verdict = read_json(root / "reports/promotion.json")
    with exclusive(root, model_name), pipeline_paused(root) as repo:
        on_branch(root)
        pointer, _ = trusted_pointer(root)
        before = pointer.get("baseline")
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
        if before and all(before.get(k) == baseline[k] for k in ("version", "as_of", "challenger_md5")):
            raise AlreadyHeld(str(version), str(baseline["as_of"]))
        clean, detail = dvc_pipeline_clean(repo)
        if not clean:
            raise Refused(f"dvc.lock is not up to date with the workspace ({detail}); run 'dvc repro'")
        with Transaction(root, read_registry(root, model_name), "hold", fail_at) as tx:
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
        with Transaction(root, read_registry(root, model_name), "unpin", fail_at) as tx:
            tx.step("start")
            _commit_pointer(
                tx,
                cast(Pointer, {**unpinned, "unpinned": reason.strip()}),
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
    record = tag_record(registry, target)
    verified_files(root, record)
    with Transaction(root, registry, "rollback", fail_at) as tx:
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
    record = tag_record(registry, version)
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
