"""Replay the params policy against fixed schedules on simulated histories (docs/decisions.md tables).

    python benchmarks/policies.py                 # the demo data and three 36-month histories
    python benchmarks/policies.py -S decide.confirm.min_drop=0.03   # the same with a change

Each history is drawn by `retrain simulate`'s own simulator from the demo customers with the
scenarios below, written to a temporary folder, and replayed by the backtest's own `replay`
(the policy, never, every batch, and every k batches for each k of backtest.every_k). Prints
one markdown table per history and the verdict against the best schedule. Nothing is written
outside a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml
from benchmark import overridden

ROOT = Path(__file__).resolve().parents[1]
SEASONS = {
    "name": "seasons",
    "kind": "seasonal",
    "from": "2020-01",
    "column": ["monthly_charges", "total_charges"],
    "peak": "2020-12",
}
HISTORIES = {
    "mixed": [
        {**SEASONS, "amplitude": 0.1, "label_amplitude": 0.1},
        {"name": "gender", "kind": "set", "from": "2020-07", "column": "female", "value": 1, "fraction": 0.6},
        {
            "name": "concept",
            "kind": "concept",
            "from": "2021-04",
            "where": {"contract": ["One year", "Two year"]},
            "flip_to_positive": 0.5,
        },
        {"name": "noise", "kind": "noise", "from": "2022-03", "fraction": 0.2},
    ],
    "seasonal": [{**SEASONS, "amplitude": 0.2, "label_amplitude": 0.2}],
    "stable": [],
}


def history(params: dict, scenarios: list[dict], folder: Path, months: int, rows: int) -> None:
    from retrain.data.schema import Schema
    from retrain.data.simulate import SimConfig, simulate_batch

    config = SimConfig.from_params(
        {**params["simulate"], "start": "2020-01", "scenarios": scenarios, "rows_per_batch": rows}
    )
    schema = Schema.from_params(params["schema"])
    source = pd.read_parquet(ROOT / params["simulate"]["source"])
    folder.mkdir(parents=True)
    for k in range(months):
        period = pd.Period("2020-01", "M") + k
        simulate_batch(source, schema, config, period)[0].to_csv(folder / f"{period}.csv", index=False)


def table(raw: Path, params: dict, title: str) -> str:
    from retrain.backtest import Settings, backtest_lines, policies_from, replay
    from retrain.data.schema import CleaningPolicy, read_batches

    settings = Settings.from_params(params)
    cleaning = CleaningPolicy.from_params(params["prepare"]["cleaning"])
    batches = read_batches(raw, settings.schema, cleaning)
    tuning = settings.training.tune.when != "never"
    result = replay(batches, settings, policies_from(params["backtest"], tuning=tuning), "roc_auc")
    lines = [
        f"{title} ({len(batches)} batches)",
        "",
        "| policy | retrains | promoted | not promoted | mean ROC AUC | worst | rows trained "
        "| tuned (trials) | training s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, v in result["summary"].items():
        tuned = f"{v['tuned']} ({v['tuning_trials']})" if "tuned" in v else "-"
        lines.append(
            f"| {name.replace('_', ' ')} | {v['retrains']} | {v['promotions']} | "
            f"{v['retrains_not_promoted']} | {v['mean_roc_auc']:.4f} | "
            f"{v['worst_roc_auc']:.4f} | {v['rows_trained']:,} | {tuned} | "
            f"{result['train_seconds'][name]:.1f} |"
        )
    return "\n".join([*lines, "", *backtest_lines(result, "roc_auc"), ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--rows", type=int, default=500, help="rows per simulated batch")
    parser.add_argument(
        "--set",
        "-S",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a params.yaml key, as `dvc exp run -S` does",
    )
    parser.add_argument(
        "--only", action="append", help="replay only this history (demo, mixed, seasonal, stable); repeatable"
    )
    args = parser.parse_args()
    os.environ.setdefault("RETRAIN_THREADS", "1")
    sys.path.insert(0, str(ROOT / "src"))
    params = overridden(yaml.safe_load((ROOT / "params.yaml").read_text()), args.set)
    from retrain.execution import limited_threads

    with limited_threads(), tempfile.TemporaryDirectory(prefix="retrain-policies-") as work:
        if not args.only or "demo" in args.only:
            print(table(ROOT / "data/raw", params, "demo"))
        for name, scenarios in HISTORIES.items():
            if args.only and name not in args.only:
                continue
            folder = Path(work) / name
            history(params, scenarios, folder, args.months, args.rows)
            print(table(folder, params, name))


if __name__ == "__main__":
    main()
