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
from retrain.data.splits import sample_positions, sampled
from retrain.engine.rows import Rows, as_rows
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


def holdout_novelty(holdout: pd.DataFrame, trained: dict[str, list[str]]) -> dict[str, float]:
    """Per categorical column, the share of the holdout's rows in values the training rows never
    held (`trained`: the profile's categories per column; columns with none left out): the
    novelty the champion's holdout score already covers."""
    novelty = {}
    for col, categories in trained.items():
        new = int((~holdout[col].dropna().astype(str).isin(set(categories))).sum())
        if new:
            novelty[col] = round(new / len(holdout), 6)
    return novelty


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


def ks_step(present: int) -> int:
    """Every how many present values of a column the KS test reads: all of them up to
    KS_MAX_ROWS, else evenly spaced ones, at most KS_MAX_ROWS."""
    return max(1, -(-present // KS_MAX_ROWS))


def numeric_drift(
    ref: dict[str, Any], sample: pd.Series, current: list[int], ks: np.ndarray
) -> dict[str, Any]:
    """PSI and JS of the batch's counts per reference bin (`current`, from count_features:
    every row); KS against `ks`, the batch's values at every ks_step-th present position, as
    its power is set by the much smaller reference sample (n*m/(n+m) moves by < 2%)."""
    from scipy import stats

    reference = np.asarray(ref["counts"] + [ref["missing"]], dtype=float)
    now = np.asarray(current, dtype=float)
    a = present_values(sample)[0]
    test = stats.ks_2samp(a, ks, method="asymp") if len(a) and len(ks) else None
    return {
        "kind": "numeric",
        "psi": round(psi(reference, now), 6),
        "js": round(js_distance(reference, now), 6),
        "test": "ks",
        "statistic": None if test is None else round(float(test.statistic), 6),
        "p_value": None if test is None else float(test.pvalue),
        "distribution": {
            "edges": ref["edges"],
            "reference": [int(c) for c in reference],
            "current": [int(c) for c in now],
        },
    }


@dataclass
class FeatureCounts:
    """What the drift statistics and the schema check read of a batch: counts per partition
    that add up to the whole batch's, whatever the partitioning."""

    rows: int
    bins: dict[str, list[int]]  # per profiled numeric column: per reference bin, then missing
    present: dict[str, int]  # per numeric column: values not missing
    outside: dict[str, int]  # per numeric column with a trained range: values outside it
    categories: dict[str, dict[Any, int]]  # per categorical column: counts, missing under None
    present_by_partition: list[dict[str, int]]

    def __add__(self, other: FeatureCounts) -> FeatureCounts:
        def added(a: dict[Any, Any], b: dict[Any, Any], add: Any) -> dict[Any, Any]:
            return {k: add(a[k], b[k]) if k in a and k in b else a.get(k, b.get(k)) for k in {**a, **b}}

        def counts(a: dict[Any, int], b: dict[Any, int]) -> dict[Any, int]:
            return added(a, b, lambda x, y: x + y)

        return FeatureCounts(
            rows=self.rows + other.rows,
            bins=added(self.bins, other.bins, lambda x, y: [i + j for i, j in zip(x, y, strict=True)]),
            present=counts(self.present, other.present),
            outside=counts(self.outside, other.outside),
            categories=added(self.categories, other.categories, counts),
            present_by_partition=self.present_by_partition + other.present_by_partition,
        )


def _value_counts(values: pd.Series) -> dict[Any, int]:
    return {
        (None if pd.isna(key) else key): int(n)  # type: ignore[call-overload]  # pandas-stubs
        for key, n in values.value_counts(dropna=False).items()
    }


def count_features(
    frame: pd.DataFrame, _: Any = None, *, profile: dict[str, Any], schema: Schema
) -> FeatureCounts:
    """The counts of one partition (or of a whole batch): per numeric column its counts per
    reference bin and outside the trained range, per categorical column its value counts.
    Columns are counted side by side."""
    numeric = [col for col in schema.numeric if col in frame]
    categorical = [col for col in schema.categorical if col in frame]

    def one_numeric(col: str) -> tuple[int, list[int] | None, int | None]:
        present, missing = present_values(frame[col])
        ref = profile["numeric"].get(col)
        bins = _bin_counts(present, ref["edges"]) + [missing] if ref else None
        bounds = known_range(profile, col)
        outside = (
            None if bounds is None else int(np.count_nonzero((present < bounds[0]) | (present > bounds[1])))
        )
        return len(present), bins, outside

    with _pool(len(numeric) + len(categorical)) as pool:
        numbers = dict(zip(numeric, pool.map(one_numeric, numeric), strict=True))
        counted = pool.map(lambda col: _value_counts(frame[col]), categorical)  # type: ignore[arg-type]
        words = dict(zip(categorical, counted, strict=True))
    present = {col: n for col, (n, _, _) in numbers.items()}
    return FeatureCounts(
        rows=len(frame),
        bins={col: bins for col, (_, bins, _) in numbers.items() if bins is not None},
        present=present,
        outside={col: out for col, (_, _, out) in numbers.items() if out is not None},
        categories=words,
        present_by_partition=[present],
    )


def batch_counts(rows: Rows, profile: dict[str, Any], schema: Schema) -> FeatureCounts:
    """count_features over every partition of `rows`, added up in partition order."""
    parts = rows.map_partitions(
        count_features, read_columns=list(schema.features), profile=profile, schema=schema
    )
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def ks_values(
    frame: pd.DataFrame, offsets: dict[str, int], *, steps: dict[str, int]
) -> dict[str, np.ndarray]:
    """A partition's share of each column's KS values: its present values whose position among
    the batch's present values (from `offsets`, the present values before this partition) is a
    multiple of the column's step."""
    out = {}
    for col, step in steps.items():
        present = present_values(frame[col])[0]
        out[col] = present[(-offsets[col]) % step :: step].copy()  # a view would keep every value
    return out


def batch_ks_values(rows: Rows, counts: FeatureCounts, columns: list[str]) -> dict[str, np.ndarray]:
    """Each column's values for the KS test, gathered from the partitions in order."""
    steps = {col: ks_step(counts.present[col]) for col in columns}
    offsets, before = [], dict.fromkeys(columns, 0)
    for part in counts.present_by_partition:
        offsets.append(dict(before))
        before = {col: before[col] + part.get(col, 0) for col in columns}
    parts = rows.map_partitions(ks_values, offsets, read_columns=columns, steps=steps)
    return {col: np.concatenate([part[col] for part in parts]) for col in columns}


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


def categorical_drift(ref: dict[str, Any], counts: dict[Any, int]) -> dict[str, Any]:
    """PSI, JS and chi-square of a column's counts (from count_features) against the profile."""
    from scipy import stats

    ref_counts = dict(ref["counts"])
    if ref["missing"]:
        ref_counts[MISSING] = ref["missing"]
    cur: dict[str, int] = {}
    for key, count in counts.items():
        name = MISSING if key is None else str(key)
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
    batch: pd.DataFrame | Rows,
    schema: Schema,
    counts: FeatureCounts | None = None,
) -> dict[str, dict[str, Any]]:
    """PSI, Jensen-Shannon distance and a test (KS or chi-square) for every shared feature."""
    rows = as_rows(batch)
    counts = batch_counts(rows, profile, schema) if counts is None else counts
    numeric = [col for col in schema.numeric if col in profile["numeric"] and col in counts.bins]
    ks = batch_ks_values(rows, counts, numeric)
    out: dict[str, dict[str, Any]] = {}
    _import_for_threads()
    with _pool(len(numeric)) as pool:
        out.update(
            zip(
                numeric,
                pool.map(
                    lambda col: numeric_drift(
                        profile["numeric"][col],
                        sample[col],  # type: ignore[arg-type]  # pandas-stubs: a column is a Series
                        counts.bins[col],
                        ks[col],
                    ),
                    numeric,
                ),
                strict=True,
            )
        )
    for col in schema.categorical:
        if col in profile["categorical"] and col in counts.categories:
            out[col] = categorical_drift(profile["categorical"][col], counts.categories[col])
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
    batch: pd.DataFrame | Rows,
    schema: Schema,
    observed: dict[str, Any],
    folds: int,
    max_rows: int,
    seed: int,
) -> BatchDrift:
    """Schema changes, feature_drift and domain_auc of `batch` against a champion's profile and
    reference sample. The classifier starts first, on its own thread, and runs beside the
    counts and the per-feature statistics."""
    rows = as_rows(batch)
    _import_for_threads(classifier=True)
    with ThreadPoolExecutor(1) as background:
        domain = background.submit(domain_auc, reference, rows, schema, folds, max_rows, seed)
        counts = batch_counts(rows, profile, schema)
        changes = schema_changes(profile, rows, schema, observed, counts)
        if changes["missing_columns"]:
            domain.cancel()
            return BatchDrift(changes, None, None)
        features = feature_drift(profile, reference, rows, schema, counts)
        return BatchDrift(changes, features, domain.result())


# --- multivariate drift: a domain classifier --------------------------------------------------


def domain_auc(
    sample: pd.DataFrame, batch: pd.DataFrame | Rows, schema: Schema, folds: int, max_rows: int, seed: int
) -> dict[str, Any]:
    """Cross-validated ROC AUC of a classifier telling reference rows from batch rows."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    from retrain.model.preprocessing import TreeEncoder

    rows, features = as_rows(batch), list(schema.features)
    rng = np.random.default_rng(seed)
    ref = sampled(sample[features], max_rows, rng)
    cur = rows.take(sample_positions(rows.rows, max_rows, rng), features)
    if min(len(ref), len(cur)) < folds * 2:
        return {"roc_auc": None, "rows": int(len(cur)), "reference_rows": int(len(ref))}
    frame = pd.concat([ref, cur], ignore_index=True)
    y = np.r_[np.zeros(len(ref)), np.ones(len(cur))]
    mask = [False] * len(schema.numeric) + [True] * len(schema.categorical)
    model = HistGradientBoostingClassifier(
        max_iter=30,
        learning_rate=0.2,
        max_leaf_nodes=15,
        random_state=seed,
        categorical_features=mask if schema.categorical else None,
    )
    # Encoded once for all folds: the encoder learns only category lists and medians, never
    # which side a row comes from.
    encoder = TreeEncoder(schema.numeric, schema.categorical, max_categories=model.max_bins)
    encoded = encoder.fit(frame).transform(frame)
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


def _codes_for_words(known: set[str], now: dict[Any, int]) -> float | None:
    """The share of rows holding numbers in a categorical column whose trained categories were
    all words, when most of them do (integer codes in place of labels); else None."""
    words = [k for k in known if k != MISSING]
    if not words or any(_NUMBER.match(k) for k in words):
        return None
    present = {str(v): n for v, n in now.items() if v is not None and str(v) != MISSING}
    total = sum(present.values())
    coded = sum(n for v, n in present.items() if _NUMBER.match(v))
    return round(coded / total, 6) if total and coded / total >= 0.5 else None


def schema_changes(
    profile: dict[str, Any],
    batch: pd.DataFrame | Rows,
    schema: Schema,
    observed: dict[str, Any],
    counts: FeatureCounts | None = None,
) -> dict[str, Any]:
    """What differs from the schema, categories and ranges the champion was trained on."""
    counts = batch_counts(as_rows(batch), profile, schema) if counts is None else counts
    trained = profile["schema"]
    trained_features = set(trained["numeric"]) | set(trained["categorical"])
    now_features = set(schema.features)
    new_categories = {}
    rows = max(counts.rows, 1)
    for col in schema.categorical:
        if col in profile["categorical"] and col in counts.categories:
            known = known_categories(profile, col)
            seen = {
                str(v): n for v, n in counts.categories[col].items() if v is not None and str(v) not in known
            }
            if seen:
                new_categories[col] = _listed(seen, rows)
    usual = (profile.get("holdout") or {}).get("new_categories") or {}
    out_of_range = {
        col: round(outside / counts.present[col], 6) for col, outside in counts.outside.items() if outside
    }
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
        elif col in profile["categorical"] and col in counts.categories and col not in type_changes:
            coded = _codes_for_words(known_categories(profile, col), counts.categories[col])
            if coded is not None:
                type_changes[col] = coded
    return {
        "missing_columns": sorted(trained_features - now_features),
        "new_columns": sorted((now_features - trained_features) | set(observed.get("extra_columns") or [])),
        "type_changes": type_changes,
        "new_categories": new_categories,
        "usual_new_categories": {col: usual[col] for col in new_categories if col in usual},
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
