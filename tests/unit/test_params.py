import pytest

from retrain.errors import DataError
from retrain.params import load, section


def test_params_are_read_as_dvc_reads_them(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("schema:\n  positive: Yes\n  negative: No\nflag: true\n")
    params = load(path)
    assert params["schema"] == {"positive": "Yes", "negative": "No"} and params["flag"] is True


def test_missing_or_broken_params_are_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("a: [1,\n")
    with pytest.raises(DataError, match="not valid YAML"):
        load(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("a: 1\n")
    with pytest.raises(DataError, match="section 'b' is missing"):
        section(load(tmp_path / "params.yaml"), "b")
