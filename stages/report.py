"""Stage report: decision.md and one self-contained HTML page of the latest run, offline."""

from pathlib import Path

import pandas as pd

from retrain.data import files
from retrain.data.schema import Schema
from retrain.errors import one_line
from retrain.log import get, logged
from retrain.params import load, section
from retrain.registry.champion import read_pointer
from retrain.reporting.html import RunRecord, html_report
from retrain.reporting.markdown import summary_markdown

PLOTS = Path("reports/plots")
OUT = "reports/report.html"
log = get("report")


def csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"actual": str, "predicted": str}, keep_default_na=False, na_values=[""])


@one_line
@logged("report")
def main() -> None:
    params = load()
    roles = ("champion", "challenger")
    run = RunRecord(
        decision=files.read_json("reports/decision.json"),
        evaluation=files.read_json("reports/evaluation.json"),
        promotion=files.read_json("reports/promotion.json"),
        pointer=read_pointer("."),
        schema=Schema.from_params(section(params, "schema")),
        metric=str(section(params, "metrics")["primary"]),
        curves={r: {k: csv(PLOTS / f"{k}_{r}.csv") for k in ("roc", "pr")} for r in roles},
        holdout_scores={r: csv(PLOTS / f"holdout_{r}.csv") for r in roles},
        newest_scores=csv(PLOTS / "newest_champion.csv"),
        drift=csv(PLOTS / "drift.csv"),
        backtest=csv(Path("reports/backtest.csv")),
        backtest_summary=files.read_json("reports/backtest.json"),
        against_schedules=files.read_text("reports/backtest.md").strip(),
    )
    files.write_text(
        "reports/decision.md",
        summary_markdown(run.decision, run.against_schedules, run.promotion.get("challenger_tuning")),
    )
    files.write_text(OUT, html_report(run))
    log.info("wrote %s for %s", OUT, run.decision.get("as_of"))


if __name__ == "__main__":
    main()
