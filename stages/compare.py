"""Stage compare: champion against challenger on the same holdout; write the verdict and plots.

Each model's holdout probabilities come from the stage that already scored those rows with that
model (evaluate for the champion, train for the challenger), checked by the model's md5; a model
is loaded and scored here only when they do not cover the holdout.
"""

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain.data import files
from retrain.data.schema import PERIOD, Schema
from retrain.errors import one_line
from retrain.log import get, logged, timed
from retrain.model.modeling import predict_proba
from retrain.model.tuning import summary
from retrain.monitor.comparison import ComparePolicy, compare, holdout_probabilities, learned_from, window_of
from retrain.params import load, section
from retrain.records import TagRecord
from retrain.registry.champion import challenger_md5, load_challenger, load_trusted, trusted_pointer
from retrain.registry.commands import locked_verdict
from retrain.reporting import dvc_metrics

CHALLENGER = Path("models/challenger")
HOLDOUT = "data/prepared/holdout.parquet"
STORED = {
    "champion": "data/scored/newest_champion.parquet",
    "challenger": "data/scored/holdout_challenger.parquet",
}
PLOTS = Path("reports/plots")
FILES = {"roc": "roc", "pr": "pr", "scores": "holdout"}
log = get("compare")


@functools.cache
def full_holdout() -> pd.DataFrame:
    """Every holdout column: read once, and only when a model has to be scored here."""
    return files.read_parquet(HOLDOUT)


def holdout_proba(
    role: str, md5: str | None, model: Callable[[], Any], holdout: pd.DataFrame, schema: Schema
) -> np.ndarray | None:
    def rescore() -> np.ndarray:
        with timed(log, f"scored the {role} on the holdout (no stored probabilities for it)"):
            return predict_proba(model(), full_holdout(), schema)

    return holdout_probabilities(
        md5,
        files.read_parquet(STORED[role]),
        files.parquet_metadata(STORED[role]).get("model_md5"),
        holdout[schema.id],
        schema.id,
        rescore,
    )


def trusted(record: TagRecord | None) -> TagRecord:
    """The champion's tag record; compare scores a champion only when there is one (md5 set)."""
    assert record is not None
    return record


@one_line
@logged("compare")
def main() -> None:
    params = load()
    schema = Schema.from_params(section(params, "schema"))
    metrics = section(params, "metrics")
    policy = ComparePolicy.from_params(metrics["primary"], section(params, "compare"))
    holdout = files.read_parquet(HOLDOUT, columns=[schema.id, schema.target, schema.time, PERIOD])
    log.info("read %d holdout rows of %s", len(holdout), holdout[PERIOD].iloc[0])
    pointer, record = trusted_pointer(".")
    md5 = {"champion": record["md5"] if record else None, "challenger": challenger_md5(CHALLENGER)}
    models = {
        "champion": lambda: load_trusted(".", pointer, trusted(record)).model,
        "challenger": lambda: load_challenger(CHALLENGER)[0],
    }
    probabilities = {role: holdout_proba(role, md5[role], models[role], holdout, schema) for role in md5}
    challenger = files.read_json(CHALLENGER / "metadata.json")
    verdict, plots = compare(
        probabilities,
        holdout,
        schema,
        float(metrics["threshold"]),
        policy,
        windows=(
            learned_from(pointer.get("window"), pointer.get("rows")),
            window_of(challenger),
        ),
    )
    decision = files.read_json("reports/decision.json")
    verdict["as_of"] = decision.get("as_of")
    verdict["asked_by"] = list(decision.get("fired") or [])
    verdict["champion_version"] = pointer.get("version")
    verdict["challenger_md5"] = md5["challenger"]
    if md5["challenger"] is None and decision.get("retrain"):  # asked for, and train said why not
        verdict["reason"] = f"{verdict['reason']}: {challenger['reason']}"
    tuning = challenger.get("tuning")
    if tuning is not None:
        verdict["challenger_tuning"] = summary(tuning)
    verdict = locked_verdict(verdict, pointer, schema.period)
    files.write_json("reports/promotion.json", verdict)
    dvc_metrics.write_each(dvc_metrics.HOLDOUT, dvc_metrics.holdout(verdict, policy.primary))
    columns = {
        "roc": ["fpr", "tpr"],
        "pr": ["recall", "precision"],
        "scores": [schema.id, "actual", "predicted", "probability"],
    }
    for role, data in plots.items():
        for kind, name in FILES.items():
            frame = data[kind] if data is not None else pd.DataFrame(columns=columns[kind])
            files.write_frame(PLOTS / f"{name}_{role}.csv", frame)
    log.info("promote=%s (%s)", verdict["promote"], verdict["reason"])


if __name__ == "__main__":
    main()
