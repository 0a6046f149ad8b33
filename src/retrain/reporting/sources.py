"""Where the report's records come from: the working tree (this run), or the commit that
registered the champion (the run that promoted it, when that happened on this batch)."""

from __future__ import annotations

import logging
from io import BytesIO
from pathlib import Path
from typing import Any, cast

import pandas as pd

from retrain.data import files
from retrain.errors import RegistryError
from retrain.records import Decision, Promotion
from retrain.registry.champion import read_many_at_commit
from retrain.reporting.html import Deciding

PLOTS = "reports/plots"
ROLES = ("champion", "challenger")
RECORDS = ["reports/decision.json", "reports/evaluation.json", "reports/promotion.json"]
CURVES = [f"{PLOTS}/{kind}_{role}.csv" for kind in ("roc", "pr") for role in ROLES]
SCORES = [f"{PLOTS}/holdout_{role}.csv" for role in ROLES]


def read_csv(source: str | Path | bytes) -> pd.DataFrame:
    """A plot's rows, labels kept as text (a label "1" stays "1")."""
    data = BytesIO(source) if isinstance(source, bytes) else source
    return pd.read_csv(data, dtype={"actual": str, "predicted": str}, keep_default_na=False, na_values=[""])


def deciding(read: dict[str, bytes | Path]) -> Deciding:
    """One run's records and holdout plots, each a file of the working tree or a commit's bytes."""

    def record(path: str) -> Any:
        source = read[path]
        return files.read_json(source) if isinstance(source, Path) else files.loads_json(source, path)

    return Deciding(
        decision=cast(Decision, record(RECORDS[0])),
        evaluation=record(RECORDS[1]),
        promotion=cast(Promotion, record(RECORDS[2])),
        curves={r: {k: read_csv(read[f"{PLOTS}/{k}_{r}.csv"]) for k in ("roc", "pr")} for r in ROLES},
        holdout_scores={
            r: read_csv(read[path]) if (path := f"{PLOTS}/holdout_{r}.csv") in read else None for r in ROLES
        },
    )


def this_run() -> Deciding:
    return deciding({path: Path(path) for path in RECORDS + CURVES + SCORES})


def run_at(commit: str, as_of: str, log: logging.Logger) -> Deciding | None:
    """The run recorded at `commit` when it decided on `as_of`: its records, and both models'
    holdout scores when DVC can read them (a warning says what is left out)."""
    read: dict[str, bytes | Path]
    try:  # one view of the commit for everything: opening it costs most of the read
        read = dict(read_many_at_commit(".", RECORDS + CURVES + SCORES, commit))
    except RegistryError as missing:
        try:
            read = dict(read_many_at_commit(".", RECORDS + CURVES, commit))
        except RegistryError as err:
            log.warning("the run that promoted the champion is not shown: %s", err)
            return None
        log.warning("the holdout scores of the run that promoted the champion are not shown: %s", missing)
    run = deciding(read)
    return run if run.decision.get("as_of") == as_of else None
