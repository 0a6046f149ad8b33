"""The model: preprocessing and estimator in one scikit-learn Pipeline."""

from __future__ import annotations

from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from .errors import DataError
from .schema import Schema

ESTIMATORS = ("logistic_regression", "random_forest", "hist_gradient_boosting")


def preprocessor(schema: Schema, estimator: str) -> ColumnTransformer:
    """Impute, encode and (for linear models) scale; unknown categories never fail at serving."""
    if estimator == "logistic_regression":
        numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
        categorical = make_pipeline(
            SimpleImputer(strategy="constant", fill_value="__missing__"),
            OneHotEncoder(handle_unknown="ignore"),
        )
    else:
        numeric = SimpleImputer(strategy="median")
        categorical = make_pipeline(
            SimpleImputer(strategy="constant", fill_value="__missing__"),
            OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                           encoded_missing_value=-1),
        )
    return ColumnTransformer(
        [("numeric", numeric, list(schema.numeric)),
         ("categorical", categorical, list(schema.categorical))],
        remainder="drop",
        verbose_feature_names_out=False,
    )


def make_model(schema: Schema, estimator: str, hyperparameters: dict[str, Any],
               seed: int) -> Pipeline:
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
            raise DataError(f"params.yaml: train.estimator is {estimator!r}, "
                            f"expected one of {', '.join(ESTIMATORS)}")
    except TypeError as err:
        raise DataError(f"params.yaml: train.{estimator}: {err}") from None
    return Pipeline([("features", preprocessor(schema, estimator)), ("model", model)])


def check_hyperparameters(schema: Schema, blocks: dict[str, Any], seed: int) -> None:
    """Build every estimator of params so a typo fails now, not when an experiment switches."""
    for estimator in ESTIMATORS:
        make_model(schema, estimator, blocks.get(estimator) or {}, seed)
