from retrain.reporting.markdown import job_markdown


def test_job_report_has_decision_metrics_verdict_diff_and_drift():
    decision = {
        "retrain": True,
        "as_of": "2025-07",
        "rule": "any trigger fires",
        "reason": "retrain: data_drift",
        "fired": ["data_drift"],
        "triggers": [
            {
                "name": "data_drift",
                "enabled": True,
                "fired": True,
                "value": 0.1,
                "threshold": 0.05,
                "detail": "1 of 10 features drifted",
            }
        ],
        "drift": [
            {
                "feature": "price",
                "psi": 0.5,
                "js": 0.2,
                "test": "ks",
                "statistic": 0.3,
                "p_adjusted": 1e-9,
                "drifted": True,
            },
            {
                "feature": "age",
                "psi": 0.01,
                "js": 0.01,
                "test": "ks",
                "statistic": None,
                "p_adjusted": None,
                "drifted": False,
            },
        ],
    }
    promotion = {
        "promote": True,
        "reason": "challenger beats champion",
        "champion": {"roc_auc": 0.7, "brier": 0.2},
        "challenger": {"roc_auc": 0.8},
        "holdout": {"rows": 120, "period": "2025-07"},
    }
    text = job_markdown(decision, promotion, "v1.2.0", "| Path | Metric |\n")
    assert text.startswith("# Decision as of 2025-07: **Retrain**")
    assert "| roc_auc | 0.7000 | 0.8000 |" in text and "| brier | 0.2000 | - |" in text
    assert "Verdict: **promoted**: challenger beats champion." in text
    assert "In production after this job: v1.2.0." in text
    assert "| Path | Metric |" in text
    assert text.index("| price |") < text.index("| age |")


def test_job_report_without_models_or_diff_says_so():
    decision = {"retrain": False, "as_of": "2025-07", "rule": "any", "reason": "keep", "triggers": []}
    text = job_markdown(decision, {"promote": False, "reason": "no challenger"}, None, "")
    assert "No model was scored on the holdout." in text and "No metric changed." in text
    assert "In production after this job: no model." in text


def run_record(toy_schema, **changes):
    import pandas as pd

    from retrain.reporting.html import RunRecord

    scores = pd.DataFrame(
        {
            "key": ["a", "b", "c", "d"],
            "actual": ["1", "0", "1", "0"],
            "predicted": ["1", "1", "0", "0"],
            "probability": [0.9, 0.6, 0.2, 0.1],
        }
    )
    curve = pd.DataFrame({"fpr": [0, 0.5, 1], "tpr": [0, 0.8, 1]})
    pr = pd.DataFrame({"recall": [1, 0.5, 0], "precision": [0.5, 0.7, 1]})
    record = dict(
        decision={
            "as_of": "2025-07",
            "reason": "retrain: data_drift <b>",
            "retrain": True,
            "triggers": [
                {"name": "data_drift", "fired": True, "value": 0.1, "threshold": 0.05, "detail": "1 of 2"}
            ],
        },
        evaluation={"metrics": {"roc_auc": 0.7}, "labelled_period": "2025-07"},
        promotion={
            "promote": True,
            "reason": "better",
            "champion": {"roc_auc": 0.7},
            "challenger": {"roc_auc": 0.8},
            "holdout": {"rows": 4, "period": "2025-07"},
        },
        pointer={"name": "m", "version": "v1.0.0"},
        schema=toy_schema,
        metric="roc_auc",
        curves={r: {"roc": curve, "pr": pr} for r in ("champion", "challenger")},
        holdout_scores={"champion": scores, "challenger": scores},
        newest_scores=scores,
        drift=pd.DataFrame(
            {
                "feature": ["x1", "colour"],
                "psi": [0.5, 0.01],
                "psi_threshold": [0.2, 0.2],
                "p_adjusted": [1e-9, ""],
                "drifted": [1, 0],
            }
        ),
        backtest=pd.DataFrame(
            {
                "period": ["2025-06", "2025-07"],
                "policy": ["", 0.8],
                "never": ["", 0.7],
                "policy_retrained": [1, 0],
            }
        ),
    )
    record.update(changes)
    return RunRecord(**record)


def test_html_report_is_self_contained_escaped_and_deterministic(toy_schema):
    import re

    from retrain.reporting.html import html_report

    page = html_report(run_record(toy_schema))
    assert page == html_report(run_record(toy_schema))
    assert len(re.findall(r'<figure class="chart" id="\w+"><img', page)) == 5
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "http://" not in page.replace("http://www.w3.org", "")
    assert "https://" not in page
    assert "data_drift &lt;b&gt;" in page and "<b>" not in page
    assert "<td>x1</td><td>0.5</td><td>0.2</td><td>1e-09</td><td>yes</td>" in page


def test_html_report_at_cold_start_draws_placeholders(toy_schema):
    import pandas as pd

    from retrain.reporting.html import html_report

    empty = pd.DataFrame(columns=["key", "actual", "predicted", "probability"])
    page = html_report(
        run_record(
            toy_schema,
            curves={},
            holdout_scores={"champion": empty, "challenger": None},
            newest_scores=empty,
            drift=None,
            backtest=None,
            promotion={
                "promote": True,
                "reason": "cold start",
                "champion": None,
                "challenger": {"roc_auc": 0.8},
            },
        )
    )
    assert page.count('<figure class="chart"') == 5


def test_confusion_matrix_counts_every_cell_negative_first(toy_schema):
    import pandas as pd

    from retrain.reporting.html import confusion_matrix

    scores = pd.DataFrame({"actual": ["1", "1", "1", "0"], "predicted": ["1", "1", "0", "1"]})
    matrix = confusion_matrix(scores, toy_schema)
    assert matrix.index.tolist() == ["0", "1"] and matrix.columns.tolist() == ["0", "1"]
    assert matrix.to_numpy().tolist() == [[0, 1], [1, 2]]


def test_html_report_and_job_summary_say_how_the_policy_fared_against_the_schedules(toy_schema):
    from retrain.reporting.html import html_report
    from retrain.reporting.markdown import job_markdown

    line = (
        "The params policy dominates the best fixed schedule (every 2 batches): mean served "
        "roc_auc 0.7425 against 0.7396, with 3 retrains against 5."
    )
    summary = {
        "policy": {
            "retrains": 3,
            "promotions": 3,
            "retrains_not_promoted": 0,
            "mean_roc_auc": 0.7425,
            "worst_roc_auc": 0.35,
            "rows_trained": 4108,
        },
        "every_2": {
            "retrains": 5,
            "promotions": 5,
            "retrains_not_promoted": 0,
            "mean_roc_auc": 0.7396,
            "worst_roc_auc": 0.41,
            "rows_trained": 6708,
        },
        "schedules": {"best_schedule": "every_2", "dominates_best_schedule": True},
    }
    page = html_report(run_record(toy_schema, backtest_summary=summary, against_schedules=line))
    assert f"<p>{line}</p>" in page
    assert "<td>every 2</td><td>5</td><td>5</td><td>0</td><td>0.7396</td>" in page
    record = run_record(toy_schema)
    decision = {**record.decision, "rule": "any trigger fires"}
    job = job_markdown(decision, record.promotion, "v1.0.0", "", against_schedules=line)
    assert "## The policy against fixed schedules (backtest)\n\n" + line in job


def test_a_champion_promoted_on_this_batch_is_not_shown_as_evidence_for_itself(toy_schema):
    from retrain.reporting.html import html_report

    fresh = {
        "name": "m",
        "version": "v1.1.0",
        "action": "promote",
        "promoted_as_of": "2025-07",
        "reason": "challenger beats champion",
    }
    import base64
    import re

    def confusion_svg(page):
        data = re.search(
            r'id="confusion"><img alt="[^"]*" src="data:image/svg\+xml;base64,'
            r'([^"]+)"',
            page,
        ).group(1)
        return base64.b64decode(data).decode()

    page = html_report(run_record(toy_schema, pointer=fresh))
    assert "v1.1.0 was promoted on this batch" in page and "no evidence for it" in page
    assert "champion on 2025-07" not in confusion_svg(page)
    older = html_report(run_record(toy_schema, pointer={**fresh, "promoted_as_of": "2025-06"}))
    assert "promoted on this batch" not in older
    assert "champion on 2025-07" in confusion_svg(older)


def test_every_page_says_how_the_challengers_hyperparameters_were_chosen(toy_schema):
    from retrain.reporting.html import html_report
    from retrain.reporting.markdown import summary_markdown

    tuning = {
        "tuned": True,
        "trials": 20,
        "best_score": 0.81234,
        "fixed_score": 0.8,
        "best_hyperparameters": {"learning_rate": 0.0216, "max_leaf_nodes": 32},
        "metric": "roc_auc",
        "seconds": 3.72,
    }
    decision = {"retrain": True, "as_of": "2025-07", "rule": "any", "reason": "retrain", "triggers": []}
    promotion = {"promote": True, "reason": "better", "challenger_tuning": tuning}
    sentence = (
        "The challenger's hyperparameters were tuned: 20 trials, validation roc_auc 0.8123 against "
        "0.8000 with the fixed ones, in 3.7 s; chosen: learning_rate 0.0216, max_leaf_nodes 32."
    )
    assert sentence in summary_markdown(decision, tuning=tuning)
    assert sentence in job_markdown(decision, promotion, "v1.1.0", "")
    assert "tuned: 20 trials" in html_report(run_record(toy_schema, promotion=promotion))
    kept = summary_markdown(decision, tuning={**tuning, "tuned": False})
    assert "kept the fixed hyperparameters of params.yaml: 20 trials searched, the best validated" in kept
    fixed = summary_markdown(decision, tuning={**tuning, "tuned": False, "trials": 0})
    assert "fitted with the fixed hyperparameters of params.yaml" in fixed
    assert "hyperparameters" not in summary_markdown(decision)
