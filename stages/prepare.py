"""Stage prepare: validate and clean every batch; write newest, labelled, train and holdout.

With RETRAIN_ENGINE=dask the batches are read, validated and cleaned by partition on a Dask
cluster; the stage holds the sampled rows and one row group at a time of the newest batch."""

from retrain.data import files
from retrain.data.schema import CleaningPolicy, Schema
from retrain.data.splits import WindowPolicy, split, window_batches
from retrain.engine.batches import batch_reader, write_batch
from retrain.errors import one_line
from retrain.log import get, logged, timed
from retrain.params import load, section

RAW, OUT = "data/raw", "data/prepared"
log = get("prepare")


@one_line
@logged("prepare")
def main() -> None:
    params = load()
    schema = Schema.from_params(section(params, "schema"))
    prepare = section(params, "prepare")
    cleaning = CleaningPolicy.from_params(prepare["cleaning"])
    policy = WindowPolicy.from_params(prepare)
    paths = files.list_batches(RAW)
    with batch_reader(schema, cleaning) as read:
        with timed(log, f"read and validated the batches {RAW} needs for the window"):
            batches = window_batches(paths, read, policy)
        for batch in batches:
            log.debug(
                "%s: %d rows, %s", batch.source, batch.rows, "labelled" if batch.labelled else "no labels"
            )
        result = split(batches, schema, policy, files=len(paths))
        summary, newest = result.summary, result.newest_batch
        del batches
        # the samples are written and let go first: the stage holds none while it writes the newest batch
        files.write_parquet(f"{OUT}/train.parquet", result.train)
        files.write_parquet(f"{OUT}/holdout.parquet", result.holdout)
        same_rows = summary["newest_labelled"] and summary["labelled_rows"] == summary["newest_rows"]
        if not same_rows:
            files.atomic_write_bytes(f"{OUT}/labelled.parquet", files.parquet_bytes(result.newest_labelled))
        del result
        write_batch(f"{OUT}/newest.parquet", newest)
    if same_rows:  # the same rows: the same bytes
        files.atomic_write_bytes(f"{OUT}/labelled.parquet", files.read_bytes(f"{OUT}/newest.parquet"))
    files.write_json("reports/prepare.json", summary)
    log.info(
        "%d batches (%d read), newest %s (%d rows%s); train %d rows of %s..%s, holdout %d rows of %s",
        summary["batches"],
        summary["batches_read"],
        summary["newest_period"],
        summary["newest_rows"],
        "" if summary["newest_labelled"] else ", no labels yet",
        summary["train_rows"],
        summary["train_periods"][0],
        summary["train_periods"][-1],
        summary["holdout_rows"],
        summary["holdout_period"],
    )
    if summary["blank_labels_dropped"]:
        log.info(
            "left out %d rows whose label is blank (prepare.cleaning.blank_label)",
            summary["blank_labels_dropped"],
        )
    for kept, of, key in (
        (summary["train_rows"], summary["train_window_rows"], "train"),
        (summary["labelled_rows"], summary["labelled_batch_rows"], "labelled"),
    ):
        if kept < of:
            log.info("kept a sample of %d of %d %s rows (prepare.max_rows.%s)", kept, of, key, key)


if __name__ == "__main__":
    main()
