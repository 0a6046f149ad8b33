"""A real PostgreSQL server for tests: initdb in a temporary directory, listening on 127.0.0.1 only.

Needs Debian's `postgresql` package (initdb and pg_ctl); `.ci/run` installs it and sets
RETRAIN_REQUIRE_POSTGRES=1, which turns the skip where it is missing into a failure. As root
(initdb refuses root) the server runs as the package's `postgres` user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

SUPERUSER, SUPERPASSWORD = "owner", "owner-secret-8d1f"
READER, READER_PASSWORD = "reader", "reader-secret-5b2c"


def binaries() -> Path | None:
    """The folder of initdb and pg_ctl, or None."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


def require() -> Path:
    """The server binaries, or a skip saying why (a failure when CI requires them)."""
    folder = binaries()
    if folder is None:
        reason = "PostgreSQL server binaries (Debian package postgresql: initdb, pg_ctl) not installed"
        if os.environ.get("RETRAIN_REQUIRE_POSTGRES"):
            pytest.fail(f"{reason}, and RETRAIN_REQUIRE_POSTGRES is set")
        pytest.skip(reason)
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One cluster: start, stop (immediately, as a crash would), start again."""

    def __init__(self, folder: Path):
        import tempfile

        self.bin = folder
        # Its own folder under /tmp, not pytest's (private to root): the postgres user must enter it.
        base = Path(tempfile.mkdtemp(prefix="retrain-pg-"))
        self.base = base
        self.data = base / "data"
        self.port = _free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
        base.mkdir(parents=True, exist_ok=True)
        pwfile = base / "pw"
        pwfile.write_text(SUPERPASSWORD + "\n")
        if self.as_user:
            shutil.chown(base, "postgres")
            shutil.chown(pwfile, "postgres")
            base.chmod(0o700)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--pwfile",
            str(pwfile),
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
        )

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [*self.as_user, str(self.bin / tool), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.base,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{tool} exited {proc.returncode}: {proc.stdout}{proc.stderr}")
        return proc

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.base} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.base / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, user: str = READER, password: str | None = None, db: str = "warehouse") -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{db}"

    def admin(self, db: str = "postgres"):
        import psycopg

        return psycopg.connect(self.url(SUPERUSER, SUPERPASSWORD, db), autocommit=True)

    def wait_until_down(self, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.1)
        raise AssertionError("the server did not stop")


def warehouse(server: Server, frame) -> None:
    """A database `warehouse` whose table `customers` holds `frame` (typed as a warehouse would:
    dates as date, numbers as numbers), and a read-only role `reader`."""
    import pandas as pd

    with server.admin() as conn:
        conn.execute("CREATE DATABASE warehouse")
        conn.execute(f"CREATE ROLE {READER} LOGIN PASSWORD '{READER_PASSWORD}'")
    types = {}
    for name, col in frame.items():
        if name.endswith("date"):
            types[name] = "date"
        elif pd.api.types.is_integer_dtype(col):
            types[name] = "bigint"
        elif pd.api.types.is_float_dtype(col):
            types[name] = "double precision"
        else:
            types[name] = "text"
    columns = ", ".join(f'"{n}" {t}' for n, t in types.items())
    with server.admin("warehouse") as conn:
        conn.execute(f"CREATE TABLE customers ({columns})")
        with conn.cursor().copy("COPY customers FROM STDIN (FORMAT csv, HEADER true)") as copy:
            copy.write(frame.to_csv(index=False))
        conn.execute("CREATE INDEX ON customers (snapshot_date)")
        conn.execute(f"GRANT CONNECT ON DATABASE warehouse TO {READER}")
        conn.execute(f"GRANT USAGE ON SCHEMA public TO {READER}")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {READER}")
