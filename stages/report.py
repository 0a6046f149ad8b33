"""Stage report: decision.md and one self-contained HTML page of the latest run, offline."""

from retrain.data import files
from retrain.data.schema import Schema
from retrain.errors import one_line
from retrain.log import get, logged
from retrain.params import load, section
from retrain.registry.champion import read_pointer
from retrain.reporting.html import RunRecord, html_report, promoted_on_this_batch
from retrain.reporting.markdown import summary_markdown
from retrain.reporting.served import served_history
from retrain.reporting.sources import read_csv, run_at, this_run

OUT = "reports/report.html"
log = get("report")


@one_line
@logged("report")
def main() -> None:
    params = load()
    current = this_run()
    pointer = read_pointer(".")
    promoted_here = promoted_on_this_batch(pointer, current.decision) and bool(pointer.get("commit"))
    decided = run_at(str(pointer["commit"]), str(current.decision["as_of"]), log) if promoted_here else None
    challenger = files.read_json("models/challenger/metadata.json")
    run = RunRecord(
        run=current,
        pointer=pointer,
        schema=Schema.from_params(section(params, "schema")),
        metric=str(section(params, "metrics")["primary"]),
        prepare=files.read_json("reports/prepare.json"),
        backtest=read_csv("reports/backtest.csv"),
        backtest_summary=files.read_json("reports/backtest.json"),
        against_schedules=files.read_text("reports/backtest.md").strip(),
        replay_drift=read_csv("reports/backtest_drift.csv"),
        production=served_history(".", (current.evaluation, current.decision)),
        challenger_importance=(
            (current.evaluation.get("champion") or {}).get("importance")  # the challenger it was
            if decided
            else challenger.get("importance")
        ),
        decided=decided,
    )
    files.write_text(
        "reports/decision.md",
        summary_markdown(current.decision, run.against_schedules, current.promotion.get("challenger_tuning")),
    )
    files.write_text(OUT, html_report(run))
    log.info("wrote %s for %s", OUT, current.decision.get("as_of"))


if __name__ == "__main__":
    main()
