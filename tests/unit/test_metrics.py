import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from retrain.data.schema import Schema
from retrain.errors import DataError
from retrain.model.metrics import better_by, recall_at_alerts, score
from retrain.monitor.comparison import ComparePolicy, learned_from, verdict, window_of

POLICY = ComparePolicy("roc_auc", 0.01, {"brier": 0.02}, {"roc_auc": 0.6})


def m(roc_auc, brier=0.15):
    return {"roc_auc": roc_auc, "brier": brier, "accuracy": 0.8}


def test_score_matches_sklearn_and_thresholds_probabilities():
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.8, 0.9])
    s = score(y, p, threshold=0.5)
    assert s["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-6)
    assert s["accuracy"] == pytest.approx(3 / 5)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(2 / 3)
    assert s["brier"] == pytest.approx(np.mean((p - y) ** 2), abs=1e-6)
    assert score(y, p, threshold=0.05)["recall"] == 1.0


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.97, 1.01])
@pytest.mark.parametrize("positives", [0, 1, 40, 200])
def test_label_metrics_equal_scikit_learns(threshold, positives):
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    rng = np.random.default_rng(positives)
    y = np.zeros(200, dtype=int)
    y[rng.choice(200, positives, replace=False)] = 1
    p = np.clip(0.4 * y + rng.random(200) * 0.6, 0, 1)
    pred = (p >= threshold).astype(int)
    s = score(y, p, threshold)
    assert s["accuracy"] == round(accuracy_score(y, pred), 6)
    assert s["precision"] == round(precision_score(y, pred, zero_division=0), 6)
    assert s["recall"] == round(recall_score(y, pred, zero_division=0), 6)
    assert s["f1"] == round(f1_score(y, pred, zero_division=0), 6)


def test_roc_auc_is_none_with_a_single_class():
    assert score(np.array([1, 1]), np.array([0.2, 0.9]))["roc_auc"] is None


def test_better_by_respects_direction():
    assert better_by("roc_auc", 0.8, 0.7) == pytest.approx(0.1)
    assert better_by("brier", 0.1, 0.2) == pytest.approx(0.1)


def test_challenger_must_beat_champion_by_the_margin():
    assert verdict(m(0.80), m(0.815), POLICY)["promote"]
    lost = verdict(m(0.80), m(0.805), POLICY)
    assert not lost["promote"] and "champion stays" in lost["reason"]


def test_a_guard_metric_drop_blocks_promotion():
    out = verdict(m(0.80, brier=0.10), m(0.85, brier=0.13), POLICY)
    assert not out["promote"] and "brier 0.1000 -> 0.1300 (worse by 0.0300, allowed" in out["reason"]


def test_a_guard_says_better_when_the_challenger_improved_on_it():
    out = verdict(m(0.80, brier=0.199826), m(0.85, brier=0.192945), POLICY)
    details = {c["metric"]: c["detail"] for c in out["checks"] if c["check"] == "guard"}
    assert details["brier"] == "brier 0.1998 -> 0.1929 (better by 0.0069)"


def test_without_champion_only_minimums_apply():
    assert verdict(None, m(0.65), POLICY)["promote"]
    failed = verdict(None, m(0.55), POLICY)
    assert not failed["promote"] and "roc_auc 0.55 is not >= 0.6" in failed["reason"]


def test_without_challenger_nothing_is_promoted():
    assert not verdict(m(0.8), None, POLICY)["promote"]


def test_unknown_metric_in_params_is_refused():
    with pytest.raises(DataError, match="metrics.primary = 'auc': expected 'accuracy'"):
        ComparePolicy.from_params("auc", {})


def labelled_scores(case: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(len(case))
    y = rng.random(3000) < {"balanced": 0.5, "rare": 0.03, "common": 0.9, "ties": 0.3}[case]
    p = np.clip(0.3 * y + rng.random(3000) * 0.7, 0, 1)
    if case == "ties":
        p = p.round(1)
    return y.astype(int), p


@pytest.mark.parametrize("case", ["balanced", "rare", "common", "ties"])
def test_curves_and_auc_equal_scikit_learns(case):
    from sklearn.metrics import precision_recall_curve, roc_curve

    from retrain.model.metrics import pr_points, roc_auc, roc_points

    y, p = labelled_scores(case)
    fpr, tpr, _ = roc_curve(y, p)
    ours_fpr, ours_tpr = roc_points(y, p)
    np.testing.assert_array_equal(ours_fpr, fpr)
    np.testing.assert_array_equal(ours_tpr, tpr)
    precision, recall, _ = precision_recall_curve(y, p)
    ours_recall, ours_precision = pr_points(y, p)
    np.testing.assert_array_equal(ours_recall, recall)
    np.testing.assert_array_equal(ours_precision, precision)
    assert roc_auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_brier_equals_scikit_learns():
    from sklearn.metrics import brier_score_loss

    y, p = labelled_scores("rare")
    assert score(y, p)["brier"] == round(brier_score_loss(y, p), 6)


def test_scoring_imports_no_scikit_learn():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from retrain.model.metrics import score; "
        "score(np.array([0, 1, 1]), np.array([0.2, 0.7, 0.4])); "
        "print('sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_compare_does_not_decide_on_a_holdout_smaller_than_the_minimum():
    from retrain.monitor.comparison import verdict
    from retrain.registry.commands import held_baseline

    policy = ComparePolicy(min_holdout_rows=100, minimums={}, guards={}, min_improvement=0.0)
    champion = {"roc_auc": 0.70, "rows": 2}
    small = verdict(champion, {"roc_auc": 0.99, "rows": 2}, policy)
    assert not small["promote"] and small["undecided"]
    assert "the holdout has 2 rows, fewer than compare.min_holdout_rows (100)" in small["reason"]
    assert held_baseline({**small, "challenger": {"rows": 2}, "champion": champion}) is None
    assert verdict({**champion, "rows": 100}, {"roc_auc": 0.99, "rows": 100}, policy)["promote"]


def test_a_challenger_within_a_negative_margin_is_promoted_and_not_said_to_beat_the_champion():
    policy = ComparePolicy(min_improvement=-0.01, guards={}, minimums={})
    champion = {"roc_auc": 0.80, "rows": 200}
    near = verdict(champion, {"roc_auc": 0.795, "rows": 200}, policy)
    assert near["promote"] and near["improvement"] == -0.005
    assert near["reason"].startswith("challenger, trained on newer data, is within compare.min_improvement")
    assert "beats" not in near["reason"]
    worse = verdict(champion, {"roc_auc": 0.785, "rows": 200}, policy)
    assert not worse["promote"] and worse["reason"].startswith("champion stays: roc_auc 0.8 -> 0.785")
    better = verdict(champion, {"roc_auc": 0.81, "rows": 200}, policy)
    assert better["promote"] and better["reason"].startswith("challenger beats champion")


def test_a_challenger_that_learned_from_the_champion_s_own_window_must_beat_it():
    """A forced retrain on the champion's window (other hyperparameters, or the same model
    again): no newer data speaks for it, so the negative margin does not apply."""
    policy = ComparePolicy(min_improvement=-0.01, guards={}, minimums={})
    champion, window = {"roc_auc": 0.80, "rows": 200}, learned_from(["2025-02", "2025-03"], 900)
    same = (window, learned_from(("2025-02", "2025-03"), 900))
    for score_ in (0.795, 0.80):
        kept = verdict(champion, {"roc_auc": score_, "rows": 200}, policy, windows=same)
        assert not kept["promote"], score_
        assert "needs > +0.0000: it learned from the champion's own window" in kept["reason"]
    assert verdict(champion, {"roc_auc": 0.801, "rows": 200}, policy, windows=same)["promote"]
    newer = (window, learned_from(["2025-03", "2025-04"], 900))
    assert verdict(champion, {"roc_auc": 0.795, "rows": 200}, policy, windows=newer)["promote"]
    assert verdict(champion, {"roc_auc": 0.795, "rows": 200}, policy, windows=(None, None))["promote"]
    assert window_of({"window": {"periods": ["2025-02", "2025-03"], "rows": 900}}) == window
    assert window_of({"reason": "nothing to train"}) is None


def partitioned(y, p, sizes, spill_dir=None, most=1 << 20, threshold=0.5):
    from retrain.model.partitioned_score import merged_metrics, scored

    edges = np.cumsum([0, *sizes])
    parts = [
        scored(
            y[a:b].astype(np.int8),
            p[a:b],
            threshold,
            None if spill_dir is None else str(spill_dir / f"part{i}.npy"),
        )
        for i, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True))
    ]
    return merged_metrics(parts, lambda func, calls: [func(**kwargs) for kwargs in calls], most=most)


@pytest.mark.parametrize("case", ["balanced", "rare", "common", "ties"])
@pytest.mark.parametrize("most", [5, 64, 1 << 20])
def test_scores_merged_from_partitions_are_the_whole_batchs_to_the_bit(case, most, tmp_path):
    y, p = labelled_scores(case)
    whole = score(y, p, 0.4)
    for sizes in ([3000], [1000, 1000, 1000], [1, 2999], [7, 0, 1500, 1493]):
        assert partitioned(y, p, sizes, most=most, threshold=0.4) == whole, sizes
    assert partitioned(y, p, [500] * 6, tmp_path, most=most, threshold=0.4) == whole


def test_one_probability_bin_holding_every_row_is_read_in_bounded_rounds(monkeypatch):
    import retrain.model.partitioned_score as partitioned_score

    rng = np.random.default_rng(3)
    y = (rng.random(4000) < 0.4).astype(int)
    p = 0.5 + rng.integers(0, 40, 4000) * 1e-9  # every row in one bin, 40 distinct values
    p[:1000] = 0.5 + 20e-9  # a run of one value longer than a round
    held = []
    counted = partitioned_score.twice_u
    monkeypatch.setattr(partitioned_score, "twice_u", lambda y, p: held.append(len(p)) or counted(y, p))
    assert partitioned(y, p, [1000, 1500, 1500], most=32) == score(y, p)
    assert held and max(held) <= 32
    assert partitioned(y, np.full(4000, 0.3), [2000, 2000], most=32)["roc_auc"] == 0.5


def test_value_ranges_hold_at_most_the_bound_unless_one_bin_holds_more():
    from retrain.model.partitioned_score import BINS, value_ranges

    positives, negatives = np.zeros(BINS, dtype=int), np.zeros(BINS, dtype=int)
    positives[[10, 11, 12, 2000]] = [30, 30, 30, 500]
    negatives[[11, 4095]] = [15, 60]
    ranges = value_ranges(positives, negatives, 100)
    assert ranges[0][0] == -np.inf and ranges[-1][1] == np.inf
    assert all(high == low for (_, high), (low, _) in zip(ranges[:-1], ranges[1:], strict=True))
    p = np.r_[
        np.full(30, 10.5), np.full(45, 11.5), np.full(30, 12.5), np.full(500, 2000.5), np.full(60, 4095.5)
    ]
    held = [int(np.count_nonzero((p / BINS >= low) & (p / BINS < high))) for low, high in ranges]
    assert sum(held) == len(p) and max(held) == 500
    assert all(rows <= 100 for rows in held if rows != 500)


@pytest.mark.parametrize("case", ["balanced", "rare", "ties"])
def test_recall_at_alerts_counts_the_positives_among_the_highest_scored_rows(case):
    y, p = labelled_scores(case)
    for alerts in (0, 1, 17, 400, len(p)):
        # a brute force over every order of the tied rows would be too slow: one stable
        # order per direction bounds the expected value, and without ties both are equal
        order_up, order_down = np.lexsort((y, -p)), np.lexsort((-y, -p))
        worst = y[order_up][:alerts].sum() / y.sum()
        best = y[order_down][:alerts].sum() / y.sum()
        value = recall_at_alerts(y, p, alerts)
        assert worst - 5e-7 <= value <= best + 5e-7  # rounded to 6 digits
        if len(np.unique(p)) == len(p):
            assert value == round(best, 6)
    assert recall_at_alerts(y, p, 0) == 0.0 and recall_at_alerts(y, p, len(p)) == 1.0


def test_recall_at_alerts_shares_the_alerts_left_among_tied_rows():
    y = np.array([1, 0, 1, 0, 1, 0])
    p = np.array([0.9, 0.5, 0.5, 0.5, 0.5, 0.1])  # one above the cut, four tied at it, 2 of them positive
    assert recall_at_alerts(y, p, 3) == round((1 + 2 * 2 / 4) / 3, 6)
    assert recall_at_alerts(np.zeros(6, dtype=int), p, 3) is None


def toy_holdout(y: np.ndarray) -> tuple[Schema, pd.DataFrame]:
    """The toy dataset's schema and a holdout of labels `y`, one period, one timestamp."""
    from tests.helpers import TOY

    schema = Schema.from_params(TOY)
    holdout = pd.DataFrame(
        {
            schema.target: y,
            schema.id: [f"c{i}" for i in range(len(y))],
            schema.time: pd.Timestamp("2024-01-01"),
            "_period": "2024-01",
        }
    )
    return schema, holdout


def test_the_recall_at_budget_guard_holds_a_challenger_that_catches_fewer_churners_in_the_same_alerts():
    from retrain.monitor.comparison import compare

    # 100 churners in 400 rows; the champion flags 50 (p >= 0.5): 45 churners, and ranks the
    # rest at random. The challenger's 50 highest hold 20 churners, but it ranks every other
    # churner above every other customer: a far higher ROC AUC, fewer churners in as many calls
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(100, dtype=int), np.zeros(300, dtype=int)]
    champion = rng.random(400) * 0.49
    champion[np.r_[0:45, 100:105]] = 0.5 + rng.random(50) * 0.5
    challenger = rng.random(400) * 0.3
    challenger[20:100] = 0.3 + rng.random(80) * 0.3
    challenger[np.r_[0:20, 100:130]] = 0.6 + rng.random(50) * 0.4
    schema, holdout = toy_holdout(y)
    policy = ComparePolicy(min_improvement=0.0, guards={"recall_at_budget": 0.05}, minimums={})
    promotion, _ = compare({"champion": champion, "challenger": challenger}, holdout, schema, 0.5, policy)
    champ, chall = promotion["champion"], promotion["challenger"]
    assert chall["roc_auc"] > champ["roc_auc"]
    assert champ["recall_at_budget"] == champ["recall"]
    assert chall["recall_at_budget"] < champ["recall_at_budget"] - 0.05
    assert not promotion["promote"] and "recall_at_budget" in promotion["reason"]
    unguarded = ComparePolicy(min_improvement=0.0, guards={}, minimums={})
    assert compare({"champion": champion, "challenger": challenger}, holdout, schema, 0.5, unguarded)[0][
        "promote"
    ]


def test_the_recall_at_budget_guard_is_a_params_key_and_an_unknown_guard_is_refused():
    assert ComparePolicy.from_params("roc_auc", {"guards": {"recall_at_budget": 0.1}}).guards == {
        "recall_at_budget": 0.1
    }
    with pytest.raises(DataError, match="recall_at_budge"):
        ComparePolicy.from_params("roc_auc", {"guards": {"recall_at_budge": 0.1}})


def test_the_default_guards_promote_a_better_ranking_challenger_that_flags_no_row_at_the_threshold():
    """A challenger trained on periods of a lower positive rate scores every row below
    metrics.threshold: its F1 there is 0 although it ranks far better and flags more churners
    in the champion's alerts. F1 at a fixed threshold moves with the base rate, so it is no
    default guard (it held the flights' first challengers for months: docs/params.md)."""
    from retrain.monitor.comparison import compare

    rng = np.random.default_rng(5)
    y = np.r_[np.ones(100, dtype=int), np.zeros(300, dtype=int)]
    champion = 0.1 + rng.random(400) * 0.35
    champion[np.r_[0:30, 100:130]] = 0.5 + rng.random(60) * 0.2  # flags 60 rows, 30 of them churners
    challenger = 0.05 + rng.random(400) * 0.2
    challenger[0:100] += 0.1
    schema, holdout = toy_holdout(y)
    scores = {"champion": champion, "challenger": challenger}
    promotion, _ = compare(scores, holdout, schema, 0.5, ComparePolicy())
    champ, chall = promotion["champion"], promotion["challenger"]
    assert chall["f1"] == 0.0 < champ["f1"] - 0.1
    assert chall["roc_auc"] > champ["roc_auc"] + 0.1 and chall["recall_at_budget"] > champ["recall_at_budget"]
    assert promotion["promote"], promotion["reason"]
    assert "f1" not in promotion["reason"]
    with_f1 = ComparePolicy(guards={**ComparePolicy().guards, "f1": 0.1})
    held, _ = compare(scores, holdout, schema, 0.5, with_f1)
    assert not held["promote"] and "f1 0.3750 -> 0.0000" in held["reason"]
