"""Reference profiles, per-feature and multivariate drift statistics, schema changes.

Statistics are computed here, thresholds are applied in `triggers`, so an experiment on a
threshold reruns only decide.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from retrain.data.schema import MISSING, Schema
from retrain.data.splits import sampled
from retrain.execution import threads
from retrain.model.metrics import roc_auc

EPS = 1e-4


# --- the reference profile, saved beside each model ----------------------------------------


def numeric_profile(values: pd.Series, bins: int) -> dict[str, Any]:
    present, missing = present_values(values)
    if len(present) == 0:
        return {"edges": [], "counts": [0], "missing": missing, "min": None, "max": None}
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])).tolist()
    return {
        "edges": [float(e) for e in edges],
        "counts": _bin_counts(present, edges),
        "missing": missing,
        "min": float(present.min()),
        "max": float(present.max()),
    }


def present_values(values: pd.Series) -> tuple[np.ndarray, int]:
    """The values that are not missing, as floats, and how many are missing."""
    x = values.to_numpy(dtype=float, na_value=np.nan)
    missing = np.isnan(x)
    n_missing = int(np.count_nonzero(missing))
    return (x[~missing] if n_missing else x), n_missing


def bin_counts(values: pd.Series, edges: list[float]) -> list[int]:
    """Counts per bin (-inf, e1], (e1, e2], ..., (ek, inf), then the missing count."""
    present, missing = present_values(values)
    return _bin_counts(present, edges) + [missing]


def _bin_counts(present: np.ndarray, edges: list[float]) -> list[int]:
    """Counts per bin from one comparison per edge (a few edges, many values: faster than a
    binary search per value)."""
    at_most = [int(np.count_nonzero(present <= edge)) for edge in edges]
    return [int(c) for c in np.diff([0, *at_most, len(present)])]


def categorical_profile(values: pd.Series) -> dict[str, Any]:
    counts = values.dropna().astype(str).value_counts().sort_index()
    return {"counts": {str(k): int(v) for k, v in counts.items()}, "missing": int(values.isna().sum())}


def build_profile(
    reference: pd.DataFrame,
    schema: Schema,
    bins: int,
    sample_rows: int,
    seed: int,
    *,
    holdout: dict[str, Any],
    window: pd.DataFrame | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The profile of the reference rows (whole periods), a seeded sample of their feature rows,
    and what the model saw over its whole training `window`: every category and the range of
    every number, against which a batch's schema changes are judged."""
    window = reference if window is None else window
    profile = {
        "rows": int(len(reference)),
        "label_positive": int(reference[schema.target].sum()),
        "label_rate": round(float(reference[schema.target].mean()), 6),
        "numeric": {c: numeric_profile(reference[c], bins) for c in schema.numeric},
        "categorical": {c: categorical_profile(reference[c]) for c in schema.categorical},
        "trained": {
            "categories": {
                c: sorted(window[c].dropna().astype(str).unique().tolist()) for c in schema.categorical
            },
            "ranges": {c: _range(window[c]) for c in schema.numeric},
        },
        "holdout": holdout,
        "schema": schema.as_dict(),
    }
    n = min(sample_rows, len(reference))
    sample = reference.sample(n=n, random_state=seed) if n < len(reference) else reference
    return profile, sample[list(schema.features)].reset_index(drop=True)


def _range(values: pd.Series) -> list[float] | None:
    present = present_values(values)[0]
    return [float(present.min()), float(present.max())] if len(present) else None


def known_categories(profile: dict[str, Any], column: str) -> set[str]:
    """Every category the champion trained on or was compared with, for `column`."""
    known = set(profile["categorical"].get(column, {}).get("counts", {}))
    return known | set((profile.get("trained") or {}).get("categories", {}).get(column) or [])


def known_range(profile: dict[str, Any], column: str) -> tuple[float, float] | None:
    """The range of `column` over the champion's training window and its reference."""
    ref = profile["numeric"].get(column)
    bounds = [] if not ref or ref["min"] is None else [(ref["min"], ref["max"])]
    trained = (profile.get("trained") or {}).get("ranges", {}).get(column)
    bounds += [tuple(trained)] if trained else []
    if not bounds:
        return None
    return min(b[0] for b in bounds), max(b[1] for b in bounds)


# --- per-feature drift ------------------------------------------------------------------------


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins."""
    r = np.clip(reference / max(reference.sum(), 1), EPS, None)
    c = np.clip(current / max(current.sum(), 1), EPS, None)
    return float(np.sum((c - r) * np.log(c / r)))


def js_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two count vectors."""
    from scipy.spatial.distance import jensenshannon

    if reference.sum() == 0 or current.sum() == 0:
        return 0.0
    return float(jensenshannon(reference, current, base=2))


KS_MAX_ROWS = 100_000


def numeric_drift(ref: dict[str, Any], sample: pd.Series, batch: pd.Series) -> dict[str, Any]:
    """PSI and JS over every row; KS against at most KS_MAX_ROWS evenly spaced batch values,
    as its power is set by the much smaller reference sample (n*m/(n+m) moves by < 2%)."""
    from scipy import stats

    b, missing = present_values(batch)
    reference = np.asarray(ref["counts"] + [ref["missing"]], dtype=float)
    current = np.asarray(_bin_counts(b, ref["edges"]) + [missing], dtype=float)
    a = present_values(sample)[0]
    b = b[:: -(-len(b) // KS_MAX_ROWS)] if len(b) > KS_MAX_ROWS else b
    test = stats.ks_2samp(a, b, method="asymp") if len(a) and len(b) else None
    return {
        "kind": "numeric",
        "psi": round(psi(reference, current), 6),
        "js": round(js_distance(reference, current), 6),
        "test": "ks",
        "statistic": None if test is None else round(float(test.statistic), 6),
        "p_value": None if test is None else float(test.pvalue),
        "distribution": {
            "edges": ref["edges"],
            "reference": [int(c) for c in reference],
            "current": [int(c) for c in current],
        },
    }


def category_counts(batch: pd.DataFrame, schema: Schema) -> dict[str, pd.Series]:
    """Each categorical column's value counts, missing included: what the drift statistics and
    the schema check both read, counted once."""
    columns = [col for col in schema.categorical if col in batch]
    with _pool(len(columns)) as pool:
        return dict(
            zip(columns, pool.map(lambda col: batch[col].value_counts(dropna=False), columns), strict=True)
        )


def _pool(tasks: int) -> ThreadPoolExecutor:
    """Threads for per-column work: NumPy and Arrow release the interpreter lock while they
    count, compare and sort, so columns proceed side by side on every core."""
    return ThreadPoolExecutor(max(1, min(tasks, threads())))


def _import_for_threads(classifier: bool = False) -> None:
    """Import what worker threads use (the statistics, and the domain classifier when asked)
    before they start: two threads importing the same modules for the first time can deadlock
    on Python's import locks."""
    import scipy.spatial.distance  # noqa: F401
    import scipy.stats  # noqa: F401

    if classifier:
        import sklearn.ensemble  # noqa: F401
        import sklearn.model_selection  # noqa: F401


def categorical_drift(ref: dict[str, Any], counts: pd.Series) -> dict[str, Any]:
    """PSI, JS and chi-square of a column's counts (from category_counts) against the profile."""
    from scipy import stats

    ref_counts = dict(ref["counts"])
    if ref["missing"]:
        ref_counts[MISSING] = ref["missing"]
    cur: dict[str, int] = {}
    for key, count in counts.items():
        name = MISSING if pd.isna(key) else str(key)  # type: ignore[call-overload]  # pandas-stubs
        cur[name] = cur.get(name, 0) + int(count)
    categories = sorted(set(ref_counts) | set(cur))
    reference = np.asarray([ref_counts.get(k, 0) for k in categories], dtype=float)
    current = np.asarray([cur.get(k, 0) for k in categories], dtype=float)
    if len(categories) > 1 and reference.sum() and current.sum():
        test = stats.chi2_contingency(np.vstack([reference, current]))
        statistic, p_value = round(float(test.statistic), 6), float(test.pvalue)
    else:
        statistic, p_value = None, None
    return {
        "kind": "categorical",
        "psi": round(psi(reference, current), 6),
        "js": round(js_distance(reference, current), 6),
        "test": "chi2",
        "statistic": statistic,
        "p_value": p_value,
        "distribution": shown_categories(categories, reference, current),
    }


SHOWN_CATEGORIES = 20


def shown_categories(categories: list[str], reference: np.ndarray, current: np.ndarray) -> dict[str, Any]:
    """Counts per category in the reference and the batch, the SHOWN_CATEGORIES largest (by
    their larger share in either) kept in order and the rest summed as "other (N)"."""
    share = np.maximum(reference / max(reference.sum(), 1), current / max(current.sum(), 1))
    order = sorted(range(len(categories)), key=lambda i: (-share[i], categories[i]))
    kept = sorted(order[:SHOWN_CATEGORIES], key=lambda i: categories[i])
    rest = order[SHOWN_CATEGORIES:]
    names = [categories[i] for i in kept]
    ref, cur = [int(reference[i]) for i in kept], [int(current[i]) for i in kept]
    if rest:
        names.append(f"other ({len(rest)})")
        ref.append(int(reference[rest].sum()))
        cur.append(int(current[rest].sum()))
    return {"categories": names, "reference": ref, "current": cur}


def feature_drift(
    profile: dict[str, Any],
    sample: pd.DataFrame,
    batch: pd.DataFrame,
    schema: Schema,
    counts: dict[str, pd.Series] | None = None,
) -> dict[str, dict[str, Any]]:
    """PSI, Jensen-Shannon distance and a test (KS or chi-square) for every shared feature."""
    counts = category_counts(batch, schema) if counts is None else counts
    out: dict[str, dict[str, Any]] = {}
    numeric = [col for col in schema.numeric if col in profile["numeric"] and col in batch]
    _import_for_threads()
    with _pool(len(numeric)) as pool:
        out.update(
            zip(
                numeric,
                pool.map(
                    lambda col: numeric_drift(
                        profile["numeric"][col],
                        sample[col],  # type: ignore[arg-type]  # pandas-stubs: a column is a Series
                        batch[col],  # type: ignore[arg-type]
                    ),
                    numeric,
                ),
                strict=True,
            )
        )
    for col in schema.categorical:
        if col in profile["categorical"] and col in counts:
            out[col] = categorical_drift(profile["categorical"][col], counts[col])
    return out


@dataclass
class BatchDrift:
    """What evaluate records of a batch against a champion: schema changes, per-feature drift
    and the domain classifier's AUC (both None when a column the champion needs is missing)."""

    schema_changes: dict[str, Any]
    features: dict[str, dict[str, Any]] | None
    domain: dict[str, Any] | None


def batch_drift(
    profile: dict[str, Any],
    reference: pd.DataFrame,
    batch: pd.DataFrame,
    schema: Schema,
    observed: dict[str, Any],
    folds: int,
    max_rows: int,
    seed: int,
) -> BatchDrift:
    """Schema changes, feature_drift and domain_auc of `batch` against a champion's profile and
    reference sample. The classifier starts first, on its own thread, and runs beside the
    category counts and the per-feature statistics."""
    _import_for_threads(classifier=True)
    with ThreadPoolExecutor(1) as background:
        domain = background.submit(domain_auc, reference, batch, schema, folds, max_rows, seed)
        counts = category_counts(batch, schema)
        changes = schema_changes(profile, batch, schema, observed, counts)
        if changes["missing_columns"]:
            domain.cancel()
            return BatchDrift(changes, None, None)
        features = feature_drift(profile, reference, batch, schema, counts)
        return BatchDrift(changes, features, domain.result())


# --- multivariate drift: a domain classifier --------------------------------------------------


def domain_auc(
    sample: pd.DataFrame, batch: pd.DataFrame, schema: Schema, folds: int, max_rows: int, seed: int
) -> dict[str, Any]:
    """Cross-validated ROC AUC of a classifier telling reference rows from batch rows."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    from retrain.model.preprocessing import TreeEncoder

    rng = np.random.default_rng(seed)
    ref, cur = (sampled(frame[list(schema.features)], max_rows, rng) for frame in (sample, batch))
    if min(len(ref), len(cur)) < folds * 2:
        return {"roc_auc": None, "rows": int(len(cur)), "reference_rows": int(len(ref))}
    frame = pd.concat([ref, cur], ignore_index=True)
    y = np.r_[np.zeros(len(ref)), np.ones(len(cur))]
    # Encoded once for all folds: the encoder learns only category lists and medians, never
    # which side a row comes from.
    encoded = TreeEncoder(schema.numeric, schema.categorical).fit(frame).transform(frame)
    mask = [False] * len(schema.numeric) + [True] * len(schema.categorical)
    model = HistGradientBoostingClassifier(
        max_iter=30,
        learning_rate=0.2,
        max_leaf_nodes=15,
        random_state=seed,
        categorical_features=mask if schema.categorical else None,
    )
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with threadpool_limits(1):  # a few thousand rows: one thread is faster, the result the same
        proba = cross_val_predict(model, encoded, y, cv=cv, method="predict_proba")[:, 1]
    return {"roc_auc": round(roc_auc(y, proba), 6), "rows": int(len(cur)), "reference_rows": int(len(ref))}


# --- schema changes against the champion ------------------------------------------------------

LISTED_CATEGORIES, LONGEST_LABEL = 20, 80


def _listed(seen: dict[str, int], rows: int) -> dict[str, float]:
    """New categories with their share of rows for the record: the most frequent
    LISTED_CATEGORIES, each label cut to LONGEST_LABEL characters, the rest summed under one
    key, so a runaway column cannot fill evaluation.json."""
    ranked = sorted(seen.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = {
        (v if len(v) <= LONGEST_LABEL else f"{v[: LONGEST_LABEL - 1]}… ({len(v)} chars)"): round(n / rows, 6)
        for v, n in ranked[:LISTED_CATEGORIES]
    }
    rest = ranked[LISTED_CATEGORIES:]
    if rest:
        shown[f"… {len(rest)} more"] = round(sum(n for _, n in rest) / rows, 6)
    return dict(sorted(shown.items()))


_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


def _codes_for_words(known: set[str], now: pd.Series) -> float | None:
    """The share of rows holding numbers in a categorical column whose trained categories were
    all words, when most of them do (integer codes in place of labels); else None."""
    words = [k for k in known if k != MISSING]
    if not words or any(_NUMBER.match(k) for k in words):
        return None
    present = now[[not pd.isna(v) and str(v) != MISSING for v in now.index]]
    total = int(present.sum())
    coded = int(sum(n for v, n in present.items() if _NUMBER.match(str(v))))
    return round(coded / total, 6) if total and coded / total >= 0.5 else None


def schema_changes(
    profile: dict[str, Any],
    batch: pd.DataFrame,
    schema: Schema,
    observed: dict[str, Any],
    counts: dict[str, pd.Series] | None = None,
) -> dict[str, Any]:
    """What differs from the schema, categories and ranges the champion was trained on."""
    counts = category_counts(batch, schema) if counts is None else counts
    trained = profile["schema"]
    trained_features = set(trained["numeric"]) | set(trained["categorical"])
    now_features = set(schema.features)
    new_categories = {}
    rows = max(len(batch), 1)
    for col in schema.categorical:
        if col in profile["categorical"] and col in counts:
            known = known_categories(profile, col)
            seen = {str(v): int(n) for v, n in counts[col].items() if not pd.isna(v) and str(v) not in known}  # type: ignore[call-overload]  # pandas-stubs
            if seen:
                new_categories[col] = _listed(seen, rows)
    out_of_range = {}
    for col in schema.numeric:
        bounds = known_range(profile, col)
        if bounds is not None and col in batch:
            values = present_values(batch[col])[0]
            outside = np.count_nonzero((values < bounds[0]) | (values > bounds[1]))
            share = outside / len(values) if len(values) else 0.0
            if share > 0:
                out_of_range[col] = round(share, 6)
    type_changes = {
        col: round(n / max(observed.get("rows", 1), 1), 6)
        for col, n in (observed.get("unparseable") or {}).items()
        if n
    }
    for col in schema.numeric:
        if col in trained["categorical"]:
            type_changes[col] = 1.0
    for col in schema.categorical:
        if col in trained["numeric"]:
            type_changes[col] = 1.0
        elif col in profile["categorical"] and col in counts and col not in type_changes:
            coded = _codes_for_words(known_categories(profile, col), counts[col])
            if coded is not None:
                type_changes[col] = coded
    return {
        "missing_columns": sorted(trained_features - now_features),
        "new_columns": sorted((now_features - trained_features) | set(observed.get("extra_columns") or [])),
        "type_changes": type_changes,
        "new_categories": new_categories,
        "out_of_range": out_of_range,
    }


# --- label and concept ------------------------------------------------------------------------


def estimated_performance(proba: np.ndarray, threshold: float) -> dict[str, Any]:
    """Confidence-based performance estimation: metrics expected if the probabilities are calibrated."""
    p = np.asarray(proba, dtype=float)
    if len(p) == 0:
        return {"rows": 0, "accuracy": None, "roc_auc": None, "positive_rate": None}
    pred = p >= threshold
    accuracy = float(np.mean(np.where(pred, p, 1 - p)))
    auc = expected_auc(p)
    return {
        "rows": int(len(p)),
        "accuracy": round(accuracy, 6),
        "roc_auc": None if auc is None else round(auc, 6),
        "positive_rate": round(float(p.mean()), 6),
    }


def expected_auc(p: np.ndarray) -> float | None:
    """ROC AUC if each row were positive with probability p: every row a positive of weight p and
    a negative of weight 1 - p, both scored p (a weighted Mann-Whitney count, ties counted half;
    the weighted ROC AUC scikit-learn gives, from one sort)."""
    values, inverse = np.unique(p, return_inverse=True)
    positive = np.bincount(inverse, weights=p, minlength=len(values))
    negative = np.bincount(inverse, weights=1 - p, minlength=len(values))
    total = positive.sum() * negative.sum()
    if total <= 0:
        return None
    below = np.cumsum(negative) - negative
    return float(np.sum(positive * (below + 0.5 * negative)) / total)
