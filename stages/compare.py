"""Stage compare: champion against challenger on the same holdout; write the verdict."""

from pathlib import Path

import pandas as pd

from retrain import io
from retrain.errors import one_line
from retrain.evaluation import compare
from retrain.metrics import ComparePolicy
from retrain.params import load, section
from retrain.registry import load_challenger, load_champion, read_pointer
from retrain.schema import Schema

CHALLENGER = Path("models/challenger")
PLOTS = Path("reports/plots")


@one_line
def main() -> None:
    params = load()
    schema = Schema.from_params(section(params, "schema"))
    metrics = section(params, "metrics")
    policy = ComparePolicy.from_params(metrics["primary"], section(params, "compare"))
    holdout = io.read_parquet("data/prepared/holdout.parquet")
    pointer = read_pointer(".")
    champion = load_champion(".", pointer)
    challenger, challenger_md5 = load_challenger(CHALLENGER)
    record, curves = compare(champion and champion.model, challenger, holdout, schema,
                             float(metrics["threshold"]), policy)
    record["as_of"] = io.read_json("reports/decision.json").get("as_of")
    record["champion_version"] = pointer.get("version")
    record["challenger_md5"] = challenger_md5
    io.write_json("reports/promotion.json", record)
    for role, points in curves.items():
        frame = points if points is not None else pd.DataFrame({"fpr": [], "tpr": []})
        io.write_text(PLOTS / f"roc_{role}.csv", frame.to_csv(index=False))
    print(f"compare: promote={record['promote']} ({record['reason']})")


if __name__ == "__main__":
    main()
