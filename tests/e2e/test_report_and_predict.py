"""What users see after a run: DVC plots, the offline report in a real browser, predict, logs."""

import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from tests import browser
from tests.helpers import ROOT, create_repo

pytestmark = pytest.mark.e2e

ARTEFACTS = Path(os.environ.get("RETRAIN_TEST_ARTEFACTS", ROOT / "test-artefacts"))
RETRAIN_EVERY_MONTH = {
    "prepare": {"window": "last_n", "window_batches": 2, "holdout_fraction": 0.5},
    "decide": {"performance": {"threshold": 0.99}},
    "simulate": {"rows_per_batch": 400, "scenarios": []},
}
PLOT_IDS = {
    "roc",
    "precision_recall",
    "confusion_holdout",
    "confusion_newest",
    "drift",
    "drift_threshold",
    "served",
    "retrains",
    "tradeoff",
}
REPORT_CHARTS = (
    "roc", "pr", "calibration", "confusion", "drift",
    "production", "drift-over-time", "importance", "history",
)  # fmt: skip
needs_browser = pytest.mark.skipif(
    not browser.chromium() and not os.environ.get("RETRAIN_REQUIRE_BROWSER"),
    reason="chromium is not installed (.ci/run installs it)",
)


def rgb_pixels(png: Path):
    """A screenshot's pixels as integers 0..255, height x width x 3."""
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(png).convert("RGB")).astype(int)


@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    """v1.0.0 in production, then a month whose challenger is compared with it."""
    repo = create_repo(tmp_path_factory.mktemp("seen") / "repo", RETRAIN_EVERY_MONTH)
    repo.first_run(months=3)
    repo.next_month()
    repo.repro()
    assert repo.json("reports/promotion.json")["challenger"] is not None
    assert repo.json("reports/promotion.json")["champion"] is not None
    return repo


@needs_browser
def test_report_opens_offline_with_every_chart_drawn(seen):
    shot = ARTEFACTS / "report.png"
    page = browser.load(seen.path / "reports/report.html", screenshot=shot)
    assert page.requests == []
    charts = re.findall(r'<figure class="chart" id="([\w-]+)"', page.dom)
    assert f'data-charts="{len(charts)}/{len(charts)}"' in page.dom  # every chart decoded and drawn
    for chart in REPORT_CHARTS:
        assert chart in charts, chart
    assert {c for c in charts if c.startswith("dist-")} == {
        f"dist-{f}" for f in seen.json("reports/evaluation.json")["drift"]["features"]
    }
    pixels = rgb_pixels(shot)
    for colour in ("#1f77b4", "#d62728"):  # champion and challenger lines
        rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
        assert ((abs(pixels - rgb)).sum(axis=-1) < 12).sum() > 200, colour


@needs_browser
def test_the_decision_is_in_the_first_screen_and_the_page_within_its_budget(seen):
    page = seen.path / "reports/report.html"
    assert page.stat().st_size < 1_500_000  # bytes: every chart inline
    shot = ARTEFACTS / "report-first-screen.png"
    browser.load(page, screenshot=shot, size="1280,720")
    pixels = rgb_pixels(shot)

    def count(colour: str) -> int:
        rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
        return int(((abs(pixels - rgb)).sum(axis=-1) < 12).sum())

    decision = seen.json("reports/decision.json")
    assert decision["retrain"]
    assert count("#b3261e") > 2000  # the red retrain badge and border, above the fold
    narrow = ARTEFACTS / "report-narrow.png"
    browser.load(page, screenshot=narrow, size="700,720")
    pixels = rgb_pixels(narrow)
    assert count("#b3261e") > 1000  # still there on a narrow window


@needs_browser
def test_the_request_check_sees_a_page_that_loads_from_a_cdn(tmp_path):
    page = tmp_path / "cdn.html"
    page.write_text('<html><script src="https://cdn.jsdelivr.net/npm/vega@5"></script></html>')
    assert browser.load(page).requests == ["https://cdn.jsdelivr.net/npm/vega@5"]


def test_dvc_plots_show_and_diff_render_every_declared_plot(seen):
    shown = json.loads(seen.run("dvc", "plots", "show", "--json").stdout)
    assert not shown.get("errors")
    assert set(shown["data"]) == PLOT_IDS
    for plot_id, renders in shown["data"].items():
        assert renders and renders[0]["content"]["data"]["values"], plot_id
    diff = json.loads(seen.run("dvc", "plots", "diff", "HEAD", "--json").stdout)
    revisions = {r["rev"] for r in diff["data"]["roc"][0]["content"]["data"]["values"]}
    assert revisions == {"HEAD", "workspace"}


def test_predict_gives_the_probabilities_evaluate_computed(seen):
    newest = sorted((seen.path / "data/raw").glob("*.csv"))[-1]
    out = seen.retrain("predict", str(newest.relative_to(seen.path)), "-o", "scored.csv")
    assert "v1.0.0" in out.stdout
    predicted = pd.read_csv(seen.path / "scored.csv", dtype={"customer_id": str})
    evaluated = pd.read_csv(seen.path / "reports/plots/newest_champion.csv", dtype={"customer_id": str})
    assert len(evaluated) > 100
    assert list(predicted.columns) == ["customer_id", "probability", "label"]
    merged = evaluated.merge(predicted, on="customer_id", suffixes=("_evaluate", "_predict"))
    assert len(merged) == len(evaluated) == len(predicted)
    assert (merged["probability_evaluate"] == merged["probability_predict"]).all()
    assert (merged["predicted"] == merged["label"]).all()
    seen.retrain("predict", str(newest.relative_to(seen.path)), "-o", "scored.parquet")
    as_parquet = pd.read_parquet(seen.path / "scored.parquet")
    assert (as_parquet["probability"].to_numpy() == predicted["probability"].to_numpy()).all()


def test_predict_refuses_a_schema_breaking_file_with_one_line(seen):
    newest = sorted((seen.path / "data/raw").glob("*.csv"))[-1]
    broken = seen.path / "broken.csv"
    pd.read_csv(newest, dtype=str).drop(columns=["contract"]).to_csv(broken, index=False)
    refused = seen.retrain("predict", "broken.csv", "-o", "never.csv", check=False)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1
    assert "broken.csv" in refused.stderr and "'contract'" in refused.stderr
    assert not (seen.path / "never.csv").exists()


def test_log_level_sets_what_a_stage_says(seen):
    quiet = seen.run("python", "stages/decide.py", env={"RETRAIN_LOG_LEVEL": "WARNING"})
    assert quiet.stdout == quiet.stderr == ""
    chatty = seen.run("python", "stages/decide.py", env={"RETRAIN_LOG_LEVEL": "debug"})
    lines = chatty.stdout.splitlines()
    assert any(line.startswith("decide: performance_roc_auc fired") for line in lines)
    assert lines[-1].startswith("decide: done in ") and chatty.stderr == ""
    normal = seen.run("python", "stages/decide.py")
    assert "performance_roc_auc fired" not in normal.stdout and "retrain=True" in normal.stdout
    wrong = seen.run("python", "stages/decide.py", env={"RETRAIN_LOG_LEVEL": "loud"}, check=False)
    assert wrong.returncode == 1 and wrong.stderr.count("\n") == 1


def test_dvc_repro_quiet_silences_the_stages_and_verbose_makes_them_say_more(seen):
    quiet = seen.run("dvc", "repro", "-q", "-f", "-s", "decide")
    assert quiet.stdout == quiet.stderr == ""
    verbose = seen.run("dvc", "repro", "-f", "-s", "decide", "-v")
    assert "decide: performance_roc_auc fired" in verbose.stdout
    plain = seen.run("dvc", "repro", "-f", "-s", "decide")
    assert "decide: retrain=True" in plain.stdout and "performance_roc_auc fired" not in plain.stdout
    broken = seen.path / "reports/evaluation.json"
    kept = broken.read_text()
    broken.write_text("{")
    try:
        failed = seen.run("dvc", "repro", "-q", "-s", "decide", check=False)
    finally:
        broken.write_text(kept)
    assert failed.returncode != 0 and "error: reports/evaluation.json: not valid JSON" in failed.stderr
