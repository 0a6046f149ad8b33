"""Stage prepare: validate and clean every batch; write newest, labelled, train and holdout."""

from retrain import io
from retrain.errors import one_line
from retrain.params import load, section
from retrain.schema import CleaningPolicy, Schema, read_batches
from retrain.splits import WindowPolicy, split

RAW, OUT = "data/raw", "data/prepared"


@one_line
def main() -> None:
    params = load()
    schema = Schema.from_params(section(params, "schema"))
    prepare = section(params, "prepare")
    cleaning = CleaningPolicy.from_params(prepare.get("cleaning") or {})
    batches = read_batches(RAW, schema, cleaning)
    result = split(batches, schema, WindowPolicy.from_params(prepare))
    io.write_parquet(f"{OUT}/newest.parquet", result.newest)
    io.write_parquet(f"{OUT}/labelled.parquet", result.newest_labelled)
    io.write_parquet(f"{OUT}/train.parquet", result.train)
    io.write_parquet(f"{OUT}/holdout.parquet", result.holdout)
    io.write_json("reports/prepare.json", result.summary)
    print(f"prepare: {result.summary['batches']} batches, newest {result.summary['newest_period']}, "
          f"train {result.summary['train_rows']} rows, holdout {result.summary['holdout_rows']} "
          f"rows of {result.summary['holdout_period']}")


if __name__ == "__main__":
    main()
