"""Stage train: fit a challenger when decide asked for one; otherwise say so and stop."""

import shutil
from pathlib import Path

from retrain import io
from retrain.errors import one_line
from retrain.features import check_hyperparameters
from retrain.params import load, section
from retrain.schema import Schema
from retrain.training import skipped_metadata, train_challenger

OUT = Path("models/challenger")


@one_line
def main() -> None:
    decision = io.read_json("reports/decision.json")
    shutil.rmtree(OUT, ignore_errors=True)
    if not decision["retrain"]:
        io.write_json(OUT / "metadata.json", skipped_metadata(decision))
        print(f"train: nothing to train ({decision['reason']})")
        return
    params = load()
    schema = Schema.from_params(section(params, "schema"))
    train = section(params, "train")
    estimator = str(train["estimator"])
    check_hyperparameters(schema, train, int(train["seed"]))
    profile = section(params, "profile")
    challenger = train_challenger(
        io.read_parquet("data/prepared/train.parquet"),
        io.read_parquet("data/prepared/holdout.parquet"),
        schema, estimator, train.get(estimator) or {}, int(train["seed"]),
        float(section(params, "metrics")["threshold"]), decision,
        int(profile["bins"]), int(profile["reference_rows"]), int(profile["reference_periods"]),
    )
    metadata = challenger.metadata
    io.atomic_write_bytes(OUT / "model.joblib", challenger.model_bytes)
    io.write_json(OUT / "metadata.json", metadata)
    io.write_json(OUT / "profile.json", challenger.profile)
    io.write_parquet(OUT / "reference.parquet", challenger.reference)
    print(f"train: {estimator} on {metadata['window']['rows']} rows "
          f"({metadata['window']['periods'][0]}..{metadata['trained_through_period']}), "
          f"holdout roc_auc {metadata['holdout']['metrics']['roc_auc']}")


if __name__ == "__main__":
    main()
