"""What evaluate records about the champion and the newest batch, and what compare decides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from .drift import domain_auc, estimated_performance, feature_drift, schema_changes
from .errors import DataError
from .metrics import ComparePolicy, score, verdict
from .modeling import predict_proba
from .schema import PERIOD, Schema

if TYPE_CHECKING:
    from .registry import Champion


def periods_between(older: str, newer: str, freq: str) -> int:
    """Batches of data time from `older` to `newer` (0 when equal)."""
    return (pd.Period(newer, freq=freq) - pd.Period(older, freq=freq)).n


def unseen_rows(labelled: pd.DataFrame, schema: Schema, trained_until: str) -> pd.DataFrame:
    """Rows strictly newer than the last row the model trained on."""
    return labelled.loc[labelled[schema.time] > pd.Timestamp(trained_until)]


@dataclass(frozen=True)
class DomainCheck:
    """How the domain classifier is run: folds, rows per side, seed."""

    folds: int = 5
    max_rows: int = 2000
    seed: int = 0


def evaluate(champion: Champion | None, labelled: pd.DataFrame, newest: pd.DataFrame,
             schema: Schema, threshold: float, observed: dict[str, Any] | None = None,
             domain: DomainCheck | None = None) -> dict[str, Any]:
    """Everything decide needs, computed from the newest batch and the champion's profile only.

    Performance, concept and label statistics use the newest labelled rows the champion never
    trained on; drift, schema changes and estimated performance use the newest batch.
    """
    as_of = str(newest[PERIOD].iloc[0])
    labelled_period = str(labelled[PERIOD].iloc[0]) if len(labelled) else None
    record: dict[str, Any] = {"as_of": as_of, "labelled_period": labelled_period,
                              "newest_labelled": labelled_period == as_of,
                              "champion": None, "metrics": None, "champion_age": None}
    if champion is None:
        record["note"] = "no champion yet: cold start"
        return record
    metadata, profile = champion.metadata, champion.profile
    pointer = champion.pointer
    record["champion"] = {
        "version": pointer["version"], "tag": pointer["tag"], "commit": pointer["commit"],
        "trained_through_period": metadata["trained_through_period"],
        "trained_until": metadata["trained_until"],
    }
    record["champion_age"] = periods_between(metadata["trained_through_period"], as_of,
                                             schema.period)
    changes = schema_changes(profile, newest, schema, observed or {})
    record["schema_changes"] = changes
    if changes["missing_columns"]:
        raise DataError(f"the champion {pointer['version']} needs column(s) "
                        f"{', '.join(changes['missing_columns'])} that params.yaml schema no "
                        "longer has; restore them or retrain from scratch (breaking change)")
    rows = unseen_rows(labelled, schema, metadata["trained_until"])
    record["rows_seen_in_training"] = int(len(labelled) - len(rows))
    if len(rows):
        y = rows[schema.target].to_numpy().astype(int)
        proba = predict_proba(champion.model, rows, schema)
        record["metrics"] = score(y, proba, threshold)
        errors = int(((proba >= threshold).astype(int) != y).sum())
        record["concept"] = {"errors": errors, "rows": int(len(rows)),
                             "reference_errors": profile["holdout"]["errors"],
                             "reference_rows": profile["holdout"]["rows"]}
        record["label"] = {"positive": int(y.sum()), "rows": int(len(rows)),
                           "reference_positive": profile["label_positive"],
                           "reference_rows": profile["rows"]}
    else:
        record["note"] = f"every labelled row of {labelled_period} was in the champion's training"
    record["drift"] = {"period": as_of, "rows": int(len(newest)),
                       "features": feature_drift(profile, champion.reference, newest, schema)}
    domain = domain or DomainCheck()
    record["domain_classifier"] = domain_auc(champion.reference, newest, schema, domain.folds,
                                             domain.max_rows, domain.seed)
    record["estimated"] = {"period": as_of, **estimated_performance(
        predict_proba(champion.model, newest, schema), threshold)}
    return record


def roc_points(y_true: Any, proba: Any) -> pd.DataFrame:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y_true, proba)
    return pd.DataFrame({"fpr": fpr.round(6), "tpr": tpr.round(6)})


def compare(champion: Any, challenger: Any, holdout: pd.DataFrame, schema: Schema,
            threshold: float, policy: ComparePolicy) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both models on the same holdout: the promotion record and the ROC points of each."""
    y = holdout[schema.target].to_numpy()
    scores: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    for role, model in (("champion", champion), ("challenger", challenger)):
        if model is None:
            scores[role], curves[role] = None, None
            continue
        proba = predict_proba(model, holdout, schema)
        scores[role] = score(y, proba, threshold)
        curves[role] = roc_points(y, proba) if len(set(y.tolist())) == 2 else None
    record = verdict(scores["champion"], scores["challenger"], policy)
    record = {"promote": record["promote"], "reason": record["reason"],
              "champion": scores["champion"], "challenger": scores["challenger"],
              "primary": policy.primary, "improvement": record["improvement"],
              "checks": record["checks"],
              "holdout": {"period": str(holdout["_period"].iloc[0]), "rows": int(len(holdout)),
                          "from": str(holdout[schema.time].min()),
                          "until": str(holdout[schema.time].max())}}
    return record, curves
