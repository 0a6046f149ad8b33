import json

import pytest

from retrain.data.files import md5_bytes
from retrain.data.splits import WindowPolicy, split
from retrain.errors import RegistryError
from retrain.model import modeling as modeling_module
from retrain.model.modeling import dump, fit
from retrain.registry import champion as champion_module
from retrain.registry import tags as tags_module
from retrain.registry.champion import empty_pointer
from retrain.registry.git import is_own_output
from retrain.registry.tags import next_version


def test_first_version_is_v1_and_bumps_follow_policy():
    assert next_version([], "minor") == "v1.0.0"
    assert next_version(["v1.0.0", "v1.2.0", "v1.10.0"], "minor") == "v1.11.0"
    assert next_version(["v1.2.3"], "major") == "v2.0.0"
    assert next_version(["v1.2.3"], "patch") == "v1.2.4"
    with pytest.raises(RegistryError, match="registry.bump"):
        next_version(["v1.0.0"], "huge")


def test_own_outputs_are_only_lock_reports_and_gitignores():
    assert is_own_output("dvc.lock") and is_own_output("reports/decision.json")
    assert is_own_output("data/prepared/.gitignore")
    assert not is_own_output("params.yaml") and not is_own_output("data/raw/2025-01.csv")
    assert not is_own_output("models/champion.json")


MD5 = "a" * 32


def record(version: str, commit: str, md5: str = MD5, **extra) -> str:
    body = {
        "version": version,
        "commit": commit,
        "path": "models/challenger/model.joblib",
        "md5": md5,
        **extra,
    }
    return f"m {version}: promoted\n\n{json.dumps(body)}"


def tags(*extra) -> tags_module.Registry:
    """v1.0.0 at c1 then v1.1.0 at c2, v1.1.0 alone in prod."""
    return tags_module.parse_registry(
        "m",
        [
            ref("m@v1.0.0", "c1", record("v1.0.0", "c1")),
            ref("m@v1.1.0", "c2", record("v1.1.0", "c2", "b" * 32)),
            ref("m#prod#1", "c1"),
            ref("m#prod!#2", "c1"),
            ref("m#prod#3", "c2"),
            *extra,
        ],
    )


def pointer(version="v1.1.0", commit="c2", md5="b" * 32) -> dict:
    return {
        **empty_pointer("m"),
        "version": version,
        "tag": f"m@{version}",
        "commit": commit,
        "path": "models/challenger/model.joblib",
        "md5": md5,
    }


def test_pointer_tag_and_stage_tags_that_agree_give_the_tags_record():
    found = champion_module.agreed_record(pointer(), tags())
    assert (found["tag"], found["commit"], found["md5"]) == ("m@v1.1.0", "c2", "b" * 32)
    assert champion_module.agreed_record(empty_pointer("m"), tags_module.parse_registry("m", [])) is None


@pytest.mark.parametrize(
    "case,message",
    [
        ("edited md5", r"says m v1.1.0 has md5 c+, but tag m@v1.1.0 records b+; repair: `retrain rollback"),
        ("older version's bytes", r"says m v1.1.0 has commit c1, but tag m@v1.1.0 records c2"),
        ("unknown version", r"names m v7.0.0, but no tag m@v7.0.0 records it \(known: v1.0.0, v1.1.0\)"),
        ("no tags", r"this clone has no version tags of m; fetch them: git fetch --tags"),
        ("gto assign", r"the stage tags \(gto show\) put v1.1.0 and v1.0.0 in prod"),
        ("deleted stage tag", r"the stage tags \(gto show\) put no version in prod"),
        (
            "moved version tag",
            r"tag m@v1.1.0 points at commit c3, but its record names c2: the tag was moved",
        ),
        ("cold start pointer", r"names no champion, but the stage tags put m v1.1.0 in prod"),
    ],
)
def test_any_disagreement_between_readers_stops_with_one_line(case, message):
    named, reg = pointer(), tags()
    if case == "edited md5":
        named["md5"] = "c" * 32
    elif case == "older version's bytes":
        named["commit"] = "c1"
    elif case == "unknown version":
        named = pointer("v7.0.0", "c9")
    elif case == "no tags":
        reg = tags_module.parse_registry("m", [])
    elif case == "gto assign":
        reg = tags(ref("m#prod#4", "c1"))
    elif case == "deleted stage tag":
        reg = tags_module.parse_registry(
            "m",
            [
                ref("m@v1.0.0", "c1", record("v1.0.0", "c1")),
                ref("m@v1.1.0", "c2", record("v1.1.0", "c2", "b" * 32)),
                ref("m#prod#1", "c1"),
                ref("m#prod!#2", "c1"),
            ],
        )
    elif case == "moved version tag":
        reg = tags_module.parse_registry(
            "m", [ref("m@v1.1.0", "c3", record("v1.1.0", "c2", "b" * 32)), ref("m#prod#1", "c3")]
        )
    elif case == "cold start pointer":
        named = empty_pointer("m")
    with pytest.raises(tags_module.Disagreement, match=message) as err:
        champion_module.agreed_record(named, reg)
    assert "\n" not in str(err.value)


@pytest.fixture
def model_bytes(toy_batch, toy_schema):
    data = split([toy_batch("2025-01"), toy_batch("2025-02", seed=2)], toy_schema, WindowPolicy())
    return dump(fit(data.train, toy_schema, "logistic_regression", {}, 0))


@pytest.fixture
def stored(monkeypatch, model_bytes):
    """The files of a version as DVC returns them at its commit."""
    import io

    import pandas as pd

    buffer = io.BytesIO()
    pd.DataFrame({"x1": [1.0]}).to_parquet(buffer)
    files = {
        "model.joblib": model_bytes,
        "metadata.json": json.dumps({"trained": True}).encode(),
        "profile.json": json.dumps({"rows": 1}).encode(),
        "reference.parquet": buffer.getvalue(),
    }
    monkeypatch.setattr(
        champion_module,
        "read_many_at_commit",
        lambda root, paths, commit: {p: files[p.rsplit("/", 1)[-1]] for p in paths},
    )
    return files


def tag_record(files: dict, **changes) -> dict:
    found = {
        "tag": "m@v1.0.0",
        "commit": "c1",
        "path": "models/challenger/model.joblib",
        "md5": md5_bytes(files["model.joblib"]),
        "files": {n: md5_bytes(b) for n, b in files.items() if n != "model.joblib"},
    }
    return {**found, **changes}


def test_champion_loads_when_every_file_matches_its_tag(tmp_path, stored):
    champion = champion_module.load_trusted(tmp_path, pointer(), tag_record(stored))
    assert champion.metadata == {"trained": True} and hasattr(champion.model, "predict_proba")
    assert champion.profile == {"rows": 1} and list(champion.reference.columns) == ["x1"]


@pytest.mark.parametrize("planted", ["model.joblib", "metadata.json", "profile.json", "reference.parquet"])
def test_a_file_that_differs_from_its_tag_is_refused_before_it_is_read(
    monkeypatch, tmp_path, stored, planted
):
    unpickled = []
    monkeypatch.setattr(modeling_module, "load", lambda data: unpickled.append(data))
    expected = tag_record(stored)
    stored[planted] = stored[planted] + b"x"
    with pytest.raises(RegistryError, match=f"{planted} at c1: md5 .* tag m@v1.0.0; refusing"):
        champion_module.load_trusted(tmp_path, pointer(), expected)
    assert unpickled == []


def cache_repo(root, files: dict) -> str:
    """A git repository with one commit and `files` in its DVC cache under their md5s."""
    import subprocess

    from tests.helpers import command_env

    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "c"], cwd=root, check=True, env=command_env()
    )
    for data in files.values():
        md5 = md5_bytes(data)
        (root / ".dvc/cache/files/md5" / md5[:2]).mkdir(parents=True, exist_ok=True)
        (root / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).write_bytes(data)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True
    ).stdout.strip()


def test_a_champion_in_the_local_cache_is_read_by_md5_and_still_checked(monkeypatch, tmp_path, stored):
    commit = cache_repo(tmp_path, stored)
    monkeypatch.setattr(champion_module, "read_many_at_commit", lambda *a: pytest.fail("opened the repo"))
    record = tag_record(stored, commit=commit)
    champion = champion_module.load_trusted(tmp_path, pointer(), record)
    assert champion.profile == {"rows": 1} and hasattr(champion.model, "predict_proba")

    md5 = record["files"]["profile.json"]
    (tmp_path / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).write_bytes(b'{"rows": 2}')
    with pytest.raises(RegistryError, match="profile.json at .*: md5 .* tag m@v1.0.0; refusing"):
        champion_module.load_trusted(tmp_path, pointer(), record)


def test_a_cache_object_of_a_commit_this_repository_lacks_is_not_read(monkeypatch, tmp_path, stored):
    cache_repo(tmp_path, stored)

    def unreadable(root, paths, commit):
        raise RegistryError(f"cannot read {paths[0]} at commit {commit[:12]}")

    monkeypatch.setattr(champion_module, "read_many_at_commit", unreadable)
    with pytest.raises(RegistryError, match="names commit 0{12}, which this repository does not have"):
        champion_module.verified_files(tmp_path, tag_record(stored, commit="0" * 40))


def ref(tag, commit, message="", time=0):
    return {"tag": tag, "commit": commit, "time": time, "message": message}


def test_registry_reads_versions_records_and_stage_events():
    reg = tags_module.parse_registry(
        "m",
        [
            ref("m@v1.0.0", "c1", 'm v1.0.0: first\n\n{"md5": "aa", "path": "p"}'),
            ref("m@v1.1.0", "c2"),
            ref("m#prod#1", "c1"),
            ref("m#prod!#2", "c1"),
            ref("m#prod#3", "c2"),
            ref("other@v9.0.0", "c9"),
            ref("m@latest", "c3"),
        ],
    )
    assert set(reg.versions) == {"v1.0.0", "v1.1.0"}
    assert reg.versions["v1.0.0"]["record"] == {"md5": "aa", "path": "p"}
    assert [(e.number, e.assign, e.version) for e in reg.events] == [
        (1, True, "v1.0.0"),
        (2, False, "v1.0.0"),
        (3, True, "v1.1.0"),
    ]
    assert reg.active("prod") == ["v1.1.0"] and reg.next_number() == 4


def test_active_follows_the_last_event_of_each_version_by_number():
    reg = tags_module.parse_registry(
        "m",
        [
            ref("m@v1.0.0", "c1"),
            ref("m@v1.1.0", "c2"),
            ref("m#prod#10", "c1"),
            ref("m#prod#9", "c2"),
            ref("m#prod!#8", "c1"),
        ],
    )
    assert reg.active("prod") == ["v1.1.0", "v1.0.0"]
    assert reg.active("staging") == []


def test_schema_change_bumps_by_its_own_policy():
    assert tags_module.bump_for("minor", True, "major") == "major"
    assert tags_module.bump_for("minor", False, "major") == "minor"


def test_a_rollback_pin_holds_production_until_unpinned_or_its_last_period():
    from retrain.registry.commands import production_lock

    pinned = {"version": "v1.1.0", "pinned": {"as_of": "2025-05", "reason": "sales", "until": None}}
    assert "pinned to v1.1.0" in production_lock(pinned, "f" * 32, "2026-01", "M")
    assert "until 'retrain unpin" in production_lock(pinned, None, "2026-01", "M")
    until = {**pinned, "pinned": {**pinned["pinned"], "until": "2025-07"}}
    assert "through 2025-07" in production_lock(until, "f" * 32, "2025-07", "M")
    assert production_lock(until, "f" * 32, "2025-08", "M") is None
    assert "through 2025-07" in production_lock(until, "f" * 32, "2025-08", None)  # no calendar
    assert production_lock({"version": "v1.1.0"}, "f" * 32, "2025-08", "M") is None


def test_the_bytes_of_a_version_rolled_back_from_are_never_promoted_again():
    from retrain.registry.commands import production_lock

    pointer = {
        "version": "v1.1.0",
        "rolled_back": [
            {"version": "v1.2.0", "md5": "b" * 32, "as_of": "2025-05", "reason": "rollback: sales"}
        ],
    }
    assert "bytes are those of v1.2.0" in production_lock(pointer, "b" * 32, "2025-09", "M")
    assert production_lock(pointer, "c" * 32, "2025-09", "M") is None


def test_new_categories_count_as_a_schema_change_for_the_version_bump():
    from retrain.registry.commands import schema_changed
    from retrain.registry.tags import bump_for

    schema = {"numeric": ["a"], "categorical": ["b"]}
    quiet = {"triggers": [{"name": "schema_change", "value": []}]}
    new = {"triggers": [{"name": "schema_change", "value": ["new_category"]}]}
    ignored = {"triggers": [{"name": "schema_change", "value": ["new_column", "out_of_range"]}]}
    assert not schema_changed(schema, schema, quiet) and not schema_changed(schema, schema, {})
    assert schema_changed(schema, schema, new) and not schema_changed(schema, schema, ignored)
    assert schema_changed(schema, {**schema, "numeric": ["a", "c"]}, quiet)
    assert bump_for("minor", schema_changed(schema, schema, new), "major") == "major"
