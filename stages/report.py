"""Stage report: decision.md and one self-contained HTML page of the latest run, offline."""

from io import BytesIO
from pathlib import Path

import pandas as pd

from retrain.data import files
from retrain.data.schema import Schema
from retrain.errors import RegistryError, one_line
from retrain.log import get, logged
from retrain.params import load, section
from retrain.registry.champion import read_many_at_commit, read_pointer
from retrain.reporting.html import Deciding, RunRecord, html_report, promoted_on_this_batch
from retrain.reporting.markdown import summary_markdown
from retrain.reporting.served import served_history

PLOTS = Path("reports/plots")
OUT = "reports/report.html"
ROLES = ("champion", "challenger")
CURVES = [f"{PLOTS}/{kind}_{role}.csv" for kind in ("roc", "pr") for role in ROLES]
SCORES = [f"{PLOTS}/holdout_{role}.csv" for role in ROLES]
RECORDS = ["reports/decision.json", "reports/evaluation.json", "reports/promotion.json"]
log = get("report")


def csv(source: Path | bytes) -> pd.DataFrame:
    data = BytesIO(source) if isinstance(source, bytes) else source
    return pd.read_csv(data, dtype={"actual": str, "predicted": str}, keep_default_na=False, na_values=[""])


def deciding(read: dict[str, bytes | Path]) -> Deciding:
    """The records of one run, from the working tree or from a commit."""

    def record(path: str) -> dict:
        source = read[path]
        return files.read_json(source) if isinstance(source, Path) else files.loads_json(source, path)

    return Deciding(
        decision=record(RECORDS[0]),  # type: ignore[arg-type]  # JSON read as the record it is
        evaluation=record(RECORDS[1]),
        promotion=record(RECORDS[2]),  # type: ignore[arg-type]
        curves={r: {k: csv(read[f"{PLOTS}/{k}_{r}.csv"]) for k in ("roc", "pr")} for r in ROLES},
        holdout_scores={
            r: csv(read[f"{PLOTS}/holdout_{r}.csv"]) if f"{PLOTS}/holdout_{r}.csv" in read else None
            for r in ROLES
        },
    )


def deciding_run(commit: str, as_of: str) -> Deciding | None:
    """The run that promoted the champion, from the commit that registered it: its decision,
    evaluation and verdict, and both models' holdout scores when DVC can read them."""
    try:
        read: dict[str, bytes | Path] = dict(read_many_at_commit(".", RECORDS + CURVES, commit))
    except RegistryError as err:
        log.warning("the run that promoted the champion is not shown: %s", err)
        return None
    try:
        read.update(read_many_at_commit(".", SCORES, commit))
    except RegistryError as err:
        log.warning("the holdout scores of the run that promoted the champion are not shown: %s", err)
    run = deciding(read)
    return run if run.decision.get("as_of") == as_of else None


@one_line
@logged("report")
def main() -> None:
    params = load()
    current = deciding({path: Path(path) for path in RECORDS + CURVES + SCORES})
    pointer = read_pointer(".")
    decided = (
        deciding_run(str(pointer["commit"]), str(current.decision["as_of"]))
        if promoted_on_this_batch(pointer, current.decision) and pointer.get("commit")
        else None
    )
    challenger = files.read_json("models/challenger/metadata.json")
    run = RunRecord(
        run=current,
        pointer=pointer,
        schema=Schema.from_params(section(params, "schema")),
        metric=str(section(params, "metrics")["primary"]),
        prepare=files.read_json("reports/prepare.json"),
        backtest=csv(Path("reports/backtest.csv")),
        backtest_summary=files.read_json("reports/backtest.json"),
        against_schedules=files.read_text("reports/backtest.md").strip(),
        replay_drift=csv(Path("reports/backtest_drift.csv")),
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
