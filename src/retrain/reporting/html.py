"""The self-contained HTML page of a run, for a person deciding whether to trust it: the
decision and verdict first, why (every trigger), champion against challenger, what changed in
the data (distributions, quality), drift and performance over time, importance, and the policy
against fixed schedules. Charts are inline SVG images; nothing is loaded from elsewhere."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from html import escape
from typing import Any

import pandas as pd

from retrain.data.schema import MISSING, Schema
from retrain.monitor.triggers import DRIFT_PLOT_COLUMNS
from retrain.monitor.triggers import drift_plot as drift_plot_rows
from retrain.params import METRICS
from retrain.records import Decision, Pointer, Promotion
from retrain.reporting.markdown import tuning_sentence
from retrain.reporting.served import ServedPeriod
from retrain.reporting.words import (
    NOTHING,
    cell,
    name,
    number,
    ordered_triggers,
    trigger_kind,
    trigger_state,
    trigger_threshold,
    trigger_value,
)

SHOWN_DISTRIBUTIONS = 6


@dataclass
class Deciding:
    """The records of the run that decided: the decision, the evaluation it read, the verdict,
    and both models' holdout curves and scores."""

    decision: Decision
    evaluation: dict[str, Any]
    promotion: Promotion
    curves: dict[str, dict[str, pd.DataFrame | None]] = field(default_factory=dict)
    holdout_scores: dict[str, pd.DataFrame | None] = field(default_factory=dict)


@dataclass
class RunRecord:
    """What the HTML report shows, as the stages wrote it. `decided` holds the records of the
    run that promoted the champion when that happened on this batch: the page then shows that
    decision and comparison, and the new champion's own evaluation apart."""

    run: Deciding
    pointer: Pointer
    schema: Schema
    metric: str
    prepare: dict[str, Any] = field(default_factory=dict)
    backtest: pd.DataFrame | None = None
    backtest_summary: dict[str, Any] | None = None
    against_schedules: str = ""
    replay_drift: pd.DataFrame | None = None
    production: list[ServedPeriod] = field(default_factory=list)
    challenger_importance: dict[str, float] | None = None
    decided: Deciding | None = None


def confusion_matrix(scores: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Counts of (actual, predicted) labels, negative first, zero where none."""
    labels = [schema.negative, schema.positive]
    counts = pd.crosstab(scores["actual"].astype(str), scores["predicted"].astype(str))
    return counts.reindex(index=labels, columns=labels, fill_value=0)


def promoted_on_this_batch(pointer: Pointer, decision: Decision) -> bool:
    """Whether the champion was promoted on the batch being reported: it is then scored on
    its own holdout, which describes it and proves nothing."""
    return (
        pointer.get("action") == "promote"
        and pointer.get("promoted_as_of") is not None
        and pointer.get("promoted_as_of") == decision.get("as_of")
    )


def _table(header: list[str], rows: list[list[Any]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    head = f"<thead><tr>{head}</tr></thead>" if header else ""
    body = "".join(
        (f'<tr class="{escape(classes[i])}">' if classes and classes[i] else "<tr>")
        + "".join(f"<td>{escape(v if isinstance(v, str) else cell(v))}</td>" for v in row)
        + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table>{head}<tbody>{body}</tbody></table>"


def _figure(chart_id: str, svg: bytes, caption: str) -> str:
    data = base64.b64encode(svg).decode()
    return (
        f'<figure class="chart" id="{escape(chart_id)}"><img alt="{escape(caption)}" '
        f'src="data:image/svg+xml;base64,{data}"><figcaption>{escape(caption)}</figcaption>'
        "</figure>"
    )


CSS = """:root{--red:#b3261e;--green:#1e7b34;--amber:#9a6200;--grey:#5f6368}
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:min(1400px,96vw);color:#222;
line-height:1.4}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd}
header{border-left:6px solid var(--grey);padding:.6em 1em;background:#f7f7f7}
header.retrain{border-color:var(--red)}header.keep{border-color:var(--green)}
.badge{display:inline-block;padding:.15em .6em;border-radius:1em;color:#fff;font-weight:600;
margin-right:.4em;font-size:.95em}
.badge.retrain,.badge.counted{background:var(--red)}.badge.keep,.badge.promoted{background:var(--green)}
.badge.held,.badge.uncounted{background:var(--amber)}.badge.none{background:var(--grey)}
.facts{display:flex;flex-wrap:wrap;gap:.4em 2em;margin:.6em 0 0;font-size:.95em}
.facts .k{display:block;font-size:.8em;color:#555}
.note{background:#fff8e1;border-left:4px solid var(--amber);padding:.4em .8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}th{background:#f4f4f4}
tr.counted td{background:#fde8e6}tr.uncounted td{background:#fff4dc}tr.off td{color:#888}
.charts{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
figure{margin:0;max-width:100%}figcaption{font-size:.8em;color:#555;max-width:40em}img{max-width:100%}
details summary{cursor:pointer;color:#1a5fb4;margin:.6em 0}"""


CHECK = """window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.querySelectorAll("figure.chart img"));
  var drawn = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute("data-charts", drawn.length + "/" + imgs.length);
});"""


def verdict_words(promotion: Promotion, pointer: Pointer, promoted_here: bool) -> tuple[str, str]:
    """The verdict's badge class and words."""
    if promotion.get("promote"):
        version = pointer.get("version") if promoted_here else None
        return "promoted", f"promoted {version}" if version else "promote"
    if promotion.get("challenger") is None:
        return "none", "no challenger trained"
    if promotion.get("locked"):
        return "held", "not promoted: production is pinned"
    return "held", "not promoted: the champion stays"


def header(run: RunRecord, shown: Deciding, promoted_here: bool) -> str:
    decision, promotion, pointer = shown.decision, shown.promotion, run.pointer
    retrain = bool(decision.get("retrain"))
    kind, words = verdict_words(promotion, pointer, promoted_here)
    chips = [
        f'<span class="badge {trigger_kind(t)}">{escape(name(t["name"]))}</span>'
        for t in ordered_triggers(decision.get("triggers") or [])
        if t["fired"]
    ]
    served = (shown.evaluation.get("metrics") or {}).get(run.metric)
    serving = (shown.evaluation.get("champion") or {}).get("version")
    holdout = promotion.get("holdout") or {}
    champion, challenger = promotion.get("champion") or {}, promotion.get("challenger") or {}
    facts = [
        ("newest batch", str(decision.get("as_of") or NOTHING)),
        ("in production now", f"{pointer.get('name')} {pointer.get('version') or '(none yet)'}"),
        (
            " ".join(
                filter(None, ["champion", serving, run.metric, "on", shown.evaluation.get("labelled_period")])
            ),
            NOTHING if served is None else number(served),
        ),
    ]
    if challenger:
        facts.append(
            (
                f"{run.metric} on the holdout ({holdout.get('rows', 0):,} rows)",
                f"challenger {cell(challenger.get(run.metric))} "
                + (f"against champion {cell(champion.get(run.metric))}" if champion else "(no champion yet)"),
            )
        )
    fired = " ".join(chips) if chips else "no trigger fired"
    return (
        f'<header class="{"retrain" if retrain else "keep"}" id="verdict">'
        f"<h1>Retraining run {escape(str(decision.get('as_of')))}</h1>"
        f'<p><span class="badge {"retrain" if retrain else "keep"}">'
        f"{'Retrain' if retrain else 'Keep the champion'}</span>"
        f'<span class="badge {kind}">{escape(words)}</span></p>'
        f"<p>Triggers: {fired}</p>"
        f"<p>{escape(decision.get('reason') or '')}</p>"
        f"<p>Verdict: {escape(promotion.get('reason') or '')}</p>"
        '<div class="facts">'
        + "".join(f'<div><span class="k">{escape(k)}</span>{escape(v)}</div>' for k, v in facts)
        + "</div></header>"
    )


def triggers_section(shown: Deciding) -> str:
    triggers = ordered_triggers(shown.decision.get("triggers") or [])
    classes = [kind if kind != "quiet" else "" for kind in map(trigger_kind, triggers)]
    rule = shown.decision.get("rule")
    return (
        "<h2>Why: every trigger</h2>"
        + (f"<p>Retrain when {escape(rule)}.</p>" if rule else "")
        + _table(
            ["trigger", "state", "value", "threshold", "what it measured"],
            [
                [name(t["name"]), trigger_state(t), trigger_value(t), trigger_threshold(t), t["detail"]]
                for t in triggers
            ],
            classes,
        )
    )


def comparison_section(run: RunRecord, shown: Deciding) -> str:
    from retrain.model.metrics import better_by
    from retrain.reporting import charts

    promotion = shown.promotion
    holdout = promotion.get("holdout") or {}
    champion, challenger = promotion.get("champion") or {}, promotion.get("challenger") or {}
    rows = []
    for metric in METRICS:
        a, b = champion.get(metric), challenger.get(metric)
        if a is None or b is None:
            change = NOTHING
        else:
            gain = better_by(metric, b, a)
            change = "same" if gain == 0 else f"{'better' if gain > 0 else 'worse'} by {number(abs(gain))}"
        rows.append([metric.replace("_", " "), a, b, change])
    tuned = tuning_sentence(promotion.get("challenger_tuning"))
    roles = ("champion", "challenger")
    matrices = {
        f"{role} on the holdout": confusion_matrix(frame, run.schema)
        for role, frame in shown.holdout_scores.items()
        if frame is not None and len(frame)
    }
    figures = [
        _figure(
            "roc",
            charts.curves({r: shown.curves.get(r, {}).get("roc") for r in roles}, "fpr", "tpr", "ROC", True),
            "ROC curves of champion and challenger on the same holdout",
        ),
        _figure(
            "pr",
            charts.curves(
                {r: shown.curves.get(r, {}).get("pr") for r in roles},
                "recall",
                "precision",
                "Precision-recall",
                False,
            ),
            "Precision-recall curves on the same holdout",
        ),
        _figure(
            "calibration",
            charts.calibration(dict(shown.holdout_scores), run.schema.positive),
            "Calibration: a well calibrated model's points lie on the diagonal",
        ),
        _figure(
            "confusion",
            charts.confusion(matrices, "Confusion matrices"),
            "Rows: actual label; columns: predicted label",
        ),
    ]
    return (
        f"<h2>Champion against challenger ({holdout.get('rows', 0):,} holdout rows of "
        f"{escape(str(holdout.get('period') or NOTHING))})</h2>"
        + _table(["metric", "champion", "challenger", "challenger against champion"], rows)
        + (f"<p>{escape(tuned)}</p>" if tuned else "")
        + '<div class="charts">'
        + "".join(figures)
        + "</div>"
    )


def after_promotion(run: RunRecord) -> str:
    """The new champion's evaluation on the batch it was promoted on: a description, no evidence."""
    metrics = run.run.evaluation.get("metrics") or {}
    return (
        f"<h2>After the promotion: {escape(str(run.pointer.get('version')))} on this batch</h2>"
        '<p class="note">It was promoted on this batch, so the rows it is scored on here are its own '
        "holdout and its drift reference holds this batch: these figures describe it, they are no "
        "evidence for it. The evidence is the comparison above, from the run that promoted it "
        f"(commit {escape(str(run.pointer.get('commit') or '')[:12])}).</p>"
        + _table([], [[m.replace("_", " "), metrics.get(m)] for m in METRICS if m in metrics])
    )


def quality_rows(evaluation: dict[str, Any], prepare: dict[str, Any]) -> list[list[Any]]:
    """Per feature with anything to say: missing shares (reference, newest), rows out of the
    trained range, new categories, values that did not parse."""
    changes = evaluation.get("schema_changes") or {}
    unparseable = ((prepare.get("newest_observed") or {}).get("unparseable")) or {}
    features = ((evaluation.get("drift") or {}).get("features")) or {}
    rows = []
    for feature in sorted(set(features) | set(unparseable)):
        dist = (features.get(feature) or {}).get("distribution") or {}
        ref, cur = dist.get("reference") or [], dist.get("current") or []
        if "edges" in dist:
            missing = (ref[-1], cur[-1]) if ref and cur else (0, 0)
        else:
            at = (
                (dist.get("categories") or []).index(MISSING)
                if MISSING in (dist.get("categories") or [])
                else None
            )
            missing = (ref[at], cur[at]) if at is not None else (0, 0)
        shares = [m / max(sum(c), 1) for m, c in zip(missing, (ref, cur), strict=True)]
        out = changes.get("out_of_range", {}).get(feature)
        new = changes.get("new_categories", {}).get(feature) or {}
        bad = unparseable.get(feature)
        if any(shares) or out or new or bad:
            rows.append(
                [
                    feature,
                    f"{shares[0]:.1%}",
                    f"{shares[1]:.1%}",
                    NOTHING if not out else f"{out:.1%}",
                    ", ".join(f"{k} ({v:.1%})" for k, v in new.items()) if new else NOTHING,
                    bad or NOTHING,
                ]
            )
    return rows


def unit(feature: dict[str, Any]) -> str:
    return "bin of the reference's quantiles" if "edges" in feature.get("distribution", {}) else "category"


def data_section(run: RunRecord, shown: Deciding) -> str:
    from retrain.reporting import charts

    evaluation = shown.evaluation
    features = ((evaluation.get("drift") or {}).get("features")) or {}
    drifted = {r["feature"] for r in shown.decision.get("drift") or [] if r.get("drifted")}
    order = sorted(features, key=lambda f: (f not in drifted, -float(features[f]["psi"]), f))
    version = (evaluation.get("champion") or {}).get("version") or "the champion"
    figures = [
        _figure(
            f"dist-{feature}",
            charts.distribution(
                {**features[feature], "drifted": feature in drifted}, feature, f"{version}'s reference"
            ),
            f"{feature}: share of rows per {unit(features[feature])}",
        )
        for feature in order
        if features[feature].get("distribution")
    ]
    prepare = run.prepare  # the same batch, prepared the same way, before and after a promotion
    quality = quality_rows(evaluation, prepare)
    changes = evaluation.get("schema_changes") or {}
    extra = ", ".join(changes.get("new_columns") or []) or "none"
    rows_line = (
        f"{(evaluation.get('drift') or {}).get('rows', 0):,} rows in {escape(str(evaluation.get('as_of')))}; "
        f"{cell(prepare.get('duplicates_dropped', 0))} duplicate rows dropped by prepare"
        + (
            f", {cell(prepare['blank_labels_dropped'])} rows without a label left out"
            if prepare.get("blank_labels_dropped")
            else ""
        )
        + f"; new columns: {escape(extra)}."
    )
    drift_plot = pd.DataFrame(drift_plot_rows(shown.decision), columns=DRIFT_PLOT_COLUMNS)
    return (
        f"<h2>What changed in the data: {escape(str(evaluation.get('as_of')))} against "
        f"{escape(str(version))}'s reference</h2>"
        + (
            "<p>No champion to compare with yet: distributions and drift start with the first model.</p>"
            if not figures
            else '<div class="charts">'
            + "".join(figures[:SHOWN_DISTRIBUTIONS])
            + "</div>"
            + (
                f"<details><summary>The other {len(figures) - SHOWN_DISTRIBUTIONS} features</summary>"
                '<div class="charts">' + "".join(figures[SHOWN_DISTRIBUTIONS:]) + "</div></details>"
                if len(figures) > SHOWN_DISTRIBUTIONS
                else ""
            )
        )
        + (
            _figure("drift", charts.drift_bars(drift_plot), "PSI per feature against its threshold")
            if not drift_plot.empty
            else ""
        )
        + "<h3>Data quality</h3>"
        + f"<p>{rows_line}</p>"
        + (
            _table(
                [
                    "feature",
                    "missing in the reference",
                    "missing now",
                    "outside the trained range",
                    "new categories",
                    "values that did not parse",
                ],
                quality,
            )
            if quality
            else "<p>No missing values, out-of-range values, new categories or unparseable values.</p>"
        )
    )


def production_frames(
    periods: list[ServedPeriod], metric: str, promoted_last: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The served metric per period, and the drift per feature and period, of the real history;
    a period is marked promoted when the next one was served by another version (the last one
    when `promoted_last`)."""
    promoted = [
        periods[i + 1].version != p.version if i + 1 < len(periods) else promoted_last
        for i, p in enumerate(periods)
    ]
    points = pd.DataFrame(
        [
            {
                "period": p.period,
                "version": p.version,
                "realised": (p.realised or {}).get(metric),
                "estimated": (p.estimated or {}).get(metric),
            }
            for p in periods
        ],
        columns=["period", "version", "realised", "estimated"],
    )
    drift = pd.DataFrame(
        [
            {
                "period": p.period,
                "feature": f,
                "psi": v,
                "drifted": int(f in p.drifted),
                "retrained": int(p.retrain),
                "promoted": int(promoted[i]),
            }
            for i, p in enumerate(periods)
            for f, v in p.psi.items()
        ],
        columns=["period", "feature", "psi", "drifted", "retrained", "promoted"],
    )
    return points, drift


def over_time_section(run: RunRecord, threshold: float, promoted_here: bool) -> str:
    from retrain.reporting import charts

    points, served_drift = production_frames(run.production, run.metric, promoted_here)
    figures = [
        _figure(
            "production",
            charts.production_history(points, run.metric),
            "From the committed reports of earlier periods: the realised metric on each period's "
            "labelled rows, the estimated one from the champion's own probabilities",
        )
    ]
    if points["period"].nunique() >= 2:
        figures.append(
            _figure(
                "production-drift",
                charts.drift_over_time(served_drift, "Drift over time in production", threshold),
                "PSI of each period against the reference of the champion that served it",
            )
        )
    replay = run.replay_drift if run.replay_drift is not None else pd.DataFrame()
    figures.append(
        _figure(
            "drift-over-time",
            charts.drift_over_time(replay, "Drift over time in the backtest replay", threshold),
            "The backtest replays every batch under the params policy: PSI of each batch against "
            "the reference of the model the policy had in production",
        )
    )
    return "<h2>Over time</h2>" + '<div class="charts">' + "".join(figures) + "</div>"


def importance_section(run: RunRecord, shown: Deciding) -> str:
    from retrain.reporting import charts

    values = {
        "champion": ((shown.evaluation.get("champion") or {}).get("importance")) or {},
        "challenger": run.challenger_importance or {},
    }
    return "<h2>What the models rely on</h2>" + _figure(
        "importance",
        charts.importance(values, run.metric),
        "Permutation importance, stored with each model at training",
    )


def backtest_section(run: RunRecord) -> str:
    from retrain.reporting import charts

    policies = {
        key: v for key, v in (run.backtest_summary or {}).items() if isinstance(v, dict) and "retrains" in v
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
                name(key),
                v["retrains"],
                v["promotions"],
                v.get("retrains_not_promoted"),
                v.get(f"mean_{run.metric}"),
                v.get(f"worst_{run.metric}"),
                v.get("rows_trained"),
            ]
            for key, v in policies.items()
        ],
    )
    return (
        "<h2>The policy against fixed schedules</h2>"
        + (f"<p>{escape(run.against_schedules)}</p>" if run.against_schedules else "")
        + _figure(
            "history",
            charts.served_history(run.backtest if run.backtest is not None else pd.DataFrame(), run.metric),
            "Backtest: the metric each policy served per batch",
        )
        + schedules
    )


def html_report(run: RunRecord) -> str:
    """One self-contained page: charts are inline SVG images, no script or style from elsewhere."""
    shown = run.decided or run.run
    promoted_here = promoted_on_this_batch(run.pointer, run.run.decision)
    thresholds = [float(r["psi_threshold"]) for r in shown.decision.get("drift") or []]
    threshold = max(thresholds) if thresholds else 0.2
    note = (
        '<p class="note">The champion was promoted on this batch and no record of the run that '
        "promoted it was found: the figures below score it on its own holdout and describe it, they "
        f"are no evidence for it ({escape(str(run.pointer.get('reason')))}).</p>"
        if promoted_here and run.decided is None
        else ""
    )
    body = [
        header(run, shown, promoted_here),
        note,
        triggers_section(shown),
        comparison_section(run, shown),
        after_promotion(run) if run.decided is not None else "",
        data_section(run, shown),
        over_time_section(run, threshold, promoted_here),
        importance_section(run, shown),
        backtest_section(run),
    ]
    as_of = escape(str(shown.decision.get("as_of")))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Retraining run {as_of}</title>"
        f"<style>{CSS}</style><script>{CHECK}</script></head>\n<body>\n"
        + "\n".join(part for part in body if part)
        + "\n</body></html>\n"
    )
