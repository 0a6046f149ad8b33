"""Stage evaluate: the champion on the newest rows, against its own reference profile."""

from retrain import io
from retrain.errors import one_line
from retrain.evaluation import DomainCheck, evaluate
from retrain.params import load, section
from retrain.registry import load_champion, read_pointer
from retrain.schema import Schema


@one_line
def main() -> None:
    params = load()
    schema = Schema.from_params(section(params, "schema"))
    threshold = float(section(params, "metrics")["threshold"])
    domain = section(params, "evaluate")["domain_classifier"]
    champion = load_champion(".", read_pointer("."))
    record = evaluate(
        champion,
        io.read_parquet("data/prepared/labelled.parquet"),
        io.read_parquet("data/prepared/newest.parquet"),
        schema, threshold,
        io.read_json("reports/prepare.json").get("newest_observed"),
        DomainCheck(int(domain["folds"]), int(domain["max_rows"]), int(domain["seed"])),
    )
    io.write_json("reports/evaluation.json", record)
    scores = record["metrics"] or {}
    version = champion.pointer["version"] if champion else None
    print(f"evaluate: champion {version} on {record['labelled_period']}: "
          + (", ".join(f"{k} {v}" for k, v in scores.items() if k != "rows") or record.get("note")))


if __name__ == "__main__":
    main()
