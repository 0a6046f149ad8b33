"""The model: preprocessing and estimator in one scikit-learn Pipeline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from retrain.data.schema import MISSING, Schema
from retrain.errors import DataError
from retrain.params import ESTIMATORS

OTHER = "__other__"  # the category of values outside a column's max_categories most frequent


class TreeEncoder(TransformerMixin, BaseEstimator):
    """Numeric columns with missing values set to the training median, then each categorical
    column as the index of its value among the sorted training values (missing counts as the
    value MISSING, an unseen value as -1): the matrix that SimpleImputer and OrdinalEncoder give,
    computed through pandas categories rather than arrays of Python strings.

    With `max_categories`, a column keeps its most frequent training values (ties by value) and
    counts every other value, unseen ones too, as the one value OTHER, as OrdinalEncoder's
    max_categories does: at most that many codes, as gradient boosting's bins require."""

    max_categories: int | None = None  # models saved before the setting existed kept every value

    def __init__(
        self,
        numeric: tuple[str, ...] = (),
        categorical: tuple[str, ...] = (),
        max_categories: int | None = None,
    ):
        self.numeric = numeric
        self.categorical = categorical
        self.max_categories = max_categories

    def fit(self, X: pd.DataFrame, y: Any = None) -> TreeEncoder:
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.medians_ = [_median(_floats(X[name])) for name in self.numeric]
        self.categories_ = []
        for name in self.categorical:
            values = _categories(X[name])
            seen = {str(v) for v in values.cat.categories}
            missing = int(values.isna().sum())
            if missing:
                seen.add(MISSING)
            if self.max_categories is not None and len(seen) > self.max_categories:
                rows = {**values.value_counts().to_dict(), MISSING: missing}
                frequent = sorted(seen, key=lambda value: (-rows[value], value))
                seen = {*frequent[: self.max_categories - 1], OTHER}
            self.categories_.append(sorted(seen))
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(X), len(self.numeric) + len(self.categorical)))
        for i, (name, median) in enumerate(zip(self.numeric, self.medians_, strict=True)):
            values = _floats(X[name])
            out[:, i] = np.where(np.isnan(values), median, values)
        start = len(self.numeric)
        for j, (name, known) in enumerate(zip(self.categorical, self.categories_, strict=True)):
            column = _categories(X[name])
            codes = column.cat.set_categories(known).cat.codes.to_numpy().astype(float)
            if MISSING in known:
                codes[column.isna().to_numpy()] = known.index(MISSING)
            if OTHER in known:
                codes[codes < 0] = known.index(OTHER)
            out[:, start + j] = codes
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray([*self.numeric, *self.categorical], dtype=object)


def _median(values: np.ndarray) -> float:
    return float(np.nanmedian(values)) if (~np.isnan(values)).any() else np.nan


def _floats(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _categories(values: pd.Series) -> pd.Series:
    """`values` as a categorical Series whose categories are strings."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype("category")
    if len(values.cat.categories) and not all(isinstance(c, str) for c in values.cat.categories):
        values = values.cat.rename_categories([str(c) for c in values.cat.categories])
    return values


def preprocessor(
    schema: Schema, estimator: str, max_categories: int | None = None
) -> ColumnTransformer | TreeEncoder:
    """Impute, encode and (for linear models) scale; unknown categories never fail at serving.
    A tree model's columns keep at most `max_categories` values each."""
    if estimator != "logistic_regression":
        return TreeEncoder(tuple(schema.numeric), tuple(schema.categorical), max_categories=max_categories)
    return ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                list(schema.numeric),
            ),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value=MISSING),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                list(schema.categorical),
            ),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )


def make_model(schema: Schema, estimator: str, hyperparameters: dict[str, Any], seed: int) -> Pipeline:
    """An unfitted Pipeline for `estimator` with its params.yaml hyperparameters."""
    hyper = dict(hyperparameters or {})
    try:
        if estimator == "logistic_regression":
            model = LogisticRegression(random_state=seed, **hyper)
        elif estimator == "random_forest":
            model = RandomForestClassifier(random_state=seed, **hyper)
        elif estimator == "hist_gradient_boosting":
            n_cat = len(schema.categorical)
            mask = [False] * len(schema.numeric) + [True] * n_cat
            hyper.setdefault("categorical_features", mask if n_cat else None)
            model = HistGradientBoostingClassifier(random_state=seed, **hyper)
        else:
            raise DataError(
                f"params.yaml: train.estimator is {estimator!r}, expected one of {', '.join(ESTIMATORS)}"
            )
    except TypeError as err:
        raise DataError(f"params.yaml: train.{estimator}: {err}") from None
    max_categories = model.max_bins if isinstance(model, HistGradientBoostingClassifier) else None
    return Pipeline([("features", preprocessor(schema, estimator, max_categories)), ("model", model)])


def check_hyperparameters(schema: Schema, blocks: dict[str, Any], seed: int) -> None:
    """Build every estimator of params, and with every hyperparameter train.tune.space searches,
    so a typo fails now, not when an experiment switches or a search starts."""
    space = (blocks.get("tune") or {}).get("space") or {}
    for estimator in ESTIMATORS:
        make_model(schema, estimator, blocks.get(estimator) or {}, seed)
        known = make_model(schema, estimator, {}, seed)["model"].get_params()
        unknown = set(space.get(estimator) or {}) - set(known)
        if unknown:
            raise DataError(
                f"params.yaml: train.tune.space.{estimator}: {', '.join(sorted(unknown))} "
                f"is not a hyperparameter of {estimator}"
            )
