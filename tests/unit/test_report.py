from retrain.report import job_markdown


def test_job_report_has_decision_metrics_verdict_diff_and_drift():
    decision = {"retrain": True, "as_of": "2025-07", "rule": "any trigger fires",
                "reason": "retrain: data_drift", "fired": ["data_drift"],
                "triggers": [{"name": "data_drift", "enabled": True, "fired": True, "value": 0.1,
                              "threshold": 0.05, "detail": "1 of 10 features drifted"}],
                "drift": [{"feature": "price", "psi": 0.5, "js": 0.2, "test": "ks",
                           "statistic": 0.3, "p_adjusted": 1e-9, "drifted": True},
                          {"feature": "age", "psi": 0.01, "js": 0.01, "test": "ks",
                           "statistic": None, "p_adjusted": None, "drifted": False}]}
    promotion = {"promote": True, "reason": "challenger beats champion",
                 "champion": {"roc_auc": 0.7, "brier": 0.2}, "challenger": {"roc_auc": 0.8},
                 "holdout": {"rows": 120, "period": "2025-07"}}
    text = job_markdown(decision, promotion, "v1.2.0", "| Path | Metric |\n")
    assert text.startswith("# Decision as of 2025-07: **Retrain**")
    assert "| roc_auc | 0.7000 | 0.8000 |" in text and "| brier | 0.2000 | - |" in text
    assert "Verdict: **promoted**: challenger beats champion." in text
    assert "In production after this job: v1.2.0." in text
    assert "| Path | Metric |" in text
    assert text.index("| price |") < text.index("| age |")


def test_job_report_without_models_or_diff_says_so():
    decision = {"retrain": False, "as_of": "2025-07", "rule": "any", "reason": "keep",
                "triggers": []}
    text = job_markdown(decision, {"promote": False, "reason": "no challenger"}, None, "")
    assert "No model was scored on the holdout." in text and "No metric changed." in text
    assert "In production after this job: no model." in text
