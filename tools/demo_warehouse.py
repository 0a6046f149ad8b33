"""Build the demo warehouse, data/warehouse/demo.sqlite, from `retrain simulate`'s own batches.

    python tools/demo_warehouse.py          # rewrite it (the file is committed)
    python tools/demo_warehouse.py --check  # exit 1 unless the committed file holds these rows

One table, `customers`, of every simulated row from simulate.start through --through, typed as a
warehouse would type them (dates as ISO text, SQLite having no date type). Its first months
are the batches shipped in data/raw, the later ones are what `retrain ingest` pulls.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from pathlib import Path

import pandas as pd

from retrain.data.schema import Schema
from retrain.data.simulate import SimConfig, simulate_batch
from retrain.params import load

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "data" / "warehouse" / "demo.sqlite"


def rows(through: str) -> pd.DataFrame:
    params = load(ROOT / "params.yaml")
    schema = Schema.from_params(params["schema"])
    config = SimConfig.from_params(params["simulate"])
    source = pd.read_parquet(ROOT / params["simulate"]["source"])
    periods = pd.period_range(params["simulate"]["start"], through, freq=schema.period)
    frame = pd.concat([simulate_batch(source, schema, config, p)[0] for p in periods], ignore_index=True)
    return frame.astype({schema.time: str})


def build(path: Path, frame: pd.DataFrame) -> None:
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        frame.to_sql("customers", db, index=False)
        db.execute("CREATE INDEX customers_time ON customers (snapshot_date)")
    sqlite3.connect(path).execute("VACUUM").connection.close()


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--through", default="2026-02", help="last period in the warehouse")
    cli.add_argument("--check", action="store_true", help="compare with the committed file")
    args = cli.parse_args()
    frame = rows(args.through)
    if not args.check:
        TARGET.parent.mkdir(parents=True, exist_ok=True)
        build(TARGET, frame)
        print(f"wrote {TARGET.relative_to(ROOT)}: {len(frame)} rows through {args.through}")
        return 0
    with tempfile.TemporaryDirectory() as tmp, sqlite3.connect(TARGET) as db:
        stored = pd.read_sql("SELECT * FROM customers", db)
        built = Path(tmp) / "built.sqlite"
        build(built, frame)
        with sqlite3.connect(built) as fresh:
            expected = pd.read_sql("SELECT * FROM customers", fresh)
    same = stored.equals(expected)
    print("demo warehouse is current" if same else f"{TARGET} differs from simulate's rows")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
