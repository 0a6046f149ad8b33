"""Stage backtest: replay the batches in time order under the params policy and baselines."""

import pandas as pd

from retrain import io
from retrain.backtest import Settings, per_batch_table, policies_from, replay, tradeoff_table
from retrain.errors import one_line
from retrain.features import check_hyperparameters
from retrain.log import get, logged
from retrain.params import load, section
from retrain.schema import CleaningPolicy, read_batches

log = get("backtest")


@one_line
@logged("backtest")
def main() -> None:
    params = load()
    settings = Settings.from_params(params)
    check_hyperparameters(settings.schema, section(params, "train"), settings.seed)
    cleaning = CleaningPolicy.from_params(section(params, "prepare").get("cleaning") or {})
    batches = read_batches("data/raw", settings.schema, cleaning)
    metric = str(section(params, "metrics")["primary"])
    result = replay(batches, settings, policies_from(section(params, "backtest")), metric,
                    progress=log.info)
    io.write_json("reports/backtest.json", result["summary"])
    table = pd.DataFrame(per_batch_table(result, metric))
    io.write_text("reports/backtest.csv", table.to_csv(index=False))
    io.write_text("reports/backtest_tradeoff.csv",
                  pd.DataFrame(tradeoff_table(result, metric)).to_csv(index=False))
    policy = result["summary"]["policy"]
    log.info("policy retrained %d times, mean %s %s; every batch %d, never %d", policy["retrains"],
             metric, policy[f"mean_{metric}"], result["summary"]["every_batch"]["retrains"],
             result["summary"]["never"]["retrains"])


if __name__ == "__main__":
    main()
