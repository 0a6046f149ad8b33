"""Stage compare: champion against challenger on the same holdout; write the verdict and plots."""

from pathlib import Path

import pandas as pd

from retrain import io
from retrain.errors import one_line
from retrain.evaluation import compare
from retrain.log import get, logged, timed
from retrain.metrics import ComparePolicy
from retrain.params import load, section
from retrain.registry import load_challenger, load_champion, read_pointer
from retrain.schema import Schema

CHALLENGER = Path("models/challenger")
PLOTS = Path("reports/plots")
FILES = {"roc": "roc", "pr": "pr", "scores": "holdout"}
log = get("compare")


@one_line
@logged("compare")
def main() -> None:
    params = load()
    schema = Schema.from_params(section(params, "schema"))
    metrics = section(params, "metrics")
    policy = ComparePolicy.from_params(metrics["primary"], section(params, "compare"))
    holdout = io.read_parquet("data/prepared/holdout.parquet")
    log.info("read %d holdout rows of %s", len(holdout), holdout["_period"].iloc[0])
    pointer = read_pointer(".")
    champion = load_champion(".", pointer)
    challenger, challenger_md5 = load_challenger(CHALLENGER)
    with timed(log, "scored both models"):
        record, plots = compare(champion and champion.model, challenger, holdout, schema,
                                float(metrics["threshold"]), policy)
    record["as_of"] = io.read_json("reports/decision.json").get("as_of")
    record["champion_version"] = pointer.get("version")
    record["challenger_md5"] = challenger_md5
    io.write_json("reports/promotion.json", record)
    columns = {"roc": ["fpr", "tpr"], "pr": ["recall", "precision"],
               "scores": [schema.id, "actual", "predicted", "probability"]}
    for role, data in plots.items():
        for kind, name in FILES.items():
            frame = data[kind] if data is not None else pd.DataFrame(columns=columns[kind])
            io.write_frame(PLOTS / f"{name}_{role}.csv", frame)
    log.info("promote=%s (%s)", record["promote"], record["reason"])


if __name__ == "__main__":
    main()
