"""The `retrain` command: what is not a DVC stage (promote, simulate)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import io
from .errors import DataError, one_line
from .params import load, section
from .registry import AlreadyPromoted, promote
from .schema import Schema, parse_period
from .simulate import SimConfig, next_period, simulate_batch


def cmd_promote(args: argparse.Namespace) -> None:
    registry = section(load(args.params), "registry")
    try:
        version = promote(".", str(registry["model_name"]), str(registry.get("bump", "minor")))
    except AlreadyPromoted as done:
        print(done)
        return
    print(f"promoted {registry['model_name']} {version} to prod")


def cmd_simulate(args: argparse.Namespace) -> None:
    params = load(args.params)
    schema = Schema.from_params(section(params, "schema"))
    sim = section(params, "simulate")
    config = SimConfig.from_params(sim)
    source = io.read_parquet(sim["source"])
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = [p.stem for p in io.list_batches(out_dir)]
    for _ in range(args.months):
        period = (parse_period(args.period, schema.period, "--period") if args.period
                  else next_period(existing, config, schema.period))
        target = out_dir / f"{period}.csv"
        if str(period) in existing or target.exists():
            raise DataError(f"{target}: batch for {period} exists already; nothing was written")
        frame, active = simulate_batch(source, schema, config, period, args.unlabelled)
        io.write_text(target, frame.to_csv(index=False))
        existing.append(str(period))
        print(f"simulate: wrote {target} ({len(frame)} rows"
              f"{', no labels' if args.unlabelled else ''}; scenarios: "
              f"{', '.join(active) or 'stable'})")
        if args.period:
            break


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="retrain", description=__doc__)
    top.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("promote", help="apply reports/promotion.json: commit, tag, point prod")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("simulate", help="write the next batch(es) of demo data")
    p.add_argument("--months", type=int, default=1, help="how many batches to write")
    p.add_argument("--period", help="write this period instead of the next one")
    p.add_argument("--unlabelled", action="store_true", help="leave the target column blank")
    p.add_argument("--out", default="data/raw", help="batch directory (default data/raw)")
    p.set_defaults(func=cmd_simulate)
    return top


@one_line
def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())
