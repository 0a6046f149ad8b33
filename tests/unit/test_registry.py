import json

import pytest

from retrain import registry
from retrain.errors import RegistryError
from retrain.io import md5_bytes
from retrain.modeling import dump, fit
from retrain.registry import empty_pointer, is_own_output, load_champion, next_version
from retrain.splits import WindowPolicy, split


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


def test_cold_start_pointer_loads_no_champion(tmp_path):
    assert load_champion(tmp_path, empty_pointer("m")) is None


@pytest.fixture
def model_bytes(toy_batch, toy_schema):
    data = split([toy_batch("2025-01"), toy_batch("2025-02", seed=2)], toy_schema, WindowPolicy())
    return dump(fit(data.train, toy_schema, "logistic_regression", {}, 0))


def pointer_for(data: bytes) -> dict:
    return {**empty_pointer("m"), "version": "v1.0.0", "tag": "m@v1.0.0", "commit": "a" * 40,
            "path": "models/challenger/model.joblib", "md5": md5_bytes(data)}


def test_champion_loads_when_md5_matches(monkeypatch, tmp_path, model_bytes):
    import io

    import pandas as pd
    buffer = io.BytesIO()
    pd.DataFrame({"x1": [1.0]}).to_parquet(buffer)
    files = {"models/challenger/model.joblib": model_bytes,
             "models/challenger/metadata.json": json.dumps({"trained": True}).encode(),
             "models/challenger/profile.json": json.dumps({"rows": 1}).encode(),
             "models/challenger/reference.parquet": buffer.getvalue()}
    monkeypatch.setattr(registry, "read_many_at_commit",
                        lambda root, paths, commit: {p: files[p] for p in paths})
    champion = load_champion(tmp_path, pointer_for(model_bytes))
    assert champion.metadata == {"trained": True} and hasattr(champion.model, "predict_proba")
    assert champion.profile == {"rows": 1} and list(champion.reference.columns) == ["x1"]


def test_tampered_model_is_refused_before_unpickling(monkeypatch, tmp_path, model_bytes):
    unpickled = []
    monkeypatch.setattr(registry, "load", lambda data: unpickled.append(data))
    monkeypatch.setattr(registry, "read_many_at_commit",
                        lambda root, paths, commit: {p: model_bytes + b"x" for p in paths})
    with pytest.raises(RegistryError, match="does not match .* refusing to load it"):
        load_champion(tmp_path, pointer_for(model_bytes))
    assert unpickled == []


def test_pointer_with_a_version_but_no_commit_is_refused(tmp_path):
    with pytest.raises(RegistryError, match="has no 'commit'"):
        load_champion(tmp_path, {**empty_pointer("m"), "version": "v1.0.0"})


def ref(tag, commit, message="", time=0):
    return {"tag": tag, "commit": commit, "time": time, "message": message}


def test_registry_reads_versions_records_and_stage_events():
    reg = registry.parse_registry("m", [
        ref("m@v1.0.0", "c1", 'm v1.0.0: first\n\n{"md5": "aa", "path": "p"}'),
        ref("m@v1.1.0", "c2"), ref("m#prod#1", "c1"), ref("m#prod!#2", "c1"),
        ref("m#prod#3", "c2"), ref("other@v9.0.0", "c9"), ref("m@latest", "c3"),
    ])
    assert set(reg.versions) == {"v1.0.0", "v1.1.0"}
    assert reg.versions["v1.0.0"]["record"] == {"md5": "aa", "path": "p"}
    assert [(e.number, e.assign, e.version) for e in reg.events] == [
        (1, True, "v1.0.0"), (2, False, "v1.0.0"), (3, True, "v1.1.0")]
    assert reg.active("prod") == ["v1.1.0"] and reg.next_number() == 4


def test_active_follows_the_last_event_of_each_version_by_number():
    reg = registry.parse_registry("m", [
        ref("m@v1.0.0", "c1"), ref("m@v1.1.0", "c2"),
        ref("m#prod#10", "c1"), ref("m#prod#9", "c2"), ref("m#prod!#8", "c1"),
    ])
    assert reg.active("prod") == ["v1.1.0", "v1.0.0"]
    assert reg.active("staging") == []


def test_schema_change_bumps_by_its_own_policy():
    assert registry.bump_for("minor", True, "major") == "major"
    assert registry.bump_for("minor", False, "major") == "minor"
