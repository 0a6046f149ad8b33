import copy
import dataclasses
from pathlib import Path

import pytest
import yaml

from retrain.backtest import Settings
from retrain.data.schema import CleaningPolicy
from retrain.data.splits import WindowPolicy
from retrain.errors import DataError
from retrain.monitor.comparison import ComparePolicy
from retrain.monitor.evaluation import DomainCheck
from retrain.params import SECTIONS, load, section, validate, validated

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = yaml.safe_load((ROOT / "params.yaml").read_text())


def changed(key: str, value) -> dict:
    params = copy.deepcopy(SHIPPED)
    *path, last = key.split(".")
    node = params
    for part in path:
        node = node.setdefault(part, {})
    node[last] = value
    return params


def test_params_are_read_as_dvc_reads_them(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(
        "schema:\n  id: i\n  time: t\n  target: y\n  positive: Yes\n  negative: No\n"
        "  numeric: [x]\ndecide:\n  force: no\n"
    )
    params = load(path)
    assert (params["schema"]["positive"], params["schema"]["negative"]) == ("Yes", "No")
    assert params["decide"]["force"] is False


def test_missing_or_broken_params_are_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("a: [1,\n")
    with pytest.raises(DataError, match="not valid YAML"):
        load(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("- 1\n")
    with pytest.raises(DataError, match="expected a mapping of sections"):
        load(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("prepare: {}\n")
    with pytest.raises(DataError, match=r"params.yaml: schema is required$"):
        load(tmp_path / "params.yaml")
    with pytest.raises(DataError, match="section 'b' is missing"):
        section({"a": {}}, "b")


@pytest.mark.parametrize(
    "spelling,meaning",
    [
        ("no", False),
        ("No", False),
        ("off", False),
        ("false", False),
        ("n", False),
        (False, False),
        ("yes", True),
        ("ON", True),
        ("true", True),
        (True, True),
    ],
)
def test_booleans_mean_what_they_say_in_yaml_1_1_and_1_2_spellings(spelling, meaning):
    assert validate(changed("decide.force", spelling))["decide"]["force"] is meaning
    assert (
        validate(changed("decide.performance.enabled", spelling))["decide"]["performance"]["enabled"]
        is meaning
    )


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("prepare.windw", "all", r"prepare.windw: unknown key; did you mean 'window'\?"),
        ("decide.force", "maybe", r"decide.force = 'maybe': input should be a valid boolean"),
        ("decide.force", 2, r"decide.force = 2: input should be a valid boolean"),
        ("metrics.threshold", "high", r"metrics.threshold: expected a number, got 'high'"),
        ("metrics.threshold", 7, r"metrics.threshold = 7: input should be less than 1"),
        ("decide.min_rows", -5, r"decide.min_rows = -5: input should be greater than or equal to 0"),
        ("prepare.window_batches", 2.7, r"prepare.window_batches = 2.7: input should be a valid integer"),
        ("prepare.window_batches", True, r"prepare.window_batches = True: input should be a valid"),
        ("train.estimator", "xgboost", r"train.estimator = 'xgboost': expected 'logistic_regression'"),
        ("schema.numeric", "tenure", r"schema.numeric = 'tenure': input should be a valid list"),
        ("schema.period", "monthly", r"schema.period: 'monthly' is not a pandas period frequency"),
        ("prepare.cleaning.bounds.tenure", [5, 1], r"bounds of 'tenure' are inverted: low 5.0 > high 1.0"),
        ("prepare.cleaning.bounds.tenure", [0], r"prepare.cleaning.bounds.tenure.1 is required"),
        ("prepare.cleaning.bounds.nope", [0, 1], r"bounds.nope: 'nope' is not a numeric column"),
        ("decide.data_drift.features", {"nope": {"psi": 0.3}}, r"features.nope: 'nope' is not a feature"),
        ("decide.data_drift.correction", "fdr", r"correction = 'fdr': expected 'holm' or 'bh'"),
        ("compare.guards", {"auc": 0.1}, r"compare.guards.auc.\[key\] = 'auc': expected 'accuracy'"),
        ("backtest.every_k", [1], r"backtest.every_k.0 = 1: input should be greater than or equal to 2"),
        ("registry.bump", "huge", r"registry.bump = 'huge': expected 'major', 'minor' or 'patch'"),
        ("typo", {}, r"params.yaml: typo: unknown key; expected one of schema, prepare"),
    ],
)
def test_a_params_mistake_is_one_line_naming_key_value_and_expectation(key, value, message):
    with pytest.raises(DataError, match=message) as err:
        validate(changed(key, value))
    assert "\n" not in str(err.value) and str(err.value).startswith("params.yaml: ")


def test_the_shipped_params_are_the_models_defaults():
    """Deleting a key from params.yaml changes nothing: the model's default is the shipped value."""
    shipped = validate(SHIPPED)
    for name in SECTIONS:
        if name in {"schema", "prepare.cleaning"}:
            continue
        defaults = validated(name, {})
        if name == "simulate":
            defaults["scenarios"] = shipped["simulate"]["scenarios"]
        if name == "prepare":
            defaults["cleaning"]["bounds"] = shipped["prepare"]["cleaning"]["bounds"]
        assert defaults == shipped[name], name


def test_records_built_without_params_use_the_params_defaults():
    shipped = validate(SHIPPED)
    assert WindowPolicy() == WindowPolicy.from_params(shipped["prepare"])
    assert CleaningPolicy() == CleaningPolicy.from_params({})
    assert ComparePolicy() == ComparePolicy.from_params("roc_auc", {})
    domain = shipped["evaluate"]["domain_classifier"]
    assert dataclasses.asdict(DomainCheck()) == domain
    settings = Settings.from_params(shipped)
    fields = {f.name: f.default for f in dataclasses.fields(Settings) if f.name in shipped["profile"]}
    assert fields == {k: getattr(settings, k) for k in fields}


def test_every_stage_reads_params_through_the_model():
    """No stage or CLI command reads params.yaml by another route."""
    for path in [*ROOT.glob("stages/*.py"), ROOT / "src/retrain/cli.py"]:
        text = path.read_text()
        assert "yaml" not in text.replace("params.yaml", ""), path
