"""Stage decide: apply every trigger in params; write reports/decision.json and the drift plot.

The report stage writes decision.md, the same decision for a person, with the backtest's verdict.
"""

from retrain.data import files
from retrain.errors import one_line
from retrain.log import get, logged
from retrain.monitor.triggers import DRIFT_PLOT_COLUMNS, decide, drift_plot
from retrain.params import load, section
from retrain.reporting import dvc_metrics

log = get("decide")


@one_line
@logged("decide")
def main() -> None:
    evaluation = files.read_json("reports/evaluation.json")
    log.info("read the evaluation of %s", evaluation["as_of"])
    decision = decide(evaluation, section(load(), "decide"))
    files.write_json("reports/decision.json", decision)
    files.write_json(dvc_metrics.DECISION, dvc_metrics.decided(decision))
    files.write_rows("reports/plots/drift.csv", DRIFT_PLOT_COLUMNS, drift_plot(decision))
    for trigger in decision["triggers"]:
        log.debug("%s %s: %s", trigger["name"], "fired" if trigger["fired"] else "quiet", trigger["detail"])
    log.info("retrain=%s (%s)", decision["retrain"], decision["reason"])


if __name__ == "__main__":
    main()
