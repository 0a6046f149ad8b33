"""Pull each closed period from the warehouse into data/raw, validated, exactly once.

The user's SQL (params `ingest.query`) selects one period's rows with two bound parameters,
`:start` (inclusive) and `:end` (exclusive); the driver binds them, the text is never formatted.
A period is taken once it has ended and `ingest.grace_days` have passed (late rows), checked by
the same `validate_batch` as prepare, and published to `data/raw/<period>.parquet` by a hard link
from a finished temporary file, so a file is either whole or absent and never overwritten.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pandas as pd
import pyarrow as pa

from retrain.data.files import atomic_write_bytes, batch_stem, list_batches, md5_file
from retrain.data.schema import CleaningPolicy, Schema, parse_period, period_name, validate_batch
from retrain.errors import DataError
from retrain.log import get

log = get("ingest")

URL_ENV = "RETRAIN_DB_URL"
PASSWORD_ENV = "RETRAIN_DB_PASSWORD"
SCHEMES = ("postgresql", "postgres", "sqlite")
_TOKENS = re.compile(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/)", re.S)
_PLACEHOLDER = re.compile(r"(?<![:\w]):(start|end)\b")
PROGRESS_SECONDS = 2.0


@dataclass(frozen=True)
class Settings:
    """`ingest` in params.yaml."""

    query: Path
    connection: str
    grace_days: int
    start: str | None
    chunk_rows: int

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Settings:
        return cls(
            query=Path(params["query"]),
            connection=params["connection"],
            grace_days=params["grace_days"],
            start=params["start"],
            chunk_rows=params["chunk_rows"],
        )


@dataclass(frozen=True)
class Query:
    """One SELECT whose bounds are bound parameters, split into code and literal segments."""

    source: str
    segments: tuple[str, ...]  # even: code (comments removed); odd: string literals, quoted names

    @classmethod
    def read(cls, path: Path) -> Query:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataError(f"{path}: query file not found (params ingest.query)") from None
        parts = _TOKENS.split(text)
        segments = ["" if i % 2 and part.startswith(("--", "/*")) else part for i, part in enumerate(parts)]
        code = [segments[i] if i % 2 == 0 else " " for i in range(len(segments))]
        joined = "".join(code).strip().rstrip(";").strip()
        if not joined:
            raise DataError(f"{path}: the query is empty; expected one SELECT")
        if ";" in joined:
            raise DataError(f"{path}: more than one statement; expected one SELECT")
        used = set(_PLACEHOLDER.findall("".join(code)))
        missing = [name for name in ("start", "end") if name not in used]
        if missing:
            raise DataError(
                f"{path}: the query does not use {', '.join(':' + m for m in missing)}; expected "
                "a WHERE clause on the time column with :start (inclusive) and :end (exclusive), "
                "which the driver binds"
            )
        last = max(i for i in range(0, len(segments), 2) if segments[i].strip())
        segments[last] = segments[last].rstrip().rstrip(";")
        segments = [s if i % 2 or i <= last else "" for i, s in enumerate(segments)]
        return cls(str(path), tuple(segments))

    def text(self, placeholder: str) -> str:
        """The query with :start/:end in the driver's placeholder style (`{}` gets the name)."""
        out = []
        for i, segment in enumerate(self.segments):
            if i % 2 == 0:
                segment = _PLACEHOLDER.sub(lambda m: placeholder.format(m.group(1)), segment)
            out.append(segment)
        return "".join(out)


@dataclass(frozen=True)
class Connection:
    """Where the warehouse is; the password is kept apart and never printed."""

    url: str
    password: str | None

    @property
    def shown(self) -> str:
        """The URL without its password, for logs and errors."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        host = parts.hostname or ""
        user = f"{parts.username}@" if parts.username else ""
        port = f":{parts.port}" if parts.port else ""
        return urlunsplit(parts._replace(netloc=f"{user}{host}{port}"))

    def scrub(self, text: str) -> str:
        secret = self.password or urlsplit(self.url).password
        return text.replace(secret, "***") if secret else text


def connection(settings: Settings, root: Path = Path(".")) -> Connection:
    """From RETRAIN_DB_URL (and RETRAIN_DB_PASSWORD), else DVC's `db.<connection>` config
    (`dvc config --local db.warehouse.password ...` keeps a secret out of git)."""
    url = os.environ.get(URL_ENV)
    password = os.environ.get(PASSWORD_ENV)
    if not url:
        from dvc.config import Config

        db = Config(dvc_dir=str(root / ".dvc")).get("db", {}).get(settings.connection, {})
        url, password = db.get("url"), password or db.get("password")
        if url and db.get("username") and "@" not in urlsplit(url).netloc:
            parts = urlsplit(url)
            url = urlunsplit(parts._replace(netloc=f"{db['username']}@{parts.netloc}"))
    if not url:
        raise DataError(
            f"no warehouse connection: set {URL_ENV}, or `dvc config --local "
            f"db.{settings.connection}.url postgresql://user@host/db` (params ingest.connection)"
        )
    scheme = urlsplit(url).scheme.split("+")[0]
    if scheme not in SCHEMES:
        raise DataError(
            f"{Connection(url, password).shown}: unsupported database {scheme!r}; expected a "
            "postgresql:// or sqlite:/// URL"
        )
    return Connection(url, password)


class Reader(Protocol):
    def count(self, query: Query, start: dt.datetime, end: dt.datetime) -> int: ...

    def batches(
        self, query: Query, start: dt.datetime, end: dt.datetime, chunk_rows: int
    ) -> Iterator[pa.RecordBatch]: ...

    def close(self) -> None: ...


def _as_text(values: list[Any]) -> pa.Array:
    return pa.array([None if v is None else str(v) for v in values], type=pa.string())


class SqliteReader:
    """The embedded warehouse: Python's sqlite3, read only."""

    def __init__(self, conn: Connection) -> None:
        import sqlite3

        path = Path(unquote(conn.url.split("sqlite:///", 1)[-1]))
        if not path.is_file():
            raise DataError(f"{conn.shown}: database file {path} not found")
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    @staticmethod
    def _bounds(start: dt.datetime, end: dt.datetime) -> dict[str, str]:
        def iso(t: dt.datetime) -> str:
            return t.date().isoformat() if t.time() == dt.time() else t.isoformat(sep=" ")

        return {"start": iso(start), "end": iso(end)}

    def count(self, query: Query, start: dt.datetime, end: dt.datetime) -> int:
        sql = f"SELECT COUNT(*) FROM (\n{query.text(':{}')}\n) AS q"
        return int(self.db.execute(sql, self._bounds(start, end)).fetchone()[0])

    def batches(
        self, query: Query, start: dt.datetime, end: dt.datetime, chunk_rows: int
    ) -> Iterator[pa.RecordBatch]:
        cursor = self.db.execute(query.text(":{}"), self._bounds(start, end))
        names = [d[0] for d in cursor.description]
        while rows := cursor.fetchmany(chunk_rows):
            columns = list(zip(*rows, strict=True))
            yield pa.RecordBatch.from_arrays([_as_text(list(c)) for c in columns], names=names)

    def close(self) -> None:
        self.db.close()


class PostgresReader:
    """PostgreSQL through the ADBC driver (libpq and Arrow in C++): a query without parameters
    is streamed by `COPY ... TO STDOUT (FORMAT binary)` straight into Arrow, as fast as the
    server's own COPY. So that the bounds still never enter the SQL text, they are bound as
    parameters of `set_config` first and the query reads them with `current_setting`. The
    session is read only."""

    SETTING = "current_setting('retrain.{}')::timestamp"

    def __init__(self, conn: Connection) -> None:
        try:
            import adbc_driver_postgresql.dbapi as adbc
        except ImportError:
            raise DataError(
                "PostgreSQL needs its driver: pip install -c constraints.txt -e '.[postgres]'"
            ) from None
        parts = urlsplit(conn.url.replace("postgresql+adbc://", "postgresql://", 1))
        netloc = parts.netloc
        if conn.password and parts.password is None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user}:{quote(conn.password, safe='')}@{host}"
        timeout = "connect_timeout=10"
        uri = urlunsplit(parts._replace(netloc=netloc, query=f"{parts.query}&{timeout}".lstrip("&")))
        self.db = adbc.connect(uri)
        with self.db.cursor() as cur:
            cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")

    def _bind(self, cur: Any, start: dt.datetime, end: dt.datetime) -> None:
        cur.execute(
            "SELECT set_config('retrain.start', $1, false), set_config('retrain.end', $2, false)",
            (start.isoformat(sep=" "), end.isoformat(sep=" ")),
        )
        cur.fetchall()

    def count(self, query: Query, start: dt.datetime, end: dt.datetime) -> int:
        with self.db.cursor() as cur:
            self._bind(cur, start, end)
            cur.execute(f"SELECT COUNT(*) FROM (\n{query.text(self.SETTING)}\n) AS q")
            return int(cur.fetchone()[0])

    def batches(
        self, query: Query, start: dt.datetime, end: dt.datetime, chunk_rows: int
    ) -> Iterator[pa.RecordBatch]:
        with self.db.cursor() as cur:
            self._bind(cur, start, end)
            cur.execute(query.text(self.SETTING))
            yield from cur.fetch_record_batch()
        self.db.rollback()

    def close(self) -> None:
        self.db.close()


def open_reader(conn: Connection) -> Reader:
    scheme = urlsplit(conn.url).scheme.split("+")[0]
    try:
        if scheme == "sqlite":
            return SqliteReader(conn)
        return PostgresReader(conn)
    except DataError:
        raise
    except Exception as err:  # the driver's own error, without the password
        raise DataError(f"{conn.shown}: cannot connect ({conn.scrub(_first_line(err))})") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


@dataclass(frozen=True)
class Plan:
    """What a run would do: the periods to take, and the first period not yet closed."""

    periods: list[pd.Period]
    waiting: pd.Period | None
    takeable_from: dt.date | None
    present: list[str]


def closes(period: pd.Period, grace_days: int) -> dt.date:
    """The first day a period may be taken: its end plus the grace for late rows."""
    return (period + 1).start_time.date() + dt.timedelta(days=grace_days)


def plan(
    *, raw_dir: Path, schema: Schema, settings: Settings, today: dt.date, only: str | None = None
) -> Plan:
    present = [batch_stem(p) for p in list_batches(raw_dir)] if raw_dir.is_dir() else []
    if only is not None:
        period = parse_period(only, schema.period, "--period")
        if closes(period, settings.grace_days) > today:
            return Plan([], period, closes(period, settings.grace_days), present)
        return Plan([period], None, None, present)
    if present:
        first = parse_period(max(present), schema.period, str(raw_dir / max(present))) + 1
    elif settings.start:
        first = parse_period(settings.start, schema.period, "params.yaml: ingest.start")
    else:
        raise DataError(
            f"{raw_dir} holds no batch: set params ingest.start to the first period to take, or pass --period"
        )
    periods = []
    period = first
    while closes(period, settings.grace_days) <= today:
        periods.append(period)
        period += 1
    return Plan(periods, period, closes(period, settings.grace_days), present)


def _bounds(period: pd.Period) -> tuple[dt.datetime, dt.datetime]:
    return period.start_time.to_pydatetime(), (period + 1).start_time.to_pydatetime()


def pull(reader: Reader, query: Query, period: pd.Period, chunk_rows: int) -> pa.Table:
    """Every row of one period, with progress lines for long pulls."""
    start, end = _bounds(period)
    batches, rows, began, said = [], 0, time.perf_counter(), time.perf_counter()
    for batch in reader.batches(query, start, end, chunk_rows):
        batches.append(batch)
        rows += batch.num_rows
        now = time.perf_counter()
        if now - said >= PROGRESS_SECONDS:
            log.info("%s: %s rows so far (%s rows/s)", period, f"{rows:,}", f"{rows / (now - began):,.0f}")
            said = now
    if not batches:
        return pa.table({})
    return pa.Table.from_batches(batches)


@dataclass(frozen=True)
class Written:
    period: str
    path: Path
    rows: int
    seconds: float
    replaced_md5: str | None = None


def _parquet(table: pa.Table) -> bytes:
    """The rows as pulled (text columns), Parquet with zstd, as prepare's own files."""
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def _publish(path: Path, data: bytes, replace: bool) -> None:
    """The whole file or none, and an existing one never overwritten unless `replace`."""
    try:
        atomic_write_bytes(path, data, overwrite=replace)
    except FileExistsError:
        raise DataError(f"{path}: already written (by another run?); nothing overwritten") from None


def take(
    *,
    reader: Reader,
    query: Query,
    period: pd.Period,
    raw_dir: Path,
    schema: Schema,
    policy: CleaningPolicy,
    chunk_rows: int,
    replace: bool = False,
) -> Written | None:
    """Pull, validate and publish one period; None when the warehouse has no row for it."""
    began = time.perf_counter()
    table = pull(reader, query, period, chunk_rows)
    if table.num_rows == 0:
        return None
    name = period_name(period)
    path = raw_dir / f"{name}.parquet"
    source = f"{query.source} for {name}"
    with ThreadPoolExecutor(1) as pool:
        encoded = pool.submit(_parquet, table)  # beside the validation; published only after it
        try:
            validate_batch(table.to_pandas(date_as_object=False), str(path), schema, policy)
        except DataError as err:
            message = str(err).replace(str(path), source, 1)
            raise DataError(f"{message}; nothing written to {raw_dir}") from None
        data = encoded.result()
    old = [p for p in list_batches(raw_dir) if batch_stem(p) == name] if raw_dir.is_dir() else []
    replaced = md5_file(old[0]) if old else None
    _publish(path, data, replace=replace)
    for stale in old:
        if stale != path:
            stale.unlink()
    return Written(name, path, table.num_rows, time.perf_counter() - began, replaced)


def reachable(conn: Connection, action: Any) -> Any:
    """Run `action`, turning a driver's failure into one line without the password."""
    try:
        return action()
    except DataError:
        raise
    except Exception as err:
        raise DataError(
            f"{conn.shown}: the warehouse failed ({conn.scrub(_first_line(err))}); "
            "what was already written stays, nothing partial was written"
        ) from None


def run(
    *,
    settings: Settings,
    schema: Schema,
    policy: CleaningPolicy,
    raw_dir: Path,
    today: dt.date,
    only: str | None = None,
    dry_run: bool = False,
    replace: bool = False,
    limit: int | None = None,
    say: Any = print,
) -> list[Written]:
    """`retrain ingest`: take every closed period after the newest in `raw_dir` (or `only`, or
    the first `limit` of them)."""
    if replace and only is None:
        raise DataError("--replace needs --period: name the one period to pull again")
    query = Query.read(settings.query)
    todo = plan(raw_dir=raw_dir, schema=schema, settings=settings, today=today, only=only)
    periods = [p for p in todo.periods if replace or period_name(p) not in todo.present][:limit]
    if only is not None and todo.periods and not periods:
        say(f"{only}: already in {raw_dir}; nothing pulled (--replace pulls it again)")
        return []
    waiting = (
        f"{todo.waiting}: not closed yet; it can be taken from {todo.takeable_from} (its end plus "
        f"ingest.grace_days {settings.grace_days})"
        if todo.waiting is not None
        else ""
    )
    if not periods:
        say(f"nothing new: {waiting}" if waiting else "nothing new")
        return []
    conn = connection(settings)
    reader = open_reader(conn)
    written: list[Written] = []
    try:
        for period in periods:
            if dry_run:
                start, end = _bounds(period)
                rows = reachable(conn, lambda s=start, e=end: reader.count(query, s, e))
                if rows == 0:
                    say(f"{period}: no rows in the warehouse yet; it and later periods wait")
                    return written
                say(f"{period}: {rows:,} rows; would write {raw_dir / f'{period_name(period)}.parquet'}")
                continue
            done = reachable(
                conn,
                lambda p=period: take(
                    reader=reader,
                    query=query,
                    period=p,
                    raw_dir=raw_dir,
                    schema=schema,
                    policy=policy,
                    chunk_rows=settings.chunk_rows,
                    replace=replace,
                ),
            )
            if done is None:
                say(f"{period}: no rows in the warehouse yet; it and later periods wait")
                return written
            was = f" (replaced a file of md5 {done.replaced_md5})" if done.replaced_md5 else ""
            say(f"wrote {done.path}: {done.rows:,} rows in {done.seconds:.1f} s{was}")
            written.append(done)
    finally:
        reader.close()
    if waiting and only is None:
        say(waiting)
    return written
