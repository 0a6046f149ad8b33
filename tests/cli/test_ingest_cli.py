"""`retrain ingest` on a copy of this repository: the embedded demo warehouse, nothing to set up."""

import shutil

from retrain.data.files import md5_file
from tests.helpers import ROOT, run

SHIPPED = ["params.yaml", ".dvc/config", "sql/batch.sql", "data/warehouse/demo.sqlite"]


def copy(tmp_path):
    for rel in SHIPPED:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, tmp_path / rel)
    shutil.copytree(ROOT / "data/raw", tmp_path / "data/raw", ignore=shutil.ignore_patterns("2026-*"))
    return tmp_path


def test_the_demo_warehouse_lists_then_writes_its_new_periods_and_then_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("RETRAIN_DB_URL", raising=False)
    repo = copy(tmp_path)
    dry = run(["retrain", "ingest", "--dry-run", "--today", "2026-11-29"], repo).stdout.splitlines()
    assert [line.split(":")[0] for line in dry] == ["2026-01", "2026-02", "2026-03"]
    assert dry[0].endswith("rows; would write data/raw/2026-01.parquet")
    assert not list((repo / "data/raw").glob("2026-*"))

    run(["retrain", "ingest", "--today", "2026-11-29"], repo)
    written = {p.name: md5_file(p) for p in (repo / "data/raw").glob("2026-*")}
    assert sorted(written) == ["2026-01.parquet", "2026-02.parquet"]
    again = run(["retrain", "ingest", "--today", "2026-11-29"], repo)
    assert again.stdout.strip() == "2026-03: no rows in the warehouse yet; it and later periods wait"
    assert {p.name: md5_file(p) for p in (repo / "data/raw").glob("2026-*")} == written


def test_a_bad_date_or_a_missing_query_is_one_line(tmp_path):
    repo = copy(tmp_path)
    bad = run(["retrain", "ingest", "--today", "29.11.2026"], repo, check=False)
    assert bad.returncode == 2 and "expected a date like 2026-11-29" in bad.stderr
    (repo / "sql/batch.sql").unlink()
    missing = run(["retrain", "ingest"], repo, check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1] == (
        "error: sql/batch.sql: query file not found (params ingest.query)"
    )


def test_the_shipped_demo_warehouse_holds_what_simulate_draws():
    proc = run(["python", "tools/demo_warehouse.py", "--check"], ROOT, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
