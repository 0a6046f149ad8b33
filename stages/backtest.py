"""Stage backtest: replay the batches in time order under the params policy and baselines.

The replay resumes from its checkpoint (data/backtest/, kept between runs) after the last batch
it has already replayed with the same params and code, so a new batch costs one step.
"""

import pandas as pd

from retrain.backtest import (
    DRIFT_HISTORY_COLUMNS,
    BatchSource,
    Settings,
    backtest_lines,
    drift_history,
    per_batch_table,
    policies_from,
    read_checkpoint,
    replay,
    save_checkpoint,
    settings_digest,
    tradeoff_table,
)
from retrain.data import files
from retrain.data.schema import CleaningPolicy
from retrain.engine.batches import batch_reader
from retrain.errors import one_line
from retrain.log import get, logged
from retrain.model.preprocessing import check_hyperparameters
from retrain.params import load, section
from retrain.reporting import dvc_metrics

STATE = "data/backtest"
log = get("backtest")


@one_line
@logged("backtest")
def main() -> None:
    params = load()
    settings = Settings.from_params(params)
    check_hyperparameters(settings.schema, section(params, "train"), settings.training.seed)
    policies = policies_from(section(params, "backtest"), tuning=settings.training.tune.when != "never")
    cleaning = CleaningPolicy.from_params(section(params, "prepare")["cleaning"])
    metric = str(section(params, "metrics")["primary"])
    checkpoint = read_checkpoint(STATE, settings_digest(settings, policies, metric))
    with batch_reader(settings.schema, cleaning) as read:
        batches = BatchSource.files(files.list_batches("data/raw"), read, salt=repr(cleaning))
        result = replay(batches, settings, policies, metric, progress=log.info, checkpoint=checkpoint)
    files.write_json(
        "reports/backtest.json",
        {**result["summary"], "schedules": {k: v for k, v in result["schedules"].items() if k != "line"}},
    )
    dvc_metrics.write_each(dvc_metrics.BACKTEST, dvc_metrics.backtest(result["summary"], metric))
    files.write_text("reports/backtest.md", "\n\n".join(backtest_lines(result, metric)) + "\n")
    table = pd.DataFrame(per_batch_table(result, metric))
    files.write_text("reports/backtest.csv", table.to_csv(index=False))
    files.write_rows("reports/backtest_drift.csv", DRIFT_HISTORY_COLUMNS, drift_history(result))
    files.write_text(
        "reports/backtest_tradeoff.csv", pd.DataFrame(tradeoff_table(result, metric)).to_csv(index=False)
    )
    save_checkpoint(STATE, result["checkpoint"])
    policy = result["summary"]["policy"]
    log.info(
        "replayed %d of %d batches (%d models trained, %d reused)",
        result["replayed"],
        len(batches),
        result["models_trained"],
        result["models_reused"],
    )
    log.info(
        "policy retrained %d times, mean %s %s; %s",
        policy["retrains"],
        metric,
        "(no model served)" if policy[f"mean_{metric}"] is None else policy[f"mean_{metric}"],
        result["schedules"]["line"],
    )


if __name__ == "__main__":
    main()
