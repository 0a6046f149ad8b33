"""Fit, score and serialise a model; the one path every stage and command uses."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retrain.data.schema import Schema
from retrain.errors import DataError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


def feature_frame(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The feature columns, categorical ones as pandas categories: the encoders see the same
    values, and a million text rows reach them in a quarter of the time."""
    return frame[list(schema.features)].astype({name: "category" for name in schema.categorical})


def fit(
    train: pd.DataFrame, schema: Schema, estimator: str, hyperparameters: dict[str, Any], seed: int
) -> Pipeline:
    from threadpoolctl import threadpool_limits

    from retrain.execution import fit_threads
    from retrain.model.preprocessing import make_model

    model = make_model(schema, estimator, hyperparameters, seed)
    with threadpool_limits(limits=fit_threads(len(train))):
        model.fit(feature_frame(train, schema), train[schema.target].astype(int).to_numpy())
    return model


CHUNK_ROWS = 200_000


def predict_proba(model: Pipeline, frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    """Probability of the positive label for each row, scored in chunks so that the encoders'
    copies of a large batch never sit in memory all at once."""
    parts = [
        model.predict_proba(feature_frame(frame.iloc[start : start + CHUNK_ROWS], schema))[:, 1]
        for start in range(0, len(frame), CHUNK_ROWS)
    ]
    return np.concatenate(parts) if parts else np.empty(0)


def predictions(model: Pipeline, frame: pd.DataFrame, schema: Schema, threshold: float) -> pd.DataFrame:
    """Per row: the id, the probability of the positive label and the label it implies."""
    proba = predict_proba(model, frame, schema)
    return pd.DataFrame(
        {
            schema.id: frame[schema.id].to_numpy(),
            "probability": proba,
            "label": labels(proba, schema, threshold),
        }
    )


def stored_scores(ids: Any, proba: Any, schema: Schema) -> pd.DataFrame:
    """What evaluate and train keep of a model's scores for compare: row id and probability."""
    return pd.DataFrame({schema.id: ids, "probability": np.asarray(proba, dtype=float)})


def labels(proba: np.ndarray, schema: Schema, threshold: float) -> np.ndarray:
    """The label each probability implies at `threshold`."""
    return np.where(proba >= threshold, schema.positive, schema.negative)


# The only types a model file may hold beyond the scikit-learn estimators make_model builds
# (sklearn_types) and what skops trusts by default (numpy arrays, scipy ufuncs, losses): loading
# anything else is refused, so a model file cannot run code.
TRUSTED_TYPES = [
    "functools.partial",
    "numpy.dtype",
    "retrain.features.TreeEncoder",  # models written before the package had folders (0.1)
    "retrain.model.preprocessing.TreeEncoder",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
    "sklearn.utils.validation.check_array",
]


def sklearn_types() -> list[str]:
    """The scikit-learn types of the models make_model builds, by the names skops records."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import (
        FunctionTransformer,
        LabelEncoder,
        OneHotEncoder,
        OrdinalEncoder,
        StandardScaler,
    )
    from sklearn.tree import DecisionTreeClassifier

    kinds = (
        ColumnTransformer,
        DecisionTreeClassifier,
        FunctionTransformer,
        HistGradientBoostingClassifier,
        LabelEncoder,
        LogisticRegression,
        OneHotEncoder,
        OrdinalEncoder,
        Pipeline,
        RandomForestClassifier,
        SimpleImputer,
        StandardScaler,
    )
    return [f"{kind.__module__}.{kind.__qualname__}" for kind in kinds]


def _skops_io() -> Any:
    """skops.io, imported without the two walks its import makes in every process that reads or
    writes a model: over every scikit-learn module, to trust all 200 estimators by default
    (0.6 s; the estimators our models hold are trusted by name instead: sklearn_types), and over
    every loaded module for each of scipy's 231 ufuncs, to name it (0.17 s; see _scipy_first)."""
    import sys

    if "skops.io" not in sys.modules:
        import sklearn.utils

        walk = sklearn.utils.all_estimators
        sklearn.utils.all_estimators = lambda *args, **kwargs: []
        try:
            with _scipy_first():
                import skops.io  # noqa: F401
        finally:
            sklearn.utils.all_estimators = walk
    return sys.modules["skops.io"]


@contextmanager
def _scipy_first() -> Iterator[None]:
    """sys.modules with scipy's modules first, then as it was. skops names each scipy ufunc by
    the first loaded module that holds it (skops.io._utils.whichmodule), and in a process with
    pandas and scikit-learn loaded that search passes 1,500 modules per ufunc; with scipy's
    first it finds the same module in a few steps. Only while no other thread runs, since
    moving a module takes it out of sys.modules for an instant."""
    import sys
    import threading

    import scipy.special  # noqa: F401

    def to_end(names: list[str]) -> None:
        for name in names:
            if name in sys.modules:
                sys.modules[name] = sys.modules.pop(name)

    if threading.active_count() > 1:
        yield
        return
    order = list(sys.modules)
    to_end([name for name in order if name != "scipy" and not name.startswith("scipy.")])
    try:
        yield
    finally:
        if threading.active_count() == 1:
            known = set(order)
            to_end(order + [name for name in sys.modules if name not in known])


def dump(model: Pipeline) -> bytes:
    """The model in skops' format (a zip of JSON and arrays, no pickle), deflated, and made
    byte-identical for the same model (see _canonical)."""
    return _canonical(_skops_io().dumps(model))


_OBJECT_ID = re.compile(r'"__id__": (\d+)|"(\d+)\.npy"')


def _canonical(data: bytes) -> bytes:
    """skops names arrays and shared objects by their address in memory and stamps the zip
    with the time: renumber them in order of appearance and fix the time, so that the same
    model gives the same bytes (and md5) in every run."""
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(data))
    schema = source.read("schema.json").decode()
    numbers: dict[str, str] = {}

    def renumbered(match: re.Match[str]) -> str:
        if match[1] is not None:
            return f'"__id__": {numbers.setdefault(match[1], str(len(numbers)))}'
        return f'"{numbers.setdefault(match[2], str(len(numbers)))}.npy"'

    schema = _OBJECT_ID.sub(renumbered, schema)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        members = [("schema.json", schema.encode())] + sorted(
            (numbers[name.removesuffix(".npy")] + ".npy", source.read(name))
            for name in source.namelist()
            if name != "schema.json"
        )
        for name, content in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, content, compresslevel=6)
    return out.getvalue()


def load(data: bytes) -> Pipeline:
    """A model from skops bytes, refusing any type outside TRUSTED_TYPES; loading runs no code
    from the file. Bytes of the former joblib format (a pickle) are refused, never unpickled."""
    skops_io = _skops_io()
    if not data.startswith(b"PK"):
        raise DataError(
            "the model file is not in skops format (an older joblib pickle?); "
            "retrain, or load it yourself if you trust it: pickles can run code"
        )
    trusted = TRUSTED_TYPES + sklearn_types()
    _legacy_module_names()
    try:
        return skops_io.loads(data, trusted=trusted)  # audits every type before it builds anything
    except skops_io.exceptions.UntrustedTypesFoundException:
        untrusted = [t for t in skops_io.get_untrusted_types(data=data) if t not in trusted]
        raise DataError(
            f"the model file holds types outside the trusted list: "
            f"{', '.join(untrusted)}; refusing to load it"
        ) from None


def _legacy_module_names() -> None:
    """Let skops find the encoder of a model saved when it lived in `retrain.features`."""
    import sys

    from retrain.model import preprocessing

    sys.modules.setdefault("retrain.features", preprocessing)
