"""The pages in markdown: decision.md and the job's summary."""

from __future__ import annotations

from typing import Any

from retrain.params import METRICS
from retrain.records import Decision, Promotion
from retrain.reporting.words import (
    cell,
    name,
    ordered_triggers,
    trigger_state,
    trigger_threshold,
    trigger_value,
)


def tuning_sentence(tuning: dict[str, Any] | None) -> str:
    """How the challenger's hyperparameters were chosen, in words; empty when train.tune is off."""
    if not tuning:
        return ""
    if not tuning.get("tuned"):
        if (
            tuning.get("trials")
            and tuning.get("best_score") is not None
            and tuning.get("fixed_score") is not None
        ):
            return (
                f"The challenger kept the fixed hyperparameters of params.yaml: {tuning['trials']} trials "
                f"searched, the best validated {tuning['metric']} {tuning['best_score']:.4f} against "
                f"{tuning['fixed_score']:.4f}, under train.tune.min_gain."
            )
        return "The challenger was fitted with the fixed hyperparameters of params.yaml."
    fixed = tuning.get("fixed_score")
    against = "" if fixed is None else f" against {fixed:.4f} with the fixed ones"
    chosen = ", ".join(f"{k} {cell(v)}" for k, v in (tuning.get("best_hyperparameters") or {}).items())
    return (
        f"The challenger's hyperparameters were tuned: {tuning['trials']} trials, validation "
        f"{tuning['metric']} {tuning['best_score']:.4f}{against}, in {tuning['seconds']:.1f} s"
        + (f"; chosen: {chosen}." if chosen else ".")
    )


def summary_markdown(
    decision: Decision, against_schedules: str = "", tuning: dict[str, Any] | None = None
) -> str:
    """decision.md: the verdict, every trigger, the drifted features, how the challenger's
    hyperparameters were chosen, and how the params policy fared against fixed schedules in the
    backtest, readable in seconds."""
    verdict = "**Retrain**" if decision["retrain"] else "**Keep the champion**"
    lines = [
        f"# Decision as of {decision['as_of']}: {verdict}",
        "",
        f"{decision['reason']}. Retrain when {decision['rule']}.",
        "",
        "| trigger | state | value | threshold | what it measured |",
        "|---|---|---|---|---|",
    ]
    for t in ordered_triggers(decision["triggers"]):
        lines.append(
            f"| {name(t['name'])} | {trigger_state(t)} | {trigger_value(t)} | {trigger_threshold(t)} | "
            f"{t['detail']} |"
        )
    drifted = [r for r in decision.get("drift") or [] if r["drifted"]]
    if drifted:
        lines += ["", "| drifted feature | PSI | JS | test | p (adjusted) |", "|---|---|---|---|---|"]
        lines += [
            f"| {r['feature']} | {cell(r['psi'])} | {cell(r['js'])} | {r['test']} | {cell(r['p_adjusted'])} |"
            for r in drifted
        ]
    if tuning:
        lines += ["", tuning_sentence(tuning)]
    if against_schedules:
        lines += ["", f"Backtest: {against_schedules}"]
    return "\n".join(lines) + "\n"


def metrics_table(promotion: Promotion) -> list[str]:
    champion, challenger = promotion.get("champion"), promotion.get("challenger")
    if not champion and not challenger:
        return ["No model was scored on the holdout."]
    lines = ["| metric | champion | challenger |", "|---|---|---|"]
    for metric in METRICS:
        a, b = (champion or {}).get(metric), (challenger or {}).get(metric)
        lines.append(f"| {name(metric)} | {cell(a)} | {cell(b)} |")
    return lines


def job_markdown(
    decision: Decision,
    promotion: Promotion,
    champion: str | None,
    metrics_diff: str,
    against_schedules: str = "",
) -> str:
    """One markdown page a person reads after the job."""
    holdout = promotion.get("holdout") or {}
    verdict = "**promoted**" if promotion.get("promote") else "**not promoted**"
    lines = [
        summary_markdown(decision, tuning=promotion.get("challenger_tuning")).rstrip(),
        "",
        f"## Champion against challenger on the holdout ({holdout.get('rows', 0)} rows of "
        f"{holdout.get('period', '-')})",
        "",
        *metrics_table(promotion),
        "",
        f"Verdict: {verdict}: {promotion.get('reason')}.",
        "",
        f"In production after this job: {champion or 'no model'}.",
        "",
        *(
            ["## The policy against fixed schedules (backtest)", "", against_schedules, ""]
            if against_schedules
            else []
        ),
        "## Metrics against the previous commit",
        "",
        metrics_diff.strip() or "No metric changed.",
    ]
    drift = decision.get("drift") or []
    if drift:
        lines += [
            "",
            "## Drift per feature",
            "",
            "| feature | PSI | JS | test | statistic | p (adjusted) | drifted |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in sorted(drift, key=lambda r: -r["psi"]):
            lines.append(
                f"| {r['feature']} | {cell(r['psi'])} | {cell(r['js'])} | {r['test']} | "
                f"{cell(r['statistic'])} | {cell(r['p_adjusted'])} | {cell(r['drifted'])} |"
            )
    return "\n".join(lines) + "\n"
