"""The job report: decision, drift, champion against challenger, verdict, metrics diff."""

from __future__ import annotations

from typing import Any

from .metrics import METRICS
from .triggers import summary_markdown


def metrics_table(promotion: dict[str, Any]) -> list[str]:
    champion, challenger = promotion.get("champion"), promotion.get("challenger")
    if not champion and not challenger:
        return ["No model was scored on the holdout."]
    lines = ["| metric | champion | challenger |", "|---|---|---|"]
    for name in METRICS:
        a = (champion or {}).get(name)
        b = (challenger or {}).get(name)
        lines.append(f"| {name} | {'-' if a is None else f'{a:.4f}'} | "
                     f"{'-' if b is None else f'{b:.4f}'} |")
    return lines


def job_markdown(decision: dict[str, Any], promotion: dict[str, Any], champion: str | None,
                 metrics_diff: str) -> str:
    """One markdown page a person reads after the job."""
    holdout = promotion.get("holdout") or {}
    verdict = "**promoted**" if promotion.get("promote") else "**not promoted**"
    lines = [summary_markdown(decision).rstrip(), "",
             f"## Champion against challenger on the holdout ({holdout.get('rows', 0)} rows of "
             f"{holdout.get('period', '-')})", "", *metrics_table(promotion), "",
             f"Verdict: {verdict}: {promotion.get('reason')}.", "",
             f"In production after this job: {champion or 'no model'}.", "",
             "## Metrics against the previous commit", "",
             metrics_diff.strip() or "No metric changed."]
    drift = decision.get("drift") or []
    if drift:
        lines += ["", "## Drift per feature", "",
                  "| feature | PSI | JS | test | statistic | p (adjusted) | drifted |",
                  "|---|---|---|---|---|---|---|"]
        for r in sorted(drift, key=lambda r: -r["psi"]):
            p = "-" if r["p_adjusted"] is None else f"{r['p_adjusted']:.2g}"
            stat = "-" if r["statistic"] is None else f"{r['statistic']:.3f}"
            lines.append(f"| {r['feature']} | {r['psi']:.3f} | {r['js']:.3f} | {r['test']} | "
                         f"{stat} | {p} | {'yes' if r['drifted'] else 'no'} |")
    return "\n".join(lines) + "\n"
