"""The run reports: the job's markdown and the self-contained HTML page (decision, drift,
champion against challenger, metric history)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from html import escape
from typing import Any

import pandas as pd

from retrain.data.schema import Schema
from retrain.params import METRICS
from retrain.records import Decision, Pointer, Promotion
from retrain.reporting.markdown import tuning_sentence


@dataclass
class RunRecord:
    """What the HTML report shows, as the stages wrote it."""

    decision: Decision
    evaluation: dict[str, Any]
    promotion: Promotion
    pointer: Pointer
    schema: Schema
    metric: str
    curves: dict[str, dict[str, pd.DataFrame | None]] = field(default_factory=dict)
    holdout_scores: dict[str, pd.DataFrame | None] = field(default_factory=dict)
    newest_scores: pd.DataFrame | None = None
    drift: pd.DataFrame | None = None
    backtest: pd.DataFrame | None = None
    backtest_summary: dict[str, Any] | None = None
    against_schedules: str = ""


def confusion_matrix(scores: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Counts of (actual, predicted) labels, negative first, zero where none."""
    labels = [schema.negative, schema.positive]
    counts = pd.crosstab(scores["actual"].astype(str), scores["predicted"].astype(str))
    return counts.reindex(index=labels, columns=labels, fill_value=0)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    head = f"<thead><tr>{head}</tr></thead>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _figure(name: str, svg: bytes, caption: str) -> str:
    data = base64.b64encode(svg).decode()
    return (
        f'<figure class="chart" id="{name}"><img alt="{escape(caption)}" '
        f'src="data:image/svg+xml;base64,{data}"><figcaption>{escape(caption)}</figcaption>'
        "</figure>"
    )


CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}th{background:#f4f4f4}
.fired{color:#b00;font-weight:bold}.charts{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0}figcaption{font-size:.8em;color:#555}img{max-width:100%}"""


CHECK = """window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.querySelectorAll("figure.chart img"));
  var drawn = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute("data-charts", drawn.length + "/" + imgs.length);
});"""


def promoted_on_this_batch(pointer: Pointer, decision: Decision) -> bool:
    """Whether the champion was promoted on the batch being reported: it is then scored on
    its own holdout, which describes it and proves nothing."""
    return (
        pointer.get("action") == "promote"
        and pointer.get("promoted_as_of") is not None
        and pointer.get("promoted_as_of") == decision.get("as_of")
    )


def html_report(run: RunRecord) -> str:
    """One self-contained page: charts are inline SVG images, no script or style from elsewhere."""
    from retrain.reporting import charts

    decision, promotion, pointer = run.decision, run.promotion, run.pointer
    verdict = "promote" if promotion.get("promote") else "keep the champion"
    metrics = run.evaluation.get("metrics") or {}
    own = promoted_on_this_batch(pointer, decision)
    note = (
        (
            f"{pointer.get('version')} was promoted on this batch: the champion figures below "
            "score it on its own holdout and compare it with a reference that holds this batch, "
            "so they describe it, they are no evidence for it; the comparison that promoted it "
            f"is in the job's summary and in the commit that registered it ({pointer.get('reason')})"
        )
        if own
        else None
    )
    tuned = tuning_sentence(promotion.get("challenger_tuning"))
    summary = _table(
        [],
        [
            ["newest batch", decision.get("as_of")],
            ["model in production", f"{pointer.get('name')} {pointer.get('version') or '(none yet)'}"],
            [f"champion {run.metric} on newest labelled rows", metrics.get(run.metric)],
            ["decision", decision.get("reason")],
            ["verdict", f"{verdict}: {promotion.get('reason')}"],
            *([["hyperparameters", tuned]] if tuned else []),
            *([["note", note]] if note else []),
        ],
    )
    triggers = _table(
        ["trigger", "fired", "counted", "value", "threshold", "detail"],
        [
            [
                t["name"],
                t["fired"],
                t.get("counted", t["fired"]),
                t.get("value"),
                t.get("threshold"),
                t.get("detail"),
            ]
            for t in decision.get("triggers") or []
        ],
    )
    policies = {
        name: v for name, v in (run.backtest_summary or {}).items() if isinstance(v, dict) and "retrains" in v
    }
    schedules = _table(
        [
            "policy",
            "retrains",
            "promoted",
            "not promoted",
            f"mean {run.metric}",
            f"worst {run.metric}",
            "rows trained",
        ],
        [
            [
                name.replace("_", " "),
                v["retrains"],
                v["promotions"],
                v.get("retrains_not_promoted"),
                v.get(f"mean_{run.metric}"),
                v.get(f"worst_{run.metric}"),
                v.get("rows_trained"),
            ]
            for name, v in policies.items()
        ],
    )
    drift = (
        run.drift
        if run.drift is not None
        else pd.DataFrame(columns=["feature", "psi", "psi_threshold", "p_adjusted", "drifted"])
    )
    drift_rows = [
        [
            r.feature,
            float(r.psi),  # type: ignore[arg-type]  # pandas-stubs
            float(r.psi_threshold),  # type: ignore[arg-type]  # pandas-stubs
            None if r.p_adjusted in ("", None) or pd.isna(r.p_adjusted) else float(r.p_adjusted),  # type: ignore[arg-type]  # pandas-stubs
            bool(r.drifted),
        ]
        for r in drift.itertuples(index=False)
    ]
    compared = _table(
        ["metric", "champion", "challenger"],
        [
            [name, (promotion.get("champion") or {}).get(name), (promotion.get("challenger") or {}).get(name)]
            for name in METRICS
        ],
    )
    holdout = promotion.get("holdout") or {}
    matrices = {
        f"{role} on the holdout": confusion_matrix(frame, run.schema)
        for role, frame in run.holdout_scores.items()
        if frame is not None and len(frame)
    }
    if run.newest_scores is not None and len(run.newest_scores) and not own:
        matrices[f"champion on {run.evaluation.get('labelled_period')}"] = confusion_matrix(
            run.newest_scores, run.schema
        )
    roles = ("champion", "challenger")
    figures = [
        _figure(
            "roc",
            charts.curves(
                {r: run.curves.get(r, {}).get("roc") for r in roles}, "fpr", "tpr", "ROC on the holdout", True
            ),
            "ROC curves of champion and challenger on the same holdout",
        ),
        _figure(
            "pr",
            charts.curves(
                {r: run.curves.get(r, {}).get("pr") for r in roles},
                "recall",
                "precision",
                "Precision-recall on the holdout",
                False,
            ),
            "Precision-recall curves on the same holdout",
        ),
        _figure(
            "confusion",
            charts.confusion(matrices, "Confusion matrices"),
            "Rows: actual label; columns: predicted label",
        ),
        _figure("drift", charts.drift_bars(drift), "PSI per feature; ticks mark thresholds"),
        _figure(
            "history",
            charts.served_history(run.backtest if run.backtest is not None else pd.DataFrame(), run.metric),
            "Backtest: the metric each policy served per batch; triangles mark retrains",
        ),
    ]
    body = [
        f"<h1>Retraining run: {escape(str(decision.get('as_of')))}</h1>",
        summary,
        "<h2>Decision and triggers</h2>",
        triggers,
        f"<h2>Champion against challenger ({holdout.get('rows', 0)} holdout rows of "
        f"{escape(str(holdout.get('period', '-')))})</h2>",
        compared,
        '<div class="charts">',
        *figures[:3],
        "</div>",
        "<h2>Drift</h2>",
        figures[3],
        _table(["feature", "PSI", "PSI threshold", "p (adjusted)", "drifted"], drift_rows),
        "<h2>Metric history</h2>",
        figures[4],
        "<h2>The policy against fixed schedules</h2>",
        f"<p>{escape(run.against_schedules)}</p>" if run.against_schedules else "",
        schedules,
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Retraining run {escape(str(decision.get('as_of')))}</title>"
        f"<style>{CSS}</style><script>{CHECK}</script></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
