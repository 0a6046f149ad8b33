"""retrain ingest from a real PostgreSQL server, started by the test in a temporary directory."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time

import pandas as pd
import pytest

from retrain.data.files import md5_file
from tests import postgres
from tests.helpers import ROOT, command_env

pytestmark = pytest.mark.e2e

SLOW_QUERY = """WITH pause AS (SELECT pg_sleep(30))
SELECT customers.* FROM customers, pause
WHERE snapshot_date >= :start AND snapshot_date < :end
"""


def demo_rows(first: str, last: str) -> pd.DataFrame:
    with sqlite3.connect(ROOT / "data/warehouse/demo.sqlite") as db:
        frame = pd.read_sql("SELECT * FROM customers", db)
    month = frame["snapshot_date"].str[:7]
    return frame[(month >= first) & (month <= last)].reset_index(drop=True)


@pytest.fixture
def server():
    folder = postgres.require()
    pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")
    server = postgres.Server(folder)
    try:
        server.start()
        postgres.warehouse(server, demo_rows("2025-01", "2025-03"))
        yield server
    finally:
        server.remove()


@pytest.fixture
def project(tmp_path):
    path = tmp_path / "project"
    (path / "data/raw").mkdir(parents=True)
    (path / "sql").mkdir()
    shutil.copy2(ROOT / "params.yaml", path / "params.yaml")
    shutil.copy2(ROOT / "sql/batch.sql", path / "sql/batch.sql")
    text = (path / "params.yaml").read_text().replace("  start: null ", '  start: "2025-01"')
    (path / "params.yaml").write_text(text)
    return path


def ingest(project, server, *args, check=True):
    env = command_env(
        {
            "RETRAIN_DB_URL": server.url(),
            "RETRAIN_DB_PASSWORD": postgres.READER_PASSWORD,
        }
    )
    proc = subprocess.run(
        ["retrain", "ingest", "--today", "2026-11-29", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert postgres.READER_PASSWORD not in proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def files(project) -> dict[str, str]:
    return {p.name: md5_file(p) for p in sorted((project / "data/raw").iterdir())}


def test_ingest_from_postgresql_exactly_once_refusing_bad_rows_and_surviving_a_lost_server(server, project):
    dry = ingest(project, server, "--dry-run")
    assert dry.stdout.splitlines()[:3] == [
        f"{p}: {n} rows; would write data/raw/{p}.parquet"
        for p, n in [("2025-01", 500), ("2025-02", 500), ("2025-03", 500)]
    ]
    assert files(project) == {}

    ingest(project, server)
    written = files(project)
    assert list(written) == ["2025-01.parquet", "2025-02.parquet", "2025-03.parquet"]
    pulled = pd.read_parquet(project / "data/raw/2025-02.parquet")
    csv = pd.read_csv(ROOT / "data/raw/2025-02.csv", dtype=str, keep_default_na=False)
    assert sorted(pulled["customer_id"]) == sorted(csv["customer_id"])
    assert pulled.set_index("customer_id").loc[csv["customer_id"], "churn"].tolist() == csv["churn"].tolist()

    again = ingest(project, server)
    assert files(project) == written
    assert "2025-04: no rows in the warehouse yet" in again.stdout

    broken = demo_rows("2025-04", "2025-04")
    broken.loc[7, "churn"] = "Maybe"
    with (
        server.admin("warehouse") as conn,
        conn.cursor().copy("COPY customers FROM STDIN (FORMAT csv, HEADER true)") as copy,
    ):
        copy.write(broken.to_csv(index=False))
    refused = ingest(project, server, check=False)
    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "sql/batch.sql for 2025-04: column 'churn', row" in errors[0]
    assert "expected 'Yes' or 'No'" in errors[0]
    assert files(project) == written

    with server.admin("warehouse") as conn:
        conn.execute("UPDATE customers SET churn = 'No' WHERE churn = 'Maybe'")
    (project / "sql/slow.sql").write_text(SLOW_QUERY)
    text = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(text.replace("query: sql/batch.sql", "query: sql/slow.sql"))
    env = command_env({"RETRAIN_DB_URL": server.url(postgres.READER, postgres.READER_PASSWORD)})
    pulling = subprocess.Popen(
        ["retrain", "ingest", "--today", "2026-11-29"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    with server.admin("warehouse") as conn:
        while time.monotonic() < deadline:
            active = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%pg_sleep%'"
            ).fetchone()[0]
            if active:
                break
            time.sleep(0.1)
    assert active, "the pull never started"
    server.stop()
    server.wait_until_down()
    out, err = pulling.communicate(timeout=60)
    assert pulling.returncode == 1
    assert postgres.READER_PASSWORD not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(
        f"error: postgresql://reader@127.0.0.1:{server.port}/warehouse: the warehouse failed"
    ), err[-2000:]
    assert files(project) == written
    assert not [p for p in os.listdir(project / "data/raw") if p.startswith(".")]

    server.start()
    (project / "params.yaml").write_text(text)
    ingest(project, server)
    assert list(files(project)) == [*written, "2025-04.parquet"]
    assert len(pd.read_parquet(project / "data/raw/2025-04.parquet")) == len(broken)
