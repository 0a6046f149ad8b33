"""Stage evaluate: the champion on the newest rows, against its own reference profile.

The newest batch, when labelled and kept whole (prepare.max_rows.labelled), is also the labelled
batch: it is read once. With RETRAIN_ENGINE=dask the newest batch stays in partitions that a
Dask cluster's workers read and count; the stage holds only the labelled rows and samples.
The champion's probabilities are kept so that compare need not score the same rows with the
same model again.
"""

import time

from retrain.data import files
from retrain.data.schema import Schema
from retrain.engine.rows import FrameRows, parquet_rows
from retrain.errors import one_line
from retrain.log import get, logged, timed
from retrain.model.modeling import stored_scores
from retrain.monitor.evaluation import DomainCheck, champion_scores, evaluate, plot_sample
from retrain.params import load, section
from retrain.registry.champion import load_champion
from retrain.reporting import dvc_metrics

NEWEST, LABELLED = "data/prepared/newest.parquet", "data/prepared/labelled.parquet"
SCORES = "reports/plots/newest_champion.csv"
STORED = "data/scored/newest_champion.parquet"
log = get("evaluate")


@one_line
@logged("evaluate")
def main() -> None:
    params = load()
    schema = Schema.from_params(section(params, "schema"))
    threshold = float(section(params, "metrics")["threshold"])
    domain = section(params, "evaluate")["domain_classifier"]
    prepare = section(params, "prepare")
    most, seed = prepare["max_rows"]["labelled"], prepare["sample_seed"]
    prepared = files.read_json("reports/prepare.json")
    with parquet_rows(NEWEST) as newest:
        whole = prepared.get("newest_labelled") and prepared.get("labelled_rows") == newest.rows
        labelled = newest.frame if whole and isinstance(newest, FrameRows) else files.read_parquet(LABELLED)
        log.info(
            "read %d rows of the newest batch%s and %d labelled rows",
            newest.rows,
            "" if isinstance(newest, FrameRows) else f" ({len(newest.partition_rows())} partitions, Dask)",
            len(labelled),
        )
        began = time.perf_counter()
        champion = load_champion(".")
        if champion is None:
            log.info("no champion yet (cold start): nothing to evaluate")
        else:
            log.info(
                "verified and loaded champion %s in %.2f s",
                champion.pointer["version"],
                time.perf_counter() - began,
            )
        scored = champion_scores(champion, labelled, schema, threshold)
        with timed(log, "drift, domain classifier and scores"):
            record = evaluate(
                champion,
                labelled,
                newest,
                schema,
                threshold,
                observed=prepared.get("newest_observed"),
                domain=DomainCheck(int(domain["folds"]), int(domain["max_rows"]), int(domain["seed"])),
                scored=scored,
                most=most,
                seed=seed,
                window_rows=prepared.get("train_rows"),
            )
    files.write_json("reports/evaluation.json", record)
    files.write_json(
        dvc_metrics.SERVED, dvc_metrics.served(record, str(section(params, "metrics")["primary"]))
    )
    files.write_frame(SCORES, plot_sample(scored))
    files.write_parquet(
        STORED,
        stored_scores(scored[schema.id].array, scored["probability"], schema),
        {"model_md5": str(champion.pointer["md5"])} if champion else None,
    )
    scores = record["metrics"] or {}
    if champion is not None:
        log.info(
            "champion %s on %s: %s",
            champion.pointer["version"],
            record["labelled_period"],
            ", ".join(f"{k} {v}" for k, v in scores.items() if k != "rows") or record.get("note"),
        )


if __name__ == "__main__":
    main()
