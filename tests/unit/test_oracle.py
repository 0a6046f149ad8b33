import itertools

import numpy as np
import pytest

from retrain.backtest import BatchSource, ModelCache, Policy, replay
from retrain.oracle import best_retrains, every_batch_models, schedule_phases, served_matrix
from tests.unit.test_backtest import settings, toy_history  # noqa: F401  (fixtures)

PERIODS = [f"2025-{m:02d}" for m in range(1, 9)]


def brute_force(scores, budget):
    """The best mean over every set of at most `budget` retrain batches after the first."""
    n = len(scores)
    best = -np.inf
    for size in range(budget + 1):
        for chosen in itertools.combinations(range(1, n - 1), size):
            model, total = 0, 0.0
            for u in range(1, n):
                total += scores[model][u]
                if u in chosen:
                    model = u
            best = max(best, total / (n - 1))
    return best


@pytest.mark.parametrize("seed", range(4))
def test_the_oracle_finds_the_best_retrain_batches_for_every_budget(seed):
    rng = np.random.default_rng(seed)
    n = len(PERIODS)
    scores = [[float(rng.uniform(0.5, 0.9)) if u > s else None for u in range(n)] for s in range(n)]
    for budget in range(n - 1):
        oracle = best_retrains(scores, PERIODS, budget)
        assert oracle.retrains <= budget
        assert oracle.mean == pytest.approx(brute_force(scores, budget), abs=1e-6)
        model, served = 0, []
        for u in range(1, n):
            served.append(scores[model][u])
            if PERIODS[u] in oracle.periods:
                model = u
        assert np.mean(served) == pytest.approx(oracle.mean, abs=1e-6)


def test_the_oracle_skips_unlabelled_batches_and_waits_for_the_first_model():
    scores = [[None] * 5 for _ in range(5)]
    scores[1][2:] = [0.6, None, 0.6]  # batch 0 trained nothing; batch 3 has no labels
    scores[2][3:] = [None, 0.9]
    oracle = best_retrains(scores, PERIODS[:5], 1)
    assert oracle.periods == ["2025-03"] and oracle.mean == pytest.approx((0.6 + 0.9) / 2)
    assert best_retrains([[None] * 3 for _ in range(3)], PERIODS[:3], 2).mean is None


def test_with_a_schedules_retrains_the_oracle_serves_at_least_the_schedule(settings, toy_history):  # noqa: F811
    batches = BatchSource.of(toy_history)
    cache = ModelCache({})
    policies = [
        Policy("policy", "triggers"),
        Policy("every_batch", "every"),
        Policy("every_2", "every_k", 2),
        Policy("every_3", "every_k", 3),
    ]
    result = replay(batches, settings, policies, "roc_auc", cache=cache)
    scores = served_matrix(batches, settings, every_batch_models(result, cache), "roc_auc")
    every = result["batches"]["every_batch"]
    for t in range(1, len(every)):
        assert scores[t - 1][t] == pytest.approx(every[t]["served"]["roc_auc"], abs=1e-12)
    for name in ("policy", "every_2", "every_3"):
        summary = result["summary"][name]
        oracle = best_retrains(scores, batches.periods, summary["retrains"])
        assert oracle.mean >= summary["mean_roc_auc"] - 1e-6, name
    trained = [row["retrain"] for row in every]
    for k in (2, 3):
        first = schedule_phases(scores, trained, k)[0]
        summary = result["summary"][f"every_{k}"]
        assert (first.retrains, first.mean) == (
            summary["retrains"],
            pytest.approx(summary["mean_roc_auc"], abs=1e-6),
        )


def test_a_schedule_is_scored_from_each_start_and_skips_batches_that_train_no_model():
    # the model trained at batch s serves 0.9 if s is odd, else 0.6; batch 3 trains none (no labels)
    n = 7
    scores = [[(0.9 if s % 2 else 0.6) if u > s else None for u in range(n)] for s in range(n)]
    trained = [True] * n
    trained[3] = False
    scores[3] = [None] * n
    even, odd = schedule_phases(scores, trained, 2)
    # from batch 0: retrains at 2, 4, 6; serves 0.6 everywhere
    assert (even.start, even.retrains, even.mean) == (0, 3, pytest.approx(0.6))
    # from batch 1: retrains at 1 and 5 (3 trained nothing): 0.6 on batch 1, then 0.9 on 2..6
    assert (odd.start, odd.retrains, odd.mean) == (1, 2, pytest.approx((0.6 + 5 * 0.9) / 6))
    assert [p.start for p in schedule_phases(scores, trained, 3)] == [0, 1, 2]
