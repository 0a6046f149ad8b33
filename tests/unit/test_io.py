import os
from pathlib import Path

import pandas as pd
import pytest

from retrain.data import files
from retrain.errors import DataError


def test_atomic_write_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out" / "a.json"
    files.write_json(target, {"a": 1})
    files.write_json(target, {"b": 2})
    assert files.read_json(target) == {"b": 2}
    assert os.listdir(target.parent) == ["a.json"]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "a.txt"
    files.write_text(target, "old")
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        files.write_text(target, "new")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]


def test_nan_is_not_written_as_invalid_json(tmp_path):
    with pytest.raises(ValueError):
        files.write_json(tmp_path / "x.json", {"v": float("nan")})


def test_parquet_bytes_are_deterministic(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", None]})
    files.write_parquet(tmp_path / "1.parquet", frame)
    files.write_parquet(tmp_path / "2.parquet", frame)
    assert (tmp_path / "1.parquet").read_bytes() == (tmp_path / "2.parquet").read_bytes()
    pd.testing.assert_frame_equal(files.read_parquet(tmp_path / "1.parquet", columns=["a"]), frame[["a"]])


def test_empty_file_is_one_clear_error(tmp_path):
    path = tmp_path / "2025-01.csv"
    path.write_text("")
    with pytest.raises(DataError, match="2025-01.csv: empty file"):
        files.read_raw_batch(path)


def test_non_utf8_bytes_are_refused(tmp_path):
    path = tmp_path / "2025-01.csv"
    path.write_bytes("id,name\n1,Jos\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8 text"):
        files.read_raw_batch(path)


def test_byte_order_mark_is_ignored_and_values_stay_text(tmp_path):
    path = tmp_path / "2025-01.csv"
    path.write_bytes("\ufeffid,n\n001,\n".encode())
    frame = files.read_raw_batch(path)
    assert list(frame.columns) == ["id", "n"]
    assert frame.loc[0, "id"] == "001" and frame.loc[0, "n"] == ""


def test_truncated_parquet_is_refused(tmp_path):
    path = tmp_path / "2025-01.parquet"
    files.write_parquet(path, pd.DataFrame({"a": range(100)}))
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DataError, match="not a readable Parquet file"):
        files.read_raw_batch(path)


def test_list_batches_sorts_by_period_and_skips_other_files(tmp_path):
    for name in ["2025-02.csv", "2025-01.parquet", ".2025-03.csv.tmp"]:
        (tmp_path / name).write_text("x")
    assert [p.name for p in files.list_batches(tmp_path)] == ["2025-01.parquet", "2025-02.csv"]
    with pytest.raises(DataError, match="batch directory not found"):
        files.list_batches(tmp_path / "missing")


def test_paths_outside_the_repository_are_refused(tmp_path):
    from retrain.data.files import confined

    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "link").symlink_to(tmp_path)
    assert confined("deploy/model", tmp_path / "repo") == Path("deploy/model")
    for escape in ("../elsewhere", str(tmp_path / "x"), "link/x", "deploy/../../x"):
        with pytest.raises(DataError, match="outside the repository"):
            confined(escape, tmp_path / "repo")


def test_an_output_path_may_be_anywhere_but_the_recorded_state(tmp_path):
    from retrain.data.files import output_path

    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    (repo / "to_models").symlink_to(repo / "models")
    for fine in ("reports/job.md", str(tmp_path / "out.csv"), "../x.csv", "modelsish/x"):
        assert output_path(fine, repo) == Path(fine)
    for kept in (
        "models/champion.json",
        "to_models/x",
        "dvc.lock",
        "./data/raw/x.csv",
        "reports/../.git/HEAD",
        "data/prepared",
        ".dvc/config",
        str(repo / "params.yaml"),
    ):
        with pytest.raises(DataError, match="which the repository records"):
            output_path(kept, repo)


def test_a_duplicated_csv_header_is_refused_before_pandas_renames_it(tmp_path):
    from retrain.data.files import read_raw_batch

    path = tmp_path / "2025-01.csv"
    path.write_text("a,b,a\n1,2,3\n")
    with pytest.raises(DataError, match=r"2025-01.csv: column 'a' appears twice in the header"):
        read_raw_batch(path)


def test_batch_files_are_matched_case_insensitively_and_strays_are_refused(tmp_path):
    from retrain.data.files import batch_stem, list_batches

    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("2025-02.CSV", "2025-01.csv.gz", "2025-03.Parquet", ".gitignore", "2025-04.csv.dvc"):
        (raw / name).write_text("x")
    found = list_batches(raw)
    assert [p.name for p in found] == ["2025-01.csv.gz", "2025-02.CSV", "2025-03.Parquet"]
    assert [batch_stem(p) for p in found] == ["2025-01", "2025-02", "2025-03"]
    for stray in ("notes.txt", "2025-05.json", "2025-06.xlsx"):
        (raw / stray).write_text("x")
        with pytest.raises(DataError, match=f"{stray}: not a batch file; expected"):
            list_batches(raw)
        (raw / stray).unlink()


def test_a_gzipped_csv_reads_as_the_csv_it_holds(tmp_path):
    import gzip

    from retrain.data.files import read_raw_batch

    text = "id,x\n1,2\n3,\n"
    (tmp_path / "2025-01.csv").write_text(text)
    (tmp_path / "2025-01.csv.gz").write_bytes(gzip.compress(text.encode()))
    pd.testing.assert_frame_equal(
        read_raw_batch(tmp_path / "2025-01.csv.gz"), read_raw_batch(tmp_path / "2025-01.csv")
    )
    (tmp_path / "2025-02.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="2025-02.csv.gz: not a readable gzip file"):
        read_raw_batch(tmp_path / "2025-02.csv.gz")


@pytest.mark.parametrize("text,row", [("id,x,y\n1,2,3\n4,5\n6,7,8\n", 2), ("id,x,y\n1,2,3\n4,5,6\n7", 3)])
def test_a_csv_row_with_fewer_fields_than_the_header_is_refused(tmp_path, text, row):
    from retrain.data.files import read_raw_batch

    (tmp_path / "b.csv").write_text(text)
    with pytest.raises(
        DataError,
        match=rf"b.csv: row {row} \(line {row + 1}\) has \d field\(s\) "
        "where the header has 3",
    ):
        read_raw_batch(tmp_path / "b.csv")


@pytest.mark.parametrize("sizes", [[2500], [999, 1, 1000, 1500], [3000, 0, 7]])
def test_a_file_written_in_parts_has_the_bytes_of_the_whole_frame(tmp_path, monkeypatch, sizes):
    """write_parquet_tables cuts row groups where write_parquet does, whatever the parts."""
    import numpy as np
    import pandas as pd

    monkeypatch.setattr(files, "ROW_GROUP_ROWS", 1000)
    n = sum(sizes)
    rng = np.random.default_rng(1)
    whole = pd.DataFrame(
        {
            "id": pd.array([f"c{i}" for i in range(n)], dtype="str"),
            "x": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
            "colour": pd.array(rng.choice(["red", "blue", None], n), dtype="str"),
            "label": pd.array([pd.NA] * n, dtype="Int8"),
            "ts": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 9**6, n), unit="s"),
        }
    )
    starts = np.cumsum([0, *sizes])
    parts = (whole.iloc[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True))
    files.write_parquet_tables(tmp_path / "parts.parquet", (files.arrow_table(p, {"k": "v"}) for p in parts))
    files.write_parquet(tmp_path / "whole.parquet", whole, {"k": "v"})
    assert (tmp_path / "parts.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert pq_row_groups(tmp_path / "whole.parquet") == [1000] * (n // 1000) + [n % 1000] * (n % 1000 > 0)


def pq_row_groups(path):
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
