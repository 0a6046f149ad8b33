"""Replay past batches in time order under a policy, with the live stages' own functions.

At batch t the model then in production is scored on batch t (what users would have seen),
then the policy decides from batches up to t only, exactly as the live pipeline would: split,
evaluate, decide, train_challenger, compare. Baselines run on the same batches: never retrain,
retrain on every batch, retrain every k batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .evaluation import DomainCheck, compare, evaluate
from .metrics import ComparePolicy, score
from .modeling import load, predict_proba
from .registry import Champion
from .schema import Batch, Schema
from .splits import Split, WindowPolicy, split
from .training import Challenger, train_challenger
from .triggers import decide


@dataclass(frozen=True)
class Settings:
    """Everything a live run reads from params.yaml, gathered once."""

    schema: Schema
    window: WindowPolicy
    decide: dict[str, Any]
    compare: ComparePolicy
    estimator: str
    hyperparameters: dict[str, Any]
    seed: int
    threshold: float
    bins: int = 10
    reference_rows: int = 2000
    reference_periods: int = 1
    domain: DomainCheck = field(default_factory=DomainCheck)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Settings:
        """From the params mapping that the stages read (the stage script loads it)."""
        train, profile = params["train"], params["profile"]
        domain = params["evaluate"]["domain_classifier"]
        estimator = str(train["estimator"])
        return cls(
            schema=Schema.from_params(params["schema"]),
            window=WindowPolicy.from_params(params["prepare"]),
            decide=params["decide"],
            compare=ComparePolicy.from_params(params["metrics"]["primary"], params["compare"]),
            estimator=estimator, hyperparameters=dict(train.get(estimator) or {}),
            seed=int(train["seed"]), threshold=float(params["metrics"]["threshold"]),
            bins=int(profile["bins"]), reference_rows=int(profile["reference_rows"]),
            reference_periods=int(profile["reference_periods"]),
            domain=DomainCheck(int(domain["folds"]), int(domain["max_rows"]), int(domain["seed"])))


@dataclass
class Trained:
    challenger: Challenger
    champion: Champion


class ModelCache:
    """Models already trained in this replay, by training window: baselines reuse them."""

    def __init__(self) -> None:
        self.models: dict[tuple, Trained] = {}
        self.hits = 0

    def train(self, data: Split, settings: Settings, as_of: str) -> Trained:
        key = (tuple(data.summary["train_periods"]), data.summary["train_until"],
               data.summary["train_rows"])
        if key in self.models:
            self.hits += 1
            return self.models[key]
        challenger = train_challenger(
            data.train, data.holdout, settings.schema, settings.estimator,
            settings.hyperparameters, settings.seed, settings.threshold,
            {"as_of": as_of, "reason": "backtest"}, settings.bins, settings.reference_rows,
            settings.reference_periods)
        version = f"bt-{len(self.models) + 1}"
        champion = Champion({"version": version, "tag": version, "commit": ""},
                            load(challenger.model_bytes), challenger.metadata, challenger.profile,
                            challenger.reference)
        self.models[key] = Trained(challenger, champion)
        return self.models[key]


@dataclass(frozen=True)
class Policy:
    name: str
    kind: str            # triggers | never | every | every_k
    k: int = 1


def served(champion: Champion | None, batch: Batch, settings: Settings) -> dict[str, Any] | None:
    """The metrics users saw from the model in production on this batch."""
    if champion is None or not batch.labelled:
        return None
    schema = settings.schema
    y = batch.frame[schema.target].to_numpy().astype(int)
    return score(y, predict_proba(champion.model, batch.frame, schema), settings.threshold)


def step(policy: Policy, t: int, batches: list[Batch], champion: Champion | None,
         settings: Settings, cache: ModelCache) -> tuple[Champion | None, dict[str, Any]]:
    """One batch of one policy: decide from batches[:t+1] and maybe replace the champion."""
    history = batches[: t + 1]
    if not any(b.labelled for b in history):
        return champion, {"retrain": False, "promoted": False, "fired": [], "rows_trained": 0}
    data = split(history, settings.schema, settings.window)
    as_of = history[-1].period
    fired: list[str] = []
    if policy.kind == "triggers":
        record = evaluate(champion, data.newest_labelled, data.newest, settings.schema,
                          settings.threshold, history[-1].observed(), settings.domain,
                          most=settings.window.max_labelled_rows, seed=settings.window.seed)
        decision = decide(record, settings.decide)
        retrain, fired = decision["retrain"], decision["fired"]
    elif policy.kind == "never":
        retrain = champion is None
    elif policy.kind == "every":
        retrain = True
    else:
        retrain = champion is None or t % policy.k == 0
    if not retrain:
        return champion, {"retrain": False, "promoted": False, "fired": fired, "rows_trained": 0}
    trained = cache.train(data, settings, as_of)
    if policy.kind == "triggers":
        probabilities = {
            "champion": champion and predict_proba(champion.model, data.holdout, settings.schema),
            "challenger": trained.challenger.holdout_proba}
        verdict, _ = compare(probabilities, data.holdout, settings.schema, settings.threshold,
                             settings.compare)
        promoted = bool(verdict["promote"])
    else:
        promoted = True
    return (trained.champion if promoted else champion), {
        "retrain": True, "promoted": promoted, "fired": fired,
        "rows_trained": int(data.summary["train_rows"])}


def summarise(rows: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    values = [r["served"][metric] for r in rows if r["served"] and r["served"].get(metric) is not None]
    retrains = sum(1 for r in rows[1:] if r["retrain"])
    return {"retrains": retrains,
            "promotions": sum(1 for r in rows[1:] if r["promoted"]),
            f"mean_{metric}": round(float(np.mean(values)), 6) if values else None,
            f"worst_{metric}": round(float(np.min(values)), 6) if values else None,
            "rows_trained": sum(r["rows_trained"] for r in rows),
            "batches_served": len(values)}


def replay(batches: list[Batch], settings: Settings, policies: list[Policy], metric: str,
           progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Per-batch rows and summary metrics for every policy, on identical batches."""
    cache = ModelCache()
    batches = sorted(batches, key=lambda b: b.period)
    results: dict[str, list[dict[str, Any]]] = {p.name: [] for p in policies}
    champions: dict[str, Champion | None] = {p.name: None for p in policies}
    for t, batch in enumerate(batches):
        started = time.perf_counter()
        for policy in policies:
            seen = served(champions[policy.name], batch, settings)
            champions[policy.name], row = step(policy, t, batches, champions[policy.name],
                                               settings, cache)
            results[policy.name].append({"period": batch.period, "served": seen, **row})
        if progress:
            marks = " ".join(f"{p.name}={'R' if results[p.name][-1]['retrain'] else '.'}"
                             for p in policies)
            progress(f"{t + 1}/{len(batches)} {batch.period}: {marks} "
                     f"({time.perf_counter() - started:.1f}s)")
    summary = {name: summarise(rows, metric) for name, rows in results.items()}
    reference = summary.get("every_batch", {}).get(f"mean_{metric}")
    for values in summary.values():
        mine = values[f"mean_{metric}"]
        values["gap_to_every_batch"] = (None if mine is None or reference is None
                                         else round(mine - reference, 6))
    summary["_models_trained"] = len(cache.models)
    summary["_models_reused"] = cache.hits
    return {"summary": summary, "batches": results}


def policies_from(params: dict[str, Any]) -> list[Policy]:
    """The params policy plus the baselines: never, every batch, and every k batches."""
    out = [Policy("policy", "triggers"), Policy("never", "never"), Policy("every_batch", "every")]
    k = int(params.get("every_k", 0) or 0)
    if k > 1:
        out.append(Policy("every_k", "every_k", k))
    return out


def per_batch_table(result: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    """One row per batch: the served metric of every policy, the policy's retrains and triggers."""
    names = list(result["batches"])
    rows = []
    for i, first in enumerate(result["batches"][names[0]]):
        row: dict[str, Any] = {"period": first["period"]}
        for name in names:
            entry = result["batches"][name][i]
            value = (entry["served"] or {}).get(metric)
            row[name] = "" if value is None else round(value, 6)
        policy = result["batches"]["policy"][i]
        row["policy_retrained"] = int(policy["retrain"])
        row["policy_promoted"] = int(policy["promoted"])
        row["fired"] = " ".join(policy["fired"])
        rows.append(row)
    return rows


def tradeoff_table(result: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    """One point per policy: retrains against the mean served metric."""
    return [{"policy": name, "retrains": values["retrains"],
             f"mean_{metric}": values[f"mean_{metric}"]}
            for name, values in result["summary"].items() if not name.startswith("_")]
