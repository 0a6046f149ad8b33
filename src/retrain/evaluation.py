"""What evaluate records: the champion on the newest labelled rows it never trained on."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .metrics import ComparePolicy, score, verdict
from .modeling import predict_proba
from .schema import Schema


def periods_between(older: str, newer: str, freq: str) -> int:
    """Batches of data time from `older` to `newer` (0 when equal)."""
    return (pd.Period(newer, freq=freq) - pd.Period(older, freq=freq)).n


def unseen_rows(labelled: pd.DataFrame, schema: Schema, trained_until: str) -> pd.DataFrame:
    """Rows strictly newer than the last row the model trained on."""
    return labelled.loc[labelled[schema.time] > pd.Timestamp(trained_until)]


def evaluate(champion: Any, metadata: dict[str, Any] | None, pointer: dict[str, Any],
             labelled: pd.DataFrame, as_of: str, schema: Schema,
             threshold: float) -> dict[str, Any]:
    """The evaluation record; with no champion, a record that says so."""
    labelled_period = str(labelled["_period"].iloc[0]) if len(labelled) else None
    record: dict[str, Any] = {"as_of": as_of, "labelled_period": labelled_period,
                              "champion": None, "metrics": None, "champion_age": None}
    if champion is None or metadata is None:
        record["note"] = "no champion yet: cold start"
        return record
    rows = unseen_rows(labelled, schema, metadata["trained_until"])
    record["champion"] = {
        "version": pointer["version"], "tag": pointer["tag"], "commit": pointer["commit"],
        "trained_through_period": metadata["trained_through_period"],
        "trained_until": metadata["trained_until"],
    }
    record["champion_age"] = periods_between(metadata["trained_through_period"], as_of,
                                             schema.period)
    record["rows_seen_in_training"] = int(len(labelled) - len(rows))
    if len(rows):
        record["metrics"] = score(rows[schema.target].to_numpy(),
                                  predict_proba(champion, rows, schema), threshold)
    else:
        record["note"] = f"every labelled row of {labelled_period} was in the champion's training"
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
