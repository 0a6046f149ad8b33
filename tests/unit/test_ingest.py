"""retrain ingest on an SQLite warehouse: which periods, bound parameters, exactly once."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from retrain.data.files import md5_file
from retrain.data.ingest import Connection, PostgresReader, Query, Settings, closes, connection, plan, run
from retrain.data.schema import CleaningPolicy, Schema, read_batch
from retrain.errors import DataError
from tests.helpers import TOY, toy_raw

QUERY = """-- one period; :start and :end in a comment do not count
SELECT * FROM rows WHERE ts >= :start AND ts < :end;
"""


def warehouse(path: Path, periods: list[str], **changes) -> Path:
    frame = pd.concat([toy_raw(p, n=60, seed=i) for i, p in enumerate(periods)], ignore_index=True)
    for column, value in changes.items():
        frame.loc[frame.index[-1], column] = value
    frame["x2"] = frame["x2"].astype(int)
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE IF EXISTS rows")
        frame.to_sql("rows", db, index=False)
    return path


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "batch.sql").write_text(QUERY)
    monkeypatch.setenv("RETRAIN_DB_URL", f"sqlite:///{tmp_path / 'wh.sqlite'}")
    monkeypatch.delenv("RETRAIN_DB_PASSWORD", raising=False)
    return tmp_path


def settings(**changes) -> Settings:
    base = {"query": "batch.sql", "connection": "warehouse", "grace_days": 3, "start": "2025-01"}
    return Settings.from_params({**base, "chunk_rows": 25, **changes})


def ingest(project: Path, today: str = "2026-11-29", **kwargs) -> tuple[list, list[str]]:
    said: list[str] = []
    written = run(
        settings=kwargs.pop("settings", settings()),
        schema=kwargs.pop("schema", Schema.from_params(TOY)),
        policy=CleaningPolicy(),
        raw_dir=project / "raw",
        today=dt.date.fromisoformat(today),
        say=said.append,
        **kwargs,
    )
    return written, said


def test_closed_periods_after_the_newest_batch_are_taken_and_a_second_run_takes_nothing(project):
    warehouse(project / "wh.sqlite", ["2025-01", "2025-02", "2025-03"])
    written, said = ingest(project)
    assert [w.period for w in written] == ["2025-01", "2025-02", "2025-03"]
    assert said[-1] == "2025-04: no rows in the warehouse yet; it and later periods wait"
    batch = read_batch(project / "raw/2025-02.parquet", Schema.from_params(TOY), CleaningPolicy())
    assert len(batch.frame) == 60 and batch.labelled
    assert batch.frame["x2"].dtype == float and set(batch.frame["colour"]) <= {"red", "green", "blue"}
    md5s = {p.name: md5_file(p) for p in (project / "raw").iterdir()}

    again, said = ingest(project)
    assert again == [] and said == ["2025-04: no rows in the warehouse yet; it and later periods wait"]
    assert {p.name: md5_file(p) for p in (project / "raw").iterdir()} == md5s


def test_a_period_is_taken_only_once_it_closed_and_its_grace_passed(project):
    warehouse(project / "wh.sqlite", ["2025-01", "2025-02"])
    written, said = ingest(project, today="2025-03-03")
    assert [w.period for w in written] == ["2025-01"]
    assert said[-1].startswith("2025-02: not closed yet; it can be taken from 2025-03-04")
    written, _ = ingest(project, today="2025-03-04")
    assert [w.period for w in written] == ["2025-02"]


def test_closing_dates_follow_the_schema_period():
    assert closes(pd.Period("2025-12", "M"), 3) == dt.date(2026, 1, 4)
    assert closes(pd.Period("2025", "Y"), 0) == dt.date(2026, 1, 1)
    assert closes(pd.Period("2025-06-30", "D"), 1) == dt.date(2025, 7, 2)


def test_weekly_periods_are_written_under_their_first_day_and_taken_once(project):
    warehouse(project / "wh.sqlite", ["2025-01"])
    weekly = settings(start="2025-01-06")
    schema = Schema.from_params({**TOY, "period": "W"})
    taken, _ = ingest(project, today="2025-01-25", settings=weekly, schema=schema)
    assert [w.period for w in taken] == ["2025-01-06", "2025-01-13"]
    assert sorted(p.name for p in (project / "raw").iterdir()) == ["2025-01-06.parquet", "2025-01-13.parquet"]
    again, said = ingest(project, today="2025-01-25", settings=weekly, schema=schema)
    assert again == [] and said[-1].startswith("nothing new")


def test_a_batch_that_breaks_the_schema_is_refused_and_nothing_is_written(project):
    warehouse(project / "wh.sqlite", ["2025-01", "2025-02"], label="maybe")
    with pytest.raises(DataError) as refused:
        ingest(project)
    message = str(refused.value)
    assert message.startswith("batch.sql for 2025-02: column 'label', row")
    assert "expected '1' or '0'" in message and "nothing written" in message
    assert sorted(p.name for p in (project / "raw").iterdir()) == ["2025-01.parquet"]


def test_replace_pulls_a_period_again_and_reports_the_old_md5(project):
    warehouse(project / "wh.sqlite", ["2025-01"])
    ingest(project)
    old = md5_file(project / "raw/2025-01.parquet")
    _, said = ingest(project, only="2025-01")
    assert said == [
        "2025-01: already in " + str(project / "raw") + "; nothing pulled (--replace pulls it again)"
    ]
    warehouse(project / "wh.sqlite", ["2025-01"], x1="9.5")
    written, _ = ingest(project, only="2025-01", replace=True)
    assert written[0].replaced_md5 == old != md5_file(project / "raw/2025-01.parquet")
    with pytest.raises(DataError, match="--replace needs --period"):
        ingest(project, replace=True)


def test_limit_takes_the_oldest_periods_first(project):
    warehouse(project / "wh.sqlite", ["2025-01", "2025-02", "2025-03"])
    written, _ = ingest(project, limit=1)
    assert [w.period for w in written] == ["2025-01"]
    written, _ = ingest(project, limit=1)
    assert [w.period for w in written] == ["2025-02"]


def test_dry_run_counts_rows_and_writes_nothing(project):
    warehouse(project / "wh.sqlite", ["2025-01", "2025-02"])
    written, said = ingest(project, dry_run=True)
    assert written == [] and not (project / "raw").exists()
    assert said[:2] == [
        f"2025-01: 60 rows; would write {project / 'raw/2025-01.parquet'}",
        f"2025-02: 60 rows; would write {project / 'raw/2025-02.parquet'}",
    ]


def test_a_file_that_appears_meanwhile_is_never_overwritten(project, monkeypatch):
    import retrain.data.ingest as ingest_module

    warehouse(project / "wh.sqlite", ["2025-01"])
    (project / "raw").mkdir()
    real = ingest_module._parquet

    def racing(table):
        (project / "raw/2025-01.parquet").write_bytes(b"written by another run")
        return real(table)

    monkeypatch.setattr(ingest_module, "_parquet", racing)
    with pytest.raises(DataError, match="already written"):
        ingest(project)
    assert (project / "raw/2025-01.parquet").read_bytes() == b"written by another run"
    assert [p.name for p in (project / "raw").iterdir()] == ["2025-01.parquet"]


@pytest.mark.parametrize(
    ("sql", "refused"),
    [
        ("SELECT * FROM rows WHERE ts >= :start", "does not use :end"),
        ("SELECT * FROM rows -- WHERE ts >= :start AND ts < :end", "does not use :start, :end"),
        ("SELECT ':start', ':end' FROM rows", "does not use :start, :end"),
        ("SELECT 1 WHERE :start < :end; DROP TABLE rows", "more than one statement"),
        ("-- nothing", "the query is empty"),
    ],
)
def test_a_query_without_both_bound_bounds_is_refused(tmp_path, sql, refused):
    (tmp_path / "q.sql").write_text(sql)
    with pytest.raises(DataError, match=refused):
        Query.read(tmp_path / "q.sql")


def test_placeholders_become_the_drivers_and_literals_stay_as_written(tmp_path):
    (tmp_path / "q.sql").write_text(
        "SELECT a::date, '50% :start' AS note FROM t\nWHERE d >= :start AND d < :end; -- done\n"
    )
    query = Query.read(tmp_path / "q.sql")
    assert query.text(PostgresReader.SETTING) == (
        "SELECT a::date, '50% :start' AS note FROM t\nWHERE d >= current_setting('retrain.start')::timestamp"
        " AND d < current_setting('retrain.end')::timestamp"
    )
    assert query.text(":{}").endswith("WHERE d >= :start AND d < :end")


def test_the_password_never_shows(monkeypatch, tmp_path):
    conn = Connection("postgresql://reader:s3cret@db.example:5433/wh", None)
    assert conn.shown == "postgresql://reader@db.example:5433/wh"
    assert conn.scrub("auth failed for s3cret") == "auth failed for ***"


def test_the_connection_comes_from_the_environment_else_dvc_config(monkeypatch, tmp_path):
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc/config").write_text('[db "warehouse"]\n    url = postgresql://db.example/wh\n')
    (tmp_path / ".dvc/config.local").write_text(
        '[db "warehouse"]\n    username = reader\n    password = from-local\n'
    )
    monkeypatch.delenv("RETRAIN_DB_URL", raising=False)
    monkeypatch.delenv("RETRAIN_DB_PASSWORD", raising=False)
    found = connection(settings(), root=tmp_path)
    assert (found.url, found.password) == ("postgresql://reader@db.example/wh", "from-local")
    monkeypatch.setenv("RETRAIN_DB_URL", "sqlite:///elsewhere.db")
    assert connection(settings(), root=tmp_path).url == "sqlite:///elsewhere.db"
    monkeypatch.setenv("RETRAIN_DB_URL", "mysql://x@y/z")
    with pytest.raises(DataError, match="unsupported database 'mysql'"):
        connection(settings(), root=tmp_path)
    monkeypatch.delenv("RETRAIN_DB_URL")
    with pytest.raises(DataError, match="no warehouse connection: set RETRAIN_DB_URL"):
        connection(settings(connection="other"), root=tmp_path)


def test_an_empty_raw_directory_needs_a_start(project):
    with pytest.raises(DataError, match="set params ingest.start"):
        plan(
            raw_dir=project / "raw",
            schema=Schema.from_params(TOY),
            settings=settings(start=None),
            today=dt.date(2026, 1, 1),
        )


def test_a_long_pull_reports_rows_so_far_and_the_rate(project, monkeypatch, caplog):
    import logging

    import retrain.data.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "PROGRESS_SECONDS", 0.0)
    warehouse(project / "wh.sqlite", ["2025-01"])
    with caplog.at_level(logging.INFO, logger="retrain.ingest"):
        ingest(project)
    progress = [r.getMessage() for r in caplog.records if "rows so far" in r.getMessage()]
    assert progress[0].startswith("2025-01: 25 rows so far (") and progress[0].endswith(" rows/s)")
    assert progress[-1].startswith("2025-01: 60 rows so far")
