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
    assert "| roc auc | 0.7000 | 0.8000 |" in text and "| brier | 0.2000 | – |" in text
    assert "| data drift | fired, counted | 0.1000 | 0.0500 | 1 of 10 features drifted |" in text
    assert "| price | 0.5000 | 0.2000 | ks | 0.3000 | < 0.0001 | yes |" in text
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

    from retrain.reporting.html import Deciding, RunRecord

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
    features = {
        "x1": {
            "kind": "numeric",
            "psi": 0.5,
            "distribution": {"edges": [1.5, 20000.0], "reference": [5, 5, 5, 0], "current": [1, 2, 9, 3]},
        },
        "colour": {
            "kind": "categorical",
            "psi": 0.01,
            "distribution": {
                "categories": ["blue", "red", "teal"],
                "reference": [6, 6, 0],
                "current": [5, 5, 2],
            },
        },
    }
    run = {
        "decision": {
            "as_of": "2025-07",
            "reason": "retrain: data_drift <b>",
            "retrain": True,
            "rule": "any trigger fires",
            "triggers": [
                {
                    "name": "age",
                    "enabled": True,
                    "fired": False,
                    "value": 1,
                    "threshold": 12,
                    "detail": "young",
                },
                {
                    "name": "data_drift",
                    "enabled": True,
                    "fired": True,
                    "value": 0.1,
                    "threshold": 0.05,
                    "detail": "1 of 2",
                },
            ],
            "drift": [
                {
                    "feature": "x1",
                    "psi": 0.5,
                    "js": 0.3,
                    "test": "ks",
                    "statistic": 0.4,
                    "p_adjusted": 1e-9,
                    "psi_threshold": 0.2,
                    "monitored": True,
                    "drifted": True,
                },
                {
                    "feature": "colour",
                    "psi": 0.01,
                    "js": 0.01,
                    "test": "chi2",
                    "statistic": 0.1,
                    "p_adjusted": 0.8,
                    "psi_threshold": 0.2,
                    "monitored": True,
                    "drifted": False,
                },
            ],
        },
        "evaluation": {
            "as_of": "2025-07",
            "metrics": {"roc_auc": 0.7},
            "labelled_period": "2025-07",
            "champion": {"version": "v1.0.0", "importance": {"x1": 0.2, "colour": 0.01}},
            "drift": {"rows": 15, "features": features},
            "schema_changes": {"new_categories": {"colour": {"teal": 0.133}}, "out_of_range": {"x1": 0.2}},
        },
        "promotion": {
            "promote": True,
            "reason": "better",
            "champion": {"roc_auc": 0.7},
            "challenger": {"roc_auc": 0.8},
            "holdout": {"rows": 4, "period": "2025-07"},
        },
        "curves": {r: {"roc": curve, "pr": pr} for r in ("champion", "challenger")},
        "holdout_scores": {"champion": scores, "challenger": scores},
    }
    record = dict(
        pointer={"name": "m", "version": "v1.0.0"},
        schema=toy_schema,
        metric="roc_auc",
        backtest=pd.DataFrame(
            {
                "period": ["2025-06", "2025-07"],
                "policy": ["", 0.8],
                "never": ["", 0.7],
                "policy_retrained": [1, 0],
                "policy_promoted": [1, 0],
            }
        ),
        replay_drift=pd.DataFrame(
            {
                "period": ["2025-06", "2025-06", "2025-07", "2025-07"],
                "feature": ["x1", "colour", "x1", "colour"],
                "psi": [0.01, 0.02, 0.5, 0.01],
                "drifted": [0, 0, 1, 0],
                "retrained": [0, 0, 1, 1],
                "promoted": [0, 0, 1, 1],
            }
        ),
    )
    record.update({k: v for k, v in changes.items() if k not in run})
    run.update({k: v for k, v in changes.items() if k in run})
    return RunRecord(run=Deciding(**run), **record)


def charts_of(page):
    import re

    return re.findall(r'<figure class="chart" id="([\w-]+)"><img', page)


def svg_of(page, chart):
    import base64
    import re

    data = re.search(rf'id="{chart}"><img alt="[^"]*" src="data:image/svg\+xml;base64,([^"]+)"', page).group(
        1
    )
    return base64.b64decode(data).decode()


def test_html_report_is_self_contained_escaped_and_deterministic(toy_schema):
    import re

    from retrain.reporting.html import html_report

    page = html_report(run_record(toy_schema))
    assert page == html_report(run_record(toy_schema))
    assert charts_of(page) == [
        "roc", "pr", "calibration", "confusion", "dist-x1", "dist-colour", "drift", "production",
        "drift-over-time", "importance", "history",
    ]  # fmt: skip
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "http://" not in page.replace("http://www.w3.org", "")
    assert "https://" not in page
    assert "data_drift &lt;b&gt;" in page and "<b>" not in page
    assert "e-0" not in re.sub(r"base64,[^\"]+", "", page)  # no number in an exponent


def test_html_report_at_cold_start_draws_placeholders(toy_schema):
    import pandas as pd

    from retrain.reporting.html import html_report

    empty = pd.DataFrame(columns=["key", "actual", "predicted", "probability"])
    page = html_report(
        run_record(
            toy_schema,
            curves={},
            holdout_scores={"champion": empty, "challenger": None},
            backtest=None,
            promotion={
                "promote": True,
                "reason": "cold start",
                "champion": None,
                "challenger": {"roc_auc": 0.8},
            },
        )
    )
    assert charts_of(page)[:4] == ["roc", "pr", "calibration", "confusion"]
    assert "no model was scored on the holdout" in svg_of(page, "calibration")
    assert "challenger 0.8000 (no champion yet)" in page


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
    decision = {**record.run.decision, "rule": "any trigger fires"}
    job = job_markdown(decision, record.run.promotion, "v1.0.0", "", against_schedules=line)
    assert "## The policy against fixed schedules (backtest)\n\n" + line in job


def test_a_champion_promoted_on_this_batch_is_not_shown_as_evidence_for_itself(toy_schema):
    from retrain.reporting.html import Deciding, html_report

    fresh = {
        "name": "m",
        "version": "v1.1.0",
        "action": "promote",
        "promoted_as_of": "2025-07",
        "reason": "challenger beats champion",
        "commit": "abcdef1234567890",
    }
    unknown = html_report(run_record(toy_schema, pointer=fresh))
    assert "promoted on this batch and no record of the run that promoted it" in unknown
    assert "no evidence for it" in unknown

    before = run_record(toy_schema).run
    deciding = Deciding(
        decision={**before.decision, "reason": "retrain: the deciding run"},
        evaluation={**before.evaluation, "champion": {"version": "v1.0.0"}},
        promotion={**before.promotion, "reason": "challenger beats champion on the holdout"},
        curves=before.curves,
        holdout_scores=before.holdout_scores,
    )
    after = run_record(
        toy_schema,
        pointer=fresh,
        decision={**before.decision, "retrain": False, "reason": "keep: the new champion", "triggers": []},
        promotion={
            "promote": False,
            "reason": "no challenger was trained",
            "champion": None,
            "challenger": None,
        },
    )
    after.decided = deciding
    page = html_report(after)
    assert "retrain: the deciding run" in page and "keep: the new champion" not in page
    assert "promoted v1.1.0" in page and "challenger beats champion on the holdout" in page
    assert page.index("Champion against challenger") < page.index("After the promotion: v1.1.0 on this batch")
    assert "commit abcdef123456" in page and "no evidence for it" in page
    assert "no record of the run" not in page
    older = html_report(run_record(toy_schema, pointer={**fresh, "promoted_as_of": "2025-06"}))
    assert "promoted on this batch" not in older and "After the promotion" not in older


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


def test_the_page_opens_with_the_decision_the_verdict_and_the_fired_triggers_first(toy_schema):
    from retrain.reporting.html import html_report

    page = html_report(run_record(toy_schema))
    header = page[page.index('<header class="retrain"') : page.index("</header>")]
    assert '<span class="badge retrain">Retrain</span><span class="badge promoted">promote</span>' in header
    assert '<span class="badge counted">data drift</span>' in header and "age" not in header
    assert "challenger 0.8000 against champion 0.7000" in header
    triggers = page[page.index("Why: every trigger") :]
    assert triggers.index("<td>data drift</td>") < triggers.index("<td>age</td>")
    assert '<tr class="counted"><td>data drift</td><td>fired, counted</td>' in triggers
    kept = html_report(
        run_record(toy_schema, decision={"as_of": "2025-07", "retrain": False, "triggers": []})
    )
    assert '<header class="keep"' in kept and "no trigger fired" in kept


def test_each_feature_shows_its_distribution_against_the_reference_drifted_first(toy_schema):
    import re

    from retrain.reporting.html import html_report

    page = html_report(run_record(toy_schema))
    assert page.index('id="dist-x1"') < page.index('id="dist-colour"')
    numbers, categories = svg_of(page, "dist-x1"), svg_of(page, "dist-colour")
    for label in ("≤ 1.5", "1.5–20,000", "&gt; 20,000", "missing", "PSI 0.500 (drifted)"):
        assert label in numbers, label
    for label in ("blue", "red", "teal", "PSI 0.010 (quiet)", "newest batch"):
        assert label in categories, label
    assert re.search(r"v1\.0\.0(&#39;|&#x27;|')s reference", categories)
    quality = page[page.index("<h3>Data quality</h3>") :]
    assert "<td>colour</td><td>0.0%</td><td>0.0%</td><td>–</td><td>teal (13.3%)</td>" in quality
    assert "<td>x1</td><td>0.0%</td><td>20.0%</td><td>20.0%</td><td>–</td>" in quality
    assert "0 duplicate rows dropped by prepare; new columns" in quality
    dropped = html_report(
        run_record(toy_schema, prepare={"duplicates_dropped": 2, "blank_labels_dropped": 31})
    )
    assert "2 duplicate rows dropped by prepare, 31 rows without a label left out; new columns" in dropped


def test_drift_over_time_marks_drifts_retrains_and_promotions(toy_schema):
    from retrain.reporting.html import html_report

    page = html_report(run_record(toy_schema))
    replay = svg_of(page, "drift-over-time")
    assert "2025-06" in replay and "2025-07" in replay and "x1" in replay
    assert "PSI (threshold 0.2)" in replay and "▼ promoted" in replay
    importance = svg_of(page, "importance")
    assert "x1" in importance and "colour" in importance
    assert "no importance recorded" in svg_of(
        html_report(run_record(toy_schema, evaluation={})), "importance"
    )


def test_words_read_like_a_person_wrote_them():
    from retrain.reporting.words import cell, number, ordered_triggers, trigger_state, trigger_value

    assert number(4e-06) == "< 0.0001" and number(-4e-06) == "-< 0.0001" and number(0.0) == "0.0000"
    assert number(1234567.0) == "1,234,567" and number(0.74253) == "0.7425"
    assert cell(None) == "–" and cell(True) == "yes" and cell(["new_category"]) == "new category"
    assert cell({"new_column": "ignore", "type_change": "stop"}) == "new column: ignore; type change: stop"
    label = {
        "name": "label_shift",
        "enabled": True,
        "fired": False,
        "value": 0.05307,
        "threshold": 0.05,
        "detail": "positive rate 0.30 vs 0.25 at training (+0.053, p=0.22, alpha 0.01)",
    }
    assert trigger_state(label) == "quiet: past the threshold, but not significant (p=0.22)"
    cold = {
        "name": "cold_start",
        "enabled": True,
        "fired": False,
        "value": True,
        "threshold": True,
        "detail": "x",
    }
    assert trigger_state(cold) == "quiet" and trigger_value(cold) == ""
    unconfirmed = {**label, "fired": True, "counted": False}
    answered = {**unconfirmed, "answered": "2025-05"}
    counted = {**label, "name": "age", "fired": True, "detail": "old"}
    off = {**label, "name": "off", "enabled": False}
    assert trigger_state(unconfirmed) == "fired, not counted: no performance loss confirms it"
    assert trigger_state(answered) == "fired, not counted: answered by a challenger that lost"
    order = ordered_triggers([off, label, unconfirmed, counted])
    assert [trigger_state(t).split(":")[0] for t in order] == [
        "fired, counted",
        "fired, not counted",
        "quiet",
        "off",
    ]


def test_metrics_files_hold_numbers_under_shared_names():
    from retrain.reporting import dvc_metrics

    scores = {
        "rows": 134,
        "positive_rate": 0.4,
        "accuracy": 0.7,
        "precision": 0.6,
        "roc_auc": 0.8,
        "brier": 0.2,
    }
    assert dvc_metrics.served({"metrics": scores}, "roc_auc") == {
        "accuracy": 0.7, "roc_auc": 0.8, "brier": 0.2, "rows": 134
    }  # fmt: skip
    assert dvc_metrics.served({"metrics": None}, "roc_auc") == {}
    assert "precision" in dvc_metrics.served({"metrics": scores}, "precision")
    decision = {"retrain": True, "fired": ["age"], "drift": [{"drifted": True}, {"drifted": False}]}
    assert dvc_metrics.decided(decision) == {"retrain": True, "fired": 1, "drifted": 1}
    verdict = {"promote": False, "champion": scores, "challenger": None}
    assert dvc_metrics.holdout(verdict, "roc_auc") == {
        "champion": {"accuracy": 0.7, "roc_auc": 0.8, "brier": 0.2, "rows": 134},
        "challenger": {"promote": False},
    }
    summary = {
        "policy": {"retrains": 3, "promotions": 2, "mean_roc_auc": 0.74, "worst_roc_auc": 0.35},
        "never": {"retrains": 0, "promotions": 0, "mean_roc_auc": None, "worst_roc_auc": None},
        "schedules": {"best_schedule": "every_2"},
    }
    assert dvc_metrics.backtest(summary, "roc_auc") == {
        "policy": {"roc_auc": 0.74, "worst_roc_auc": 0.35, "retrains": 3, "promotions": 2},
        "never": {"retrains": 0, "promotions": 0},
    }
    every = [v for row in dvc_metrics.backtest(summary, "roc_auc").values() for v in row.values()]
    assert all(isinstance(v, int | float) for v in every)


def test_the_production_history_is_what_each_period_served_read_from_git(tmp_path, monkeypatch):
    import json
    import subprocess

    from retrain.reporting.served import served_history

    def commit(evaluation, decision, message):
        (tmp_path / "reports").mkdir(exist_ok=True)
        (tmp_path / "reports/evaluation.json").write_text(json.dumps(evaluation))
        (tmp_path / "reports/decision.json").write_text(json.dumps(decision))
        subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
        subprocess.run(["git", "commit", "-qm", message], cwd=tmp_path, check=True)

    def evaluation(period, version, trained_through, auc):
        champion = version and {"version": version, "trained_through_period": trained_through}
        features = {"x": {"psi": auc / 10}} if auc else {}
        return {"as_of": period, "labelled_period": period, "champion": champion, "metrics": {"roc_auc": auc},
                "drift": {"features": features}}  # fmt: skip

    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    assert served_history(tmp_path) == []
    commit(evaluation("2025-01", None, None, None), {"as_of": "2025-01"}, "cold start")
    commit(evaluation("2025-01", "v1", "2025-01", 0.9), {"as_of": "2025-01"}, "v1 on its own holdout")
    served = {"as_of": "2025-02", "retrain": True, "drift": [{"feature": "x", "drifted": True}]}
    commit(evaluation("2025-02", "v1", "2025-01", 0.8), served, "served")
    commit(evaluation("2025-02", "v2", "2025-02", 0.95), {"as_of": "2025-02"}, "v2 on its own holdout")
    current = (evaluation("2025-03", "v2", "2025-02", 0.85), {"as_of": "2025-03", "retrain": False})
    history = served_history(tmp_path, current)
    assert [(p.period, p.version, p.realised["roc_auc"]) for p in history] == [
        ("2025-02", "v1", 0.8),
        ("2025-03", "v2", 0.85),
    ]
    assert history[0].retrain and history[0].drifted == ("x",) and history[0].psi == {"x": 0.08}
    assert served_history(tmp_path.parent) == []  # not a git repository


def test_every_chart_draws_inside_its_canvas_and_no_shape_has_a_negative_size(toy_schema):
    import re

    from retrain.reporting.html import html_report

    page = html_report(run_record(toy_schema))
    for chart in charts_of(page):
        picture = svg_of(page, chart)
        width, height = (float(v) for v in re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', picture).groups())
        for rect in re.findall(r"<rect [^>]*>", picture):
            size = {k: float(v) for k, v in re.findall(r'\b(x|y|width|height)="(-?[\d.]+)"', rect)}
            assert size["width"] >= 0 and size["height"] >= 0, (chart, rect)
            assert size.get("x", 0) >= 0 and size.get("x", 0) + size["width"] <= width + 0.1, (chart, rect)
            assert size.get("y", 0) >= 0 and size.get("y", 0) + size["height"] <= height + 0.1, (chart, rect)
        for x, y in re.findall(r'<text x="(-?[\d.]+)" y="(-?[\d.]+)"', picture):
            assert 0 <= float(x) <= width and 0 <= float(y) <= height, (chart, x, y)
        assert_left_aligned_text_ends_inside(picture, width)


def assert_left_aligned_text_ends_inside(picture: str, width: float) -> None:
    """Legends and notes written from their left end stop inside the canvas."""
    import re
    from html import unescape

    from retrain.reporting.svg import text_width

    starts = r'<text x="([\d.]+)" y="[\d.]+" font-size="(\d+)" text-anchor="start" >([^<]*)</text>'
    for x, size, text in re.findall(starts, picture):
        assert float(x) + text_width(unescape(text), int(size)) <= width + 1, text


def test_charts_over_a_long_weekly_history_keep_their_width_and_write_labels_that_stand_apart():
    import re

    import pandas as pd

    from retrain.reporting import charts, svg

    weeks = [f"{d:%Y-%m-%d}" for d in pd.date_range("1996-05-06", periods=135, freq="7D")]
    drift = pd.DataFrame(
        [
            {"period": w, "feature": f, "psi": 0.1 * (i % 5), "drifted": i % 7 == 0, "retrained": i % 3 == 0,
             "promoted": i % 6 == 0}
            for i, w in enumerate(weeks)
            for f in ("nsw price", "transfer")
        ]
    )  # fmt: skip
    served = pd.DataFrame({"period": weeks, "policy": 0.8, "never": 0.6, "every_batch": 0.85}).assign(
        policy_retrained=[int(i % 3 == 0) for i in range(135)],
        policy_promoted=[int(i % 6 == 0) for i in range(135)],
    )
    history = pd.DataFrame({"period": weeks, "version": "v1.0.0", "realised": 0.8, "estimated": None})
    for picture in (
        charts.drift_over_time(drift, "drift", 0.2).decode(),
        charts.served_history(served, "roc_auc").decode(),
        charts.production_history(history, "roc_auc").decode(),
    ):
        width = float(re.search(r'viewBox="0 0 ([\d.]+) ', picture).group(1))
        assert width <= svg.WIDEST, width
        labels = re.findall(r'<text x="([\d.]+)" [^>]*rotate\(-45[^>]*>(\d{4}-\d\d-\d\d)</text>', picture)
        xs = [float(x) for x, _ in labels]
        assert 10 <= len(labels) < len(weeks) and labels[-1][1] == weeks[-1], len(labels)
        assert min(b - a for a, b in zip(xs, xs[1:], strict=False)) >= svg.SLANTED_GAP - 0.1
        assert 'font-size="11"' in picture and not re.search(r'font-size="[0-8]"', picture)
        assert_left_aligned_text_ends_inside(picture, width)


def test_axis_ticks_are_round_cover_the_values_and_never_use_an_exponent():
    from retrain.reporting.svg import nice_ticks, tick_label

    for low, high in [(0.0, 1.0), (0.61, 0.83), (-0.013, 0.2), (0.0, 0.00042), (3.0, 3.0), (0.0, 12_345.0)]:
        ticks = nice_ticks(low, high)
        assert ticks[0] <= low and ticks[-1] >= high and 2 <= len(ticks) <= 6, (low, high, ticks)
        steps = {round(b - a, 12) for a, b in zip(ticks, ticks[1:], strict=False)}
        assert len(steps) == 1, ticks
        labels = [tick_label(t, ticks) for t in ticks]
        assert len(set(labels)) == len(labels) and not any("e" in label for label in labels), labels
    assert [tick_label(t, [0.7, 0.75, 0.8]) for t in (0.7, 0.75, 0.8)] == ["0.70", "0.75", "0.80"]
    single = nice_ticks(0.8, 0.8)  # one served value: an axis around it, not from it
    assert single[0] < 0.8 < single[-1] and single[-1] - single[0] < 0.5, single


def test_a_line_is_broken_where_a_value_is_missing_and_colours_follow_their_scale():
    import math

    from retrain.reporting.svg import BLUES, Canvas, Plot, colour_at

    plot = Plot(Canvas(200, 100), left=0, top=0, width=200, height=100, x_range=(0, 4), y_range=(0, 1))
    plot.line([0, 1, 2, 3, 4], [0.1, 0.2, math.nan, 0.4, 0.5], "#000")
    lines = [p for p in plot.canvas.parts if p.startswith("<polyline")]
    assert len(lines) == 2 and all(line.count(",") == 2 for line in lines)
    assert colour_at(BLUES, 0.0) == BLUES[0] and colour_at(BLUES, 1.0) == BLUES[-1]
    assert colour_at(BLUES, 0.5) == BLUES[4] and colour_at(BLUES, 7.0) == BLUES[-1]
