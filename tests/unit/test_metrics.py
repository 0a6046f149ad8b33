import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from retrain.errors import DataError
from retrain.metrics import ComparePolicy, better_by, score, verdict

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
    assert not out["promote"] and "brier" in out["reason"]


def test_without_champion_only_minimums_apply():
    assert verdict(None, m(0.65), POLICY)["promote"]
    failed = verdict(None, m(0.55), POLICY)
    assert not failed["promote"] and "roc_auc 0.55 is not >= 0.6" in failed["reason"]


def test_without_challenger_nothing_is_promoted():
    assert not verdict(m(0.8), None, POLICY)["promote"]


def test_unknown_metric_in_params_is_refused():
    with pytest.raises(DataError, match="unknown metric 'auc'"):
        ComparePolicy.from_params("auc", {})
