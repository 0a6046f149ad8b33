"""Drift statistics agree with independent scipy computations on the raw samples."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from retrain.data.schema import Schema
from retrain.monitor.drift import (
    bin_counts,
    build_profile,
    domain_auc,
    estimated_performance,
    feature_drift,
    holdout_novelty,
    numeric_profile,
    schema_changes,
)
from retrain.monitor.triggers import decide
from tests.helpers import ROOT, TOY


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {
            "x1": rng.normal(0, 1, 3000),
            "x2": rng.gamma(2, 10, 3000),
            "colour": rng.choice(["red", "green", "blue"], 3000, p=[0.5, 0.3, 0.2]),
        }
    )
    current = pd.DataFrame(
        {
            "x1": rng.normal(0.3, 1.2, 800),
            "x2": rng.gamma(2, 11, 800),
            "colour": rng.choice(["red", "green", "blue", "pink"], 800, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )
    reference.loc[:40, "x2"] = np.nan
    current.loc[:5, "x2"] = np.nan
    return reference, current


@pytest.fixture(scope="module")
def toy():
    return Schema.from_params(TOY)


def profile_of(reference, schema, bins=10):
    frame = reference.assign(label=0, ts=pd.Timestamp("2025-01-01"))
    return build_profile(frame, schema, bins, len(frame), 0, holdout={})


def test_ks_matches_scipy_on_the_raw_samples(samples, toy):
    reference, current = samples
    profile, sample = profile_of(reference, toy)
    got = feature_drift(profile, sample, current, toy)
    for col in ["x1", "x2"]:
        expected = stats.ks_2samp(reference[col].dropna(), current[col].dropna(), method="asymp")
        assert got[col]["statistic"] == pytest.approx(expected.statistic, abs=1e-6)
        assert got[col]["p_value"] == pytest.approx(expected.pvalue, abs=1e-6)


def test_psi_and_js_match_an_independent_binning(samples, toy):
    reference, current = samples
    profile, sample = profile_of(reference, toy)
    got = feature_drift(profile, sample, current, toy)
    for col in ["x1", "x2"]:
        edges = [-np.inf, *profile["numeric"][col]["edges"], np.inf]
        ref = pd.cut(reference[col], edges, right=True).value_counts(sort=False).to_numpy()
        cur = pd.cut(current[col], edges, right=True).value_counts(sort=False).to_numpy()
        ref = np.append(ref, reference[col].isna().sum()).astype(float)
        cur = np.append(cur, current[col].isna().sum()).astype(float)
        r, c = np.clip(ref / ref.sum(), 1e-4, None), np.clip(cur / cur.sum(), 1e-4, None)
        assert got[col]["psi"] == pytest.approx(np.sum((c - r) * np.log(c / r)), abs=1e-6)
        assert got[col]["js"] == pytest.approx(
            jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2), abs=1e-6
        )


def test_chi_square_matches_scipy_on_a_crosstab_of_the_raw_values(samples, toy):
    reference, current = samples
    profile, sample = profile_of(reference, toy)
    got = feature_drift(profile, sample, current, toy)["colour"]
    both = pd.concat([reference.assign(side="ref"), current.assign(side="cur")])
    table = pd.crosstab(both["side"], both["colour"])
    expected = stats.chi2_contingency(table.to_numpy())
    assert got["statistic"] == pytest.approx(expected.statistic, abs=1e-6)
    assert got["p_value"] == pytest.approx(expected.pvalue, abs=1e-6)


def test_numeric_profile_counts_every_row_once():
    values = pd.Series([1.0, 2.0, 2.0, 3.0, np.nan, 10.0])
    prof = numeric_profile(values, 4)
    assert sum(prof["counts"]) + prof["missing"] == len(values)
    assert prof["min"] == 1.0 and prof["max"] == 10.0
    assert bin_counts(values, prof["edges"])[:-1] == prof["counts"]


def test_estimated_performance_tracks_realised_performance_when_calibrated():
    rng = np.random.default_rng(1)
    p = rng.beta(2, 5, 20000)
    y = (rng.random(20000) < p).astype(int)
    est = estimated_performance(p, 0.5)
    from sklearn.metrics import accuracy_score, roc_auc_score

    assert est["accuracy"] == pytest.approx(accuracy_score(y, p >= 0.5), abs=0.01)
    assert est["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=0.01)


def test_domain_classifier_catches_a_shift_no_single_feature_shows(toy):
    rng = np.random.default_rng(2)
    a = rng.normal(0, 1, 1500)
    b = rng.normal(0, 1, 1500)
    reference = pd.DataFrame(
        {"x1": a, "x2": a + rng.normal(0, 0.1, 1500), "colour": rng.choice(["red", "blue"], 1500)}
    )
    current = pd.DataFrame(
        {"x1": b, "x2": -b + rng.normal(0, 0.1, 1500), "colour": rng.choice(["red", "blue"], 1500)}
    )
    profile, sample = profile_of(reference, toy)
    single = feature_drift(profile, sample, current, toy)
    assert max(s["psi"] for s in single.values()) < 0.1
    assert domain_auc(sample, current, toy, 5, 1000, 0)["roc_auc"] > 0.9
    same = domain_auc(sample, reference.sample(800, random_state=3), toy, 5, 1000, 0)
    assert same["roc_auc"] < 0.6


def test_the_domain_check_takes_a_column_of_more_values_than_its_bins(toy):
    rng = np.random.default_rng(4)
    names = [f"name{i}" for i in range(2000)]

    def frame(n):
        return pd.DataFrame(
            {"x1": rng.normal(0, 1, n), "x2": rng.normal(0, 1, n), "colour": rng.choice(names, n)}
        )

    profile, sample = profile_of(frame(1500), toy)
    assert domain_auc(sample, frame(800), toy, 5, 1000, 0)["roc_auc"] < 0.6


def test_the_holdout_novelty_is_the_share_of_its_rows_in_values_training_never_held(toy):
    train = pd.DataFrame({"x1": 0.0, "x2": 0.0, "colour": ["red", "blue", None, "red"]})
    holdout = pd.DataFrame({"x1": 0.0, "x2": 0.0, "colour": ["red", "pink", None, "teal", "teal"]})
    trained = profile_of(train, toy)[0]["trained"]["categories"]
    assert holdout_novelty(holdout, trained) == {"colour": 0.6}
    assert holdout_novelty(holdout.head(1), trained) == {}


def test_schema_changes_are_classified(samples, toy):
    reference, current = samples
    profile, _ = profile_of(reference, toy)
    batch = current.assign(x1=current["x1"] * 100)
    observed = {"rows": 800, "extra_columns": ["surprise"], "unparseable": {"x2": 400}}
    changes = schema_changes(profile, batch, toy, observed)
    assert changes["new_columns"] == ["surprise"] and changes["missing_columns"] == []
    assert changes["new_categories"] == {"colour": {"pink": 0.0925}}  # the share of rows
    assert changes["usual_new_categories"] == {}
    profile["holdout"] = {"new_categories": {"colour": 0.08, "x9": 0.5}}
    assert schema_changes(profile, batch, toy, observed)["usual_new_categories"] == {"colour": 0.08}
    assert changes["type_changes"] == {"x2": 0.5}
    assert changes["out_of_range"]["x1"] > 0.5 and changes["out_of_range"].get("x2", 0) < 0.05


@pytest.fixture(scope="module")
def telco():
    from retrain.params import load

    params = load(ROOT / "params.yaml")
    schema = Schema.from_params(params["schema"])
    source = pd.read_parquet(ROOT / "data/source/wa_churn.parquet")
    for col in schema.numeric:
        source[col] = source[col].astype(float)
    source[schema.target] = (source[schema.target] == schema.positive).astype(int)
    return params, schema, source


@pytest.mark.parametrize("size", [30, 100, 200, 500, 1000, 2000])
def test_batches_from_the_reference_distribution_are_not_flagged(telco, size):
    params, schema, source = telco
    reference = source.sample(2000, random_state=0).assign(**{schema.time: pd.Timestamp(0)})
    profile, sample = build_profile(reference, schema, 10, 2000, 0, holdout={})
    for seed in range(3):
        batch = source.sample(size, random_state=100 + seed)
        record = {
            "as_of": "2025-01",
            "champion_age": 0,
            "champion": {"version": "v1", "trained_through_period": "2025-01"},
            "drift": {"rows": size, "features": feature_drift(profile, sample, batch, schema)},
            "domain_classifier": domain_auc(sample, batch, schema, 5, 1000, seed),
        }
        decision = decide(
            record, {**params["decide"], "performance": {**params["decide"]["performance"], "enabled": False}}
        )
        fired = {t["name"] for t in decision["triggers"] if t["fired"]}
        assert not fired & {"data_drift", "multivariate_drift"}, (size, seed, decision["drift"])
        if size < params["decide"]["min_rows"]:
            t = {t["name"]: t for t in decision["triggers"]}["data_drift"]
            assert "not enough data" in t["detail"]


def test_ks_on_a_large_batch_uses_a_spaced_subsample_that_keeps_the_answer():
    import numpy as np
    import pandas as pd
    from scipy import stats

    from retrain.monitor.drift import KS_MAX_ROWS, bin_counts, ks_step, numeric_drift

    rng = np.random.default_rng(0)
    reference = pd.Series(rng.normal(0, 1, 2000))
    batch = pd.Series(rng.normal(0.1, 1, 3 * KS_MAX_ROWS + 7))
    ref = {"counts": [1] * 10, "missing": 0, "edges": list(np.linspace(-3, 3, 9))}
    step = ks_step(len(batch))
    assert step == 4 and len(batch[::step]) <= KS_MAX_ROWS
    got = numeric_drift(ref, reference, bin_counts(batch, ref["edges"]), batch.to_numpy()[::step])
    full = stats.ks_2samp(reference, batch, method="asymp")
    assert abs(got["statistic"] - full.statistic) < 0.01
    assert (got["p_value"] < 0.05) == (full.pvalue < 0.05)


@pytest.mark.parametrize("kind", ["spread", "ties", "certain"])
def test_expected_auc_equals_scikit_learns_weighted_roc_auc(kind):
    from sklearn.metrics import roc_auc_score

    from retrain.monitor.drift import expected_auc

    rng = np.random.default_rng(3)
    p = {
        "spread": rng.beta(2, 5, 5000),
        "ties": rng.integers(0, 11, 5000) / 10,
        "certain": np.r_[np.zeros(50), np.ones(3), rng.random(10)],
    }[kind]
    y = np.r_[np.ones(len(p)), np.zeros(len(p))]
    sklearn_auc = roc_auc_score(y, np.r_[p, p], sample_weight=np.r_[p, 1 - p])
    assert expected_auc(p) == pytest.approx(sklearn_auc, abs=1e-12)


def test_expected_auc_is_undefined_when_every_probability_is_certain_and_alike():
    from retrain.monitor.drift import expected_auc

    assert expected_auc(np.zeros(10)) is None and expected_auc(np.ones(10)) is None


def test_bin_counts_put_each_value_in_the_bin_whose_upper_edge_it_does_not_exceed():
    from retrain.monitor.drift import bin_counts

    rng = np.random.default_rng(5)
    edges = [1.0, 2.5, 2.5000001, 7.0]
    values = np.r_[rng.integers(0, 9, 3000).astype(float), edges, [np.nan] * 4]
    present = values[~np.isnan(values)]
    expected = np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)
    assert bin_counts(pd.Series(values), edges) == [*expected.tolist(), 4]


def test_a_categorical_column_arriving_as_codes_is_a_type_change(samples, toy):
    reference, current = samples
    profile, _ = profile_of(reference, toy)
    codes = current.assign(colour=current["colour"].map({"red": "1", "green": "2", "blue": "3", "pink": "4"}))
    changes = schema_changes(profile, codes, toy, {"rows": 800})
    assert changes["type_changes"] == {"colour": 1.0}
    words = schema_changes(profile, current, toy, {"rows": 800})
    assert words["type_changes"] == {}


@pytest.mark.parametrize("values", [[1, 2, 3] * 67, [["red"], ["blue"]] * 100])
def test_categorical_values_stored_as_numbers_or_lists_are_counted_as_a_type_change(values, toy):
    from retrain.data.schema import CleaningPolicy, validate_batch
    from tests.helpers import toy_raw

    raw = toy_raw("2025-01").astype(object)
    raw["colour"] = pd.Series(values[:200], dtype="int64" if isinstance(values[0], int) else object)
    batch = validate_batch(raw, "2025-01.parquet", toy, CleaningPolicy())
    assert batch.observed()["unparseable"] == {"colour": 200}


def test_new_categories_are_recorded_short_and_few(samples, toy):
    reference, current = samples
    profile, _ = profile_of(reference, toy)
    runaway = current.assign(colour=[f"c{i}" for i in range(798)] + ["x" * 5_000_000] * 2)
    listed = schema_changes(profile, runaway, toy, {"rows": 800})["new_categories"]["colour"]
    assert len(listed) == 21 and max(len(k) for k in listed) < 100
    assert listed["x" * 79 + "… (5000000 chars)"] == round(2 / 800, 6)
    assert listed["… 779 more"] == round(779 / 800, 6)
    assert round(sum(listed.values()), 4) == 1.0


def test_each_feature_records_its_distribution_against_the_reference(samples, toy):
    reference, current = samples
    profile, _ = profile_of(reference, toy)
    drift = feature_drift(profile, reference, current, toy)
    x2 = drift["x2"]["distribution"]
    assert x2["edges"] == profile["numeric"]["x2"]["edges"]
    assert sum(x2["reference"]) == len(reference) and sum(x2["current"]) == len(current)
    assert x2["reference"][-1] == 41 and x2["current"][-1] == 6  # missing, last
    colour = drift["colour"]["distribution"]
    assert colour["categories"] == ["blue", "green", "pink", "red"]
    assert colour["reference"][colour["categories"].index("pink")] == 0
    assert colour["current"] == [int((current["colour"] == c).sum()) for c in colour["categories"]]


def test_a_distribution_keeps_the_largest_categories_and_sums_the_rest():
    from retrain.monitor.drift import SHOWN_CATEGORIES, shown_categories

    names = [f"c{i:02d}" for i in range(30)]
    reference = np.arange(30, dtype=float)
    current = np.zeros(30)
    current[0] = 1000.0
    shown = shown_categories(names, reference, current)
    assert len(shown["categories"]) == SHOWN_CATEGORIES + 1 and shown["categories"][-1] == "other (10)"
    assert "c00" in shown["categories"]  # rare in the reference, the whole batch now
    assert sum(shown["reference"]) == reference.sum() and sum(shown["current"]) == current.sum()


class ChunkedRows:
    """The Rows protocol over a frame cut into pieces, in this process: what a cluster's
    partitions look like to the statistics."""

    def __init__(self, frame, sizes):
        starts = np.cumsum([0, *sizes])
        assert starts[-1] == len(frame)
        self.pieces = [frame.iloc[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)]

    @property
    def rows(self):
        return sum(len(p) for p in self.pieces)

    def partition_rows(self):
        return [len(p) for p in self.pieces]

    def map_partitions(self, func, extra=None, read_columns=None, **kwargs):
        extra = [None] * len(self.pieces) if extra is None else extra
        return [func(p, e, **kwargs) for p, e in zip(self.pieces, extra, strict=True)]

    def take(self, positions, columns=None):
        from retrain.engine.rows import local_positions

        pieces = [p if columns is None else p[columns] for p in self.pieces]
        if positions is None:
            return pd.concat(pieces)
        chosen = local_positions(positions, self.partition_rows())
        return pd.concat([p.take(rows) for p, rows in zip(pieces, chosen, strict=True)])


@pytest.mark.parametrize("sizes", [[250_007], [100_000, 150_007], [1, 33_333, 0, 116_673, 100_000]])
def test_batch_statistics_do_not_depend_on_how_the_batch_is_partitioned(samples, toy, sizes):
    """Counts add up over partitions, the KS values are taken at the same global positions and
    the domain classifier's rows are the same: every number equals the one-frame answer."""
    from retrain.engine.rows import FrameRows
    from retrain.monitor.drift import KS_MAX_ROWS, batch_drift

    reference, _ = samples
    profile, sample = profile_of(reference, toy)
    rng = np.random.default_rng(9)
    n = sum(sizes)
    batch = pd.DataFrame(
        {
            "x1": rng.normal(0.2, 1.1, n),
            "x2": np.where(rng.random(n) < 0.1, np.nan, rng.gamma(2, 12, n)),
            "colour": rng.choice(["red", "green", "blue", "pink", None], n, p=[0.4, 0.3, 0.15, 0.1, 0.05]),
        }
    )
    assert batch["x1"].notna().sum() > 2 * KS_MAX_ROWS  # the KS test reads a spaced subsample
    whole = batch_drift(profile, sample, FrameRows(batch), toy, {"rows": n}, 3, 500, 4)
    parts = batch_drift(profile, sample, ChunkedRows(batch, sizes), toy, {"rows": n}, 3, 500, 4)
    assert parts == whole
    assert whole.schema_changes["new_categories"] == {"colour": {"pink": pytest.approx(0.1, abs=0.01)}}
    assert whole.domain["roc_auc"] is not None
