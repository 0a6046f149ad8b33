"""Stage train: fit a challenger when decide asked for one; otherwise say so and stop."""

import shutil
from pathlib import Path

from retrain.data import files
from retrain.data.schema import Schema
from retrain.errors import one_line
from retrain.log import get, logged, timed
from retrain.model.importance import permutation_importance
from retrain.model.modeling import stored_scores
from retrain.model.training import (
    TrainingSettings,
    describe_challenger,
    fit_challenger,
    skipped_metadata,
    why_no_challenger,
)
from retrain.params import load, section
from retrain.records import ModelMetadata

OUT = Path("models/challenger")
SCORES = "data/scored/holdout_challenger.parquet"
HOLDOUT = "data/prepared/holdout.parquet"
log = get("train")


@one_line
@logged("train")
def main() -> None:
    decision = files.read_json("reports/decision.json")
    params = load()
    schema = Schema.from_params(section(params, "schema"))
    shutil.rmtree(OUT, ignore_errors=True)
    if not decision["retrain"]:
        no_challenger(schema, skipped_metadata(decision))
        log.info("nothing to train (%s)", decision["reason"])
        return
    # scikit-learn is imported only when there is a model to fit (0.8 s less on other months)
    from retrain.model.preprocessing import check_hyperparameters

    train = section(params, "train")
    check_hyperparameters(schema, train, int(train["seed"]))
    settings = TrainingSettings.from_params(
        {name: section(params, name) for name in ("train", "profile", "metrics", "prepare")}
    )
    baseline = files.read_json("reports/evaluation.json").get("baseline")
    train_rows = files.read_parquet("data/prepared/train.parquet")
    why = why_no_challenger(
        train_rows,
        schema,
        holdout_rows=files.parquet_row_count(HOLDOUT),
        min_holdout_rows=int(section(params, "compare")["min_holdout_rows"]),
    )
    if why:
        no_challenger(schema, skipped_metadata(decision, why))
        log.warning("no challenger: %s", why)
        return
    log.info("read %d training rows; fitting %s", len(train_rows), settings.estimator)
    with timed(log, "fitted the challenger"):
        fitted = fit_challenger(train_rows, schema, settings, decision=decision, baseline=baseline)
    holdout = files.read_parquet(HOLDOUT)
    with timed(log, f"scored {len(holdout)} holdout rows and profiled the challenger"):
        challenger = describe_challenger(fitted, train_rows, holdout, schema, settings, decision)
    metadata = challenger.metadata
    with timed(log, "permutation importance on the holdout"):
        metadata["importance"] = permutation_importance(
            fitted.model,
            holdout,
            schema,
            metric=str(section(params, "metrics")["primary"]),
            threshold=settings.threshold,
            seed=settings.seed,
        )
    files.atomic_write_bytes(OUT / "model.skops", challenger.model_bytes)
    files.write_json(OUT / "metadata.json", metadata)
    files.write_json(OUT / "profile.json", challenger.profile)
    files.write_parquet(OUT / "reference.parquet", challenger.reference)
    files.atomic_write_bytes(OUT / "trained_rows.npy", files.npy_bytes(challenger.trained_rows))
    files.write_parquet(
        SCORES,
        stored_scores(holdout[schema.id].array, challenger.holdout_proba, schema),
        {"model_md5": metadata["model_md5"]},
    )
    log.info(
        "%s on %d rows (%s..%s), holdout roc_auc %s",
        settings.estimator,
        metadata["window"]["rows"],
        metadata["window"]["periods"][0],
        metadata["trained_through_period"],
        metadata["holdout"]["metrics"]["roc_auc"],
    )


def no_challenger(schema: Schema, metadata: ModelMetadata) -> None:
    files.write_parquet(SCORES, stored_scores([], [], schema))
    files.write_json(OUT / "metadata.json", metadata)


if __name__ == "__main__":
    main()
