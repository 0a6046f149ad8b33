"""What evaluate records about the champion and the newest batch, and what compare decides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retrain.data.schema import PERIOD, Schema
from retrain.data.splits import HoldoutCut, row_fingerprints, sample_positions
from retrain.engine.rows import Rows, as_rows
from retrain.errors import DataError
from retrain.model.metrics import pr_points, roc_points, score
from retrain.model.modeling import labels, predict_proba
from retrain.monitor.drift import batch_drift, estimated_performance
from retrain.records import ModelMetadata

if TYPE_CHECKING:
    from retrain.registry.champion import Champion


def periods_between(older: str, newer: str, freq: str) -> int:
    """Batches of data time from `older` to `newer` (0 when equal)."""
    return (pd.Period(newer, freq=freq) - pd.Period(older, freq=freq)).n


def unseen_rows(labelled: pd.DataFrame, schema: Schema, metadata: ModelMetadata) -> pd.DataFrame:
    """Rows the model never trained on: from its holdout's cut on (in the order of time, then
    the seeded hash of the id that splits rows sharing a timestamp), or, for a model that
    recorded no cut, rows strictly newer than the last row it trained on."""
    cut = HoldoutCut.from_dict(metadata.get("holdout") or {})
    if cut is None:
        return labelled.loc[labelled[schema.time] > pd.Timestamp(metadata["trained_until"])]
    return labelled.loc[cut.at_or_after(labelled, schema.time, schema.id)]


@dataclass(frozen=True)
class DomainCheck:
    """How the domain classifier is run: folds, rows per side, seed."""

    folds: int = 3
    max_rows: int = 1000
    seed: int = 0


def scored_frame(rows: pd.DataFrame, proba: np.ndarray, schema: Schema, threshold: float) -> pd.DataFrame:
    """Per labelled row: id, actual and predicted label, probability (what confusion plots read)."""
    actual = np.where(rows[schema.target].to_numpy().astype(int) == 1, schema.positive, schema.negative)
    return pd.DataFrame(
        {
            schema.id: rows[schema.id].array,
            "actual": actual,
            "predicted": labels(proba, schema, threshold),
            "probability": proba,
        }
    )


PLOT_ROWS = 20_000


def plot_sample(scored: pd.DataFrame, most: int = PLOT_ROWS) -> pd.DataFrame:
    """At most `most` rows, evenly spaced and in order, so `dvc plots` stays light for big
    batches; the metrics are always computed on every row scored."""
    if len(scored) <= most:
        return scored
    keep = np.unique(np.linspace(0, len(scored) - 1, most).round().astype(int))
    return scored.iloc[keep]


def champion_scores(
    champion: Champion | None, labelled: pd.DataFrame, schema: Schema, threshold: float
) -> pd.DataFrame:
    """The champion's scores on the labelled rows it never trained on: after its holdout cut,
    and none that repeats, id, features and label alike, one of its training rows (rows re-sent
    under a new date); no rows at cold start. attrs["repeated"] counts those left out."""
    if champion is None:
        return pd.DataFrame(columns=[schema.id, "actual", "predicted", "probability"])
    rows = unseen_rows(labelled, schema, champion.metadata)
    repeated = np.zeros(len(rows), dtype=bool)
    if champion.trained_rows is not None and len(rows):
        repeated = np.isin(row_fingerprints(rows, schema), champion.trained_rows, assume_unique=False)
        rows = rows.loc[~repeated]
    scored = scored_frame(rows, predict_proba(champion.model, rows, schema), schema, threshold)
    scored.attrs["repeated"] = int(repeated.sum())
    return scored


def champion_baseline(champion: Champion) -> dict[str, Any]:
    """What the champion's performance is measured against: the score recorded when it last
    held against a challenger (the pointer's `baseline`, for this version), else its own
    holdout score at training."""
    held: dict[str, Any] = dict(champion.pointer.get("baseline") or {})
    if held.get("version") == champion.pointer["version"] and held.get("metrics"):
        return {
            "period": held.get("as_of"),
            "metrics": held["metrics"],
            "estimated": None,
            "held": True,
            "holds": int(held.get("holds", 1)),
            **({"asked_by": held["asked_by"]} if "asked_by" in held else {}),
            **({"challenger_tuned": held["challenger_tuned"]} if "challenger_tuned" in held else {}),
        }
    holdout = (champion.profile or {}).get("holdout") or {}
    return {
        "period": champion.metadata["holdout"].get("period"),
        "metrics": holdout.get("metrics"),
        "estimated": holdout.get("estimated"),
        "held": False,
    }


def evaluate(
    champion: Champion | None,
    labelled: pd.DataFrame,
    newest: pd.DataFrame | Rows,
    schema: Schema,
    threshold: float,
    *,
    observed: dict[str, Any] | None = None,
    domain: DomainCheck | None = None,
    scored: pd.DataFrame | None = None,
    most: int | None = None,
    seed: int = 0,
    window_rows: int | None = None,
) -> dict[str, Any]:
    """Everything decide needs, computed from the newest batch and the champion's profile only.

    Performance, concept and label statistics use the newest labelled rows the champion never
    trained on (`scored`, from champion_scores, when the caller has them already); drift and
    schema changes use the newest batch; estimated performance its labelled rows, or at most
    `most` of its rows (a seeded sample, as prepare keeps of a labelled batch) when unlabelled.
    The newest batch may live in partitions on a cluster (`Rows`); every statistic is the same.
    `window_rows`: the rows a challenger trained now would learn from (prepare's train_rows).
    """
    newest = as_rows(newest)
    as_of = str(newest.take(np.arange(1), [PERIOD])[PERIOD].iloc[0])
    labelled_period = str(labelled[PERIOD].iloc[0]) if len(labelled) else None
    record: dict[str, Any] = {
        "as_of": as_of,
        "labelled_period": labelled_period,
        "newest_labelled": labelled_period == as_of,
        "champion": None,
        "metrics": None,
        "champion_age": None,
    }
    if champion is None:
        record["note"] = "no champion yet: cold start"
        return record
    metadata, profile = champion.metadata, champion.profile
    if profile is None:
        raise DataError(f"champion {champion.pointer['version']} has no reference profile; retrain it")
    pointer = champion.pointer
    record["champion"] = {
        "version": pointer["version"],
        "tag": pointer["tag"],
        "commit": pointer["commit"],
        "trained_through_period": metadata["trained_through_period"],
        "trained_until": metadata["trained_until"],
    }
    if metadata.get("importance"):
        record["champion"]["importance"] = metadata["importance"]
    record["baseline"] = champion_baseline(champion)
    if record["baseline"]["held"]:
        record["baseline"]["age"] = periods_between(str(record["baseline"]["period"]), as_of, schema.period)
    record["champion_age"] = periods_between(metadata["trained_through_period"], as_of, schema.period)
    trained_rows = (metadata.get("window") or {}).get("rows")
    if window_rows is not None and trained_rows:
        record["data_growth"] = {"champion_rows": int(trained_rows), "window_rows": int(window_rows)}
    domain = domain or DomainCheck()
    drift = batch_drift(
        profile,
        champion.reference,
        newest,
        schema,
        observed or {},
        domain.folds,
        domain.max_rows,
        domain.seed,
    )
    changes = record["schema_changes"] = drift.schema_changes
    if changes["missing_columns"]:
        raise DataError(
            f"the champion {pointer['version']} needs column(s) "
            f"{', '.join(changes['missing_columns'])} that params.yaml schema no "
            "longer has; restore them or retrain from scratch (breaking change)"
        )
    if scored is None:
        scored = champion_scores(champion, labelled, schema, threshold)
    record["rows_seen_in_training"] = int(len(labelled) - len(scored))
    record["rows_repeating_training_rows"] = int(scored.attrs.get("repeated", 0))
    if len(scored):
        y = (scored["actual"] == schema.positive).to_numpy().astype(int)
        proba = scored["probability"].to_numpy()
        record["metrics"] = score(y, proba, threshold)
        errors = int(((proba >= threshold).astype(int) != y).sum())
        record["concept"] = {
            "errors": errors,
            "rows": int(len(scored)),
            "reference_errors": profile["holdout"]["errors"],
            "reference_rows": profile["holdout"]["rows"],
        }
        record["label"] = {
            "positive": int(y.sum()),
            "rows": int(len(scored)),
            "reference_positive": profile["label_positive"],
            "reference_rows": profile["rows"],
        }
        held = record["baseline"]["metrics"] if record["baseline"].get("held") else None
        if held:
            rows = int(held["rows"])
            record["concept"].update(
                reference_errors=round((1 - held["accuracy"]) * rows), reference_rows=rows
            )
            record["label"].update(
                reference_positive=round(held["positive_rate"] * rows), reference_rows=rows
            )
    else:
        record["note"] = f"every labelled row of {labelled_period} was in the champion's training"
    record["drift"] = {"period": as_of, "rows": newest.rows, "features": drift.features}
    record["domain_classifier"] = drift.domain
    estimated_on = (
        labelled if record["newest_labelled"] else newest.take(sample_positions(newest.rows, most, seed))
    )
    same_rows = len(scored) == len(estimated_on) and scored[schema.id].array.equals(
        estimated_on[schema.id].array
    )
    newest_proba = (
        scored["probability"].to_numpy() if same_rows else predict_proba(champion.model, estimated_on, schema)
    )
    record["estimated"] = {"period": as_of, **estimated_performance(newest_proba, threshold)}
    return record


def curve_points(y_true: Any, proba: Any, most: int = 500) -> dict[str, pd.DataFrame]:
    """ROC and precision-recall points (at most `most` each, so large holdouts stay small in
    git); empty frames when the rows hold only one class."""
    y_true, proba = np.asarray(y_true).astype(int), np.asarray(proba, dtype=float)
    if np.unique(y_true).size < 2:
        return {
            "roc": pd.DataFrame({"fpr": [], "tpr": []}),
            "pr": pd.DataFrame({"recall": [], "precision": []}),
        }
    fpr, tpr = roc_points(y_true, proba)
    recall, precision = pr_points(y_true, proba)
    return {
        "roc": plot_sample(pd.DataFrame({"fpr": fpr.round(6), "tpr": tpr.round(6)}), most),
        "pr": plot_sample(pd.DataFrame({"recall": recall.round(6), "precision": precision.round(6)}), most),
    }
