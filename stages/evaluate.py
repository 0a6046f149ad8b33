"""Stage evaluate: score the champion on the newest labelled rows it never trained on."""

from retrain import io
from retrain.errors import one_line
from retrain.evaluation import evaluate
from retrain.params import load, section
from retrain.registry import load_champion, read_pointer
from retrain.schema import PERIOD, Schema


@one_line
def main() -> None:
    params = load()
    schema = Schema.from_params(section(params, "schema"))
    threshold = float(section(params, "metrics")["threshold"])
    as_of = str(io.read_parquet("data/prepared/newest.parquet", columns=[PERIOD])[PERIOD].iloc[0])
    labelled = io.read_parquet("data/prepared/labelled.parquet")
    pointer = read_pointer(".")
    champion = load_champion(".", pointer)
    record = evaluate(champion and champion.model, champion and champion.metadata, pointer,
                      labelled, as_of, schema, threshold)
    io.write_json("reports/evaluation.json", record)
    scores = record["metrics"] or {}
    print(f"evaluate: champion {pointer.get('version')} on {record['labelled_period']}: "
          + (", ".join(f"{k} {v}" for k, v in scores.items() if k != "rows") or record.get("note")))


if __name__ == "__main__":
    main()
