"""The real history of production, read back from the committed reports of earlier periods
(git, not re-computed): per period, the champion that served it, its realised and estimated
metrics, each feature's drift and the decision taken."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrain.data.files import loads_json
from retrain.errors import DataError, RegistryError
from retrain.records import Decision
from retrain.registry.git import git

EVALUATION = "reports/evaluation.json"
DECISION = "reports/decision.json"


@dataclass(frozen=True)
class ServedPeriod:
    """One period as production saw it before anything was promoted on it."""

    period: str
    version: str
    labelled_period: str | None
    realised: dict[str, Any] | None
    estimated: dict[str, Any] | None
    psi: dict[str, float] = field(default_factory=dict)
    drifted: tuple[str, ...] = ()
    retrain: bool = False


def committed_records(root: str | Path, limit: int) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(evaluation, decision) of the newest `limit` commits that changed the evaluation, oldest
    first; empty outside a git repository."""
    try:
        commits = git(root, "log", f"-n{limit}", "--format=%H", "--", EVALUATION).split()[::-1]
        if not commits:
            return []
        wanted = "".join(f"{c}:{EVALUATION}\n{c}:{DECISION}\n" for c in commits)
        out = subprocess.run(
            ["git", "cat-file", "--batch"], cwd=root, input=wanted.encode(), capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError, RegistryError):
        return []
    blobs: list[dict[str, Any] | None] = []
    at = 0
    while at < len(out):
        end = out.index(b"\n", at)
        header = out[at:end].split()
        if header[-1] == b"missing":
            blobs.append(None)
            at = end + 1
            continue
        size = int(header[2])
        body = out[end + 1 : end + 1 + size]
        at = end + 1 + size + 1
        try:
            blobs.append(loads_json(body, "a committed report"))
        except DataError:
            blobs.append(None)
    pairs = zip(blobs[0::2], blobs[1::2], strict=True)
    return [(evaluation, decision) for evaluation, decision in pairs if evaluation is not None]


def served_history(
    root: str | Path,
    current: tuple[dict[str, Any], Decision] | None = None,
    *,
    limit: int = 240,
) -> list[ServedPeriod]:
    """Per period, the first evaluation of a champion trained before it (what production
    served, not a model promoted on that batch scored on its own holdout), from the committed
    reports and then the current run's (`current`, not yet committed)."""
    records = committed_records(root, limit)
    if current is not None:
        records.append((dict(current[0]), dict(current[1])))
    served: dict[str, ServedPeriod] = {}
    for evaluation, decision in records:
        period, champion = evaluation.get("as_of"), evaluation.get("champion")
        if not period or not champion or period in served:
            continue
        if str(champion.get("trained_through_period")) >= str(period):
            continue
        decided = decision if decision and decision.get("as_of") == period else {}
        features = ((evaluation.get("drift") or {}).get("features")) or {}
        served[period] = ServedPeriod(
            period=str(period),
            version=str(champion.get("version")),
            labelled_period=evaluation.get("labelled_period"),
            realised=evaluation.get("metrics"),
            estimated=evaluation.get("estimated"),
            psi={name: float(stat["psi"]) for name, stat in features.items()},
            drifted=tuple(r["feature"] for r in decided.get("drift") or [] if r.get("drifted")),
            retrain=bool(decided.get("retrain")),
        )
    return [served[p] for p in sorted(served)]
