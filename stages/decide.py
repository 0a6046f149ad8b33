"""Stage decide: apply every trigger in params; write reports/decision.json and the drift plot.

The report stage writes decision.md, the same decision for a person, with the backtest's verdict.
"""

from retrain import io
from retrain.errors import one_line
from retrain.log import get, logged
from retrain.params import load, section
from retrain.triggers import DRIFT_PLOT_COLUMNS, decide, drift_plot

log = get("decide")


@one_line
@logged("decide")
def main() -> None:
    evaluation = io.read_json("reports/evaluation.json")
    log.info("read the evaluation of %s", evaluation["as_of"])
    decision = decide(evaluation, section(load(), "decide"))
    io.write_json("reports/decision.json", decision)
    io.write_rows("reports/plots/drift.csv", DRIFT_PLOT_COLUMNS, drift_plot(decision))
    for trigger in decision["triggers"]:
        log.debug("%s %s: %s", trigger["name"], "fired" if trigger["fired"] else "quiet", trigger["detail"])
    log.info("retrain=%s (%s)", decision["retrain"], decision["reason"])


if __name__ == "__main__":
    main()
