"""Benchmark: `retrain ingest` of one period from PostgreSQL against the server's own COPY.

    python benchmarks/ingest.py                # 1,000,000 rows x 22 columns, 3 rounds
    python benchmarks/ingest.py --rows 100000  # quicker

Starts a PostgreSQL server in a temporary folder (Debian's postgresql package), loads one month
of rows drawn from the demo source (benchmark.py's generator, typed columns: date, numbers,
text), then times, in turns, each round's median printed against the first:
- `psql -c "COPY (query) TO STDOUT (FORMAT csv)" > file`: the server's own export of the same
  rows into a file, the physical limit of any client;
- `retrain ingest --period P --replace`: connect, COPY the rows out, parse, validate with the
  schema code, write Parquet (a whole process, imports included);
- `dvc import-db --sql ... --output-format csv`, DVC's own SQL snapshot (SQLAlchemy and pandas),
  with the bounds written into the SQL text, as import-db has no bound parameters.
Each run starts after `sync`, so that none pays for the writeback of the one before (retrain
ingest fsyncs its file; psql and import-db do not). Nothing is written outside a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark import Generator  # noqa: E402

from tests import postgres  # noqa: E402

PERIOD = "2025-01"


def timed(cmd: list[str], cwd: Path, env: dict, stdout=subprocess.DEVNULL) -> float:
    os.sync()  # no run pays for the writeback of the files the one before it wrote
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed: {proc.stderr[-1500:]}")
    return elapsed


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--rows", type=int, default=1_000_000)
    cli.add_argument("--rounds", type=int, default=3)
    args = cli.parse_args()
    folder = postgres.binaries()
    if folder is None:
        raise SystemExit("PostgreSQL server binaries not found: apt-get install postgresql")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    frame = Generator(params).batch(PERIOD, args.rows)
    frame[params["schema"]["target"]] = frame[params["schema"]["target"]].astype(str)
    server = postgres.Server(folder)
    work = Path(tempfile.mkdtemp(prefix="retrain-ingest-bench-"))
    try:
        server.start()
        started = time.perf_counter()
        postgres.warehouse(server, frame)
        print(
            f"loaded {len(frame):,} rows x {frame.shape[1]} columns in {time.perf_counter() - started:.1f} s"
        )
        for rel in ("params.yaml", "sql/batch.sql"):
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, work / rel)
        (work / "data/raw").mkdir(parents=True)
        subprocess.run(["git", "init", "-q"], cwd=work, check=True)
        subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=work, check=True)
        url = server.url(postgres.READER, postgres.READER_PASSWORD)
        env = {**os.environ, "RETRAIN_DB_URL": url, "PGPASSWORD": postgres.READER_PASSWORD}
        query = (work / "sql/batch.sql").read_text()
        literal = query.replace(":start", "'2025-01-01'").replace(":end", "'2025-02-01'")
        literal = "\n".join(line for line in literal.splitlines() if not line.startswith("--"))
        subprocess.run(
            [
                sys.executable,
                "-m",
                "dvc",
                "config",
                "--local",
                "db.wh.url",
                url.replace("postgresql://", "postgresql+psycopg://"),
            ],
            cwd=work,
            check=True,
        )
        bin_dir = Path(sys.executable).parent
        runs = {
            "COPY (query) TO STDOUT into a file (psql)": lambda: timed(
                [
                    "psql",
                    server.url(postgres.READER).replace("postgresql://", "postgresql://"),
                    "-q",
                    "-c",
                    f"COPY ({literal}) TO STDOUT (FORMAT csv, HEADER true)",
                ],
                work,
                env,
                stdout=open(work / "copy.csv", "w"),
            ),
            "retrain ingest --period (Parquet, validated)": lambda: timed(
                [str(bin_dir / "retrain"), "ingest", "--period", PERIOD, "--replace"], work, env
            ),
            "dvc import-db --output-format csv": lambda: timed(
                [
                    str(bin_dir / "dvc"),
                    "import-db",
                    "--sql",
                    literal,
                    "--conn",
                    "wh",
                    "--output-format",
                    "csv",
                    "-o",
                    "import.csv",
                    "--force",
                ],
                work,
                env,
            ),
        }
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                seconds[name].append(run())
        files = {
            "COPY (query) TO STDOUT into a file (psql)": work / "copy.csv",
            "retrain ingest --period (Parquet, validated)": work / f"data/raw/{PERIOD}.parquet",
            "dvc import-db --output-format csv": work / "import.csv",
        }
        base = statistics.median(seconds[next(iter(runs))])
        print(f"\n{len(frame):,} rows x {frame.shape[1]} columns, median of {args.rounds} rounds\n")
        print("| export | s | x COPY | file MB |")
        print("|---|---|---|---|")
        for name, times in seconds.items():
            median = statistics.median(times)
            size = files[name].stat().st_size / 2**20
            print(f"| {name} | {median:.2f} | {median / base:.2f} | {size:.0f} |")
    finally:
        server.remove()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
