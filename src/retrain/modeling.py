"""Fit, score and serialise a model; the one path every stage and command uses."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
import pandas as pd

from .schema import Schema

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


def features(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The feature columns, categorical ones as pandas categories: the encoders see the same
    values, and a million text rows reach them in a quarter of the time."""
    return frame[list(schema.features)].astype({name: "category" for name in schema.categorical})


def fit(train: pd.DataFrame, schema: Schema, estimator: str, hyperparameters: dict[str, Any],
        seed: int) -> Pipeline:
    from .features import make_model

    model = make_model(schema, estimator, hyperparameters, seed)
    model.fit(features(train, schema), train[schema.target].astype(int).to_numpy())
    return model


CHUNK_ROWS = 200_000


def predict_proba(model: Pipeline, frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    """Probability of the positive label for each row, scored in chunks so that the encoders'
    copies of a large batch never sit in memory all at once."""
    parts = [model.predict_proba(features(frame.iloc[start:start + CHUNK_ROWS], schema))[:, 1]
             for start in range(0, len(frame), CHUNK_ROWS)]
    return np.concatenate(parts) if parts else np.empty(0)


def predictions(model: Pipeline, frame: pd.DataFrame, schema: Schema,
                threshold: float) -> pd.DataFrame:
    """Per row: the id, the probability of the positive label and the label it implies."""
    proba = predict_proba(model, frame, schema)
    return pd.DataFrame({schema.id: frame[schema.id].to_numpy(), "probability": proba,
                         "label": labels(proba, schema, threshold)})


def stored_scores(ids: Any, proba: Any, schema: Schema) -> pd.DataFrame:
    """What evaluate and train keep of a model's scores for compare: row id and probability."""
    return pd.DataFrame({schema.id: ids, "probability": np.asarray(proba, dtype=float)})


def labels(proba: np.ndarray, schema: Schema, threshold: float) -> np.ndarray:
    """The label each probability implies at `threshold`."""
    return np.where(proba >= threshold, schema.positive, schema.negative)


def dump(model: Pipeline) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    return buffer.getvalue()


def load(data: bytes) -> Pipeline:
    """Unpickle model bytes; call only after their md5 was checked against the registry."""
    return joblib.load(io.BytesIO(data))
