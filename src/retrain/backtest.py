"""Replay past batches in time order under a policy, with the live stages' own functions.

At batch t the model then in production is scored on batch t (what users would have seen),
then the policy decides from batches up to t only, exactly as the live pipeline would: split,
evaluate, decide, train_challenger, compare. Baselines run on the same batches: never retrain,
retrain on every batch, retrain every k batches.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from retrain.data.files import (
    atomic_write_bytes,
    batch_stem,
    dumps_json,
    md5_bytes,
    npy_bytes,
    parquet_bytes,
    read_npy,
)
from retrain.data.schema import Batch, Schema
from retrain.data.splits import Split, ValidatedBatch, WindowPolicy, check_periods, split
from retrain.errors import TooFewRows
from retrain.model.metrics import NO_SKILL
from retrain.model.modeling import load, predict_proba
from retrain.model.partitioned_score import ScoredPart, merged_metrics, remove_spilled, scored
from retrain.model.training import Challenger, TrainingSettings, train_challenger, why_no_challenger
from retrain.model.tuning import TuneSettings, wanted
from retrain.monitor.comparison import ComparePolicy, compare, window_of
from retrain.monitor.evaluation import DomainCheck, evaluate
from retrain.monitor.triggers import decide
from retrain.params import validated
from retrain.records import Baseline, Decision, ModelMetadata, Pointer
from retrain.registry.champion import Champion
from retrain.registry.commands import held_baseline

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


@dataclass(frozen=True)
class Settings:
    """Everything a live run reads from params.yaml, gathered once."""

    schema: Schema
    window: WindowPolicy
    decide: dict[str, Any]
    compare: ComparePolicy
    training: TrainingSettings
    domain: DomainCheck = field(default_factory=DomainCheck)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Settings:
        """From the params mapping that the stages read (the stage script loads it)."""
        domain = params["evaluate"]["domain_classifier"]
        return cls(
            schema=Schema.from_params(params["schema"]),
            window=WindowPolicy.from_params(params["prepare"]),
            decide=params["decide"],
            compare=ComparePolicy.from_params(params["metrics"]["primary"], params["compare"]),
            training=TrainingSettings.from_params(params),
            domain=DomainCheck(int(domain["folds"]), int(domain["max_rows"]), int(domain["seed"])),
        )


class ModelCache:
    """Models already trained in this replay, by training window: baselines reuse them. Every
    model is kept as the live pipeline reads one back (its bytes loaded, its reference sample
    through Parquet), so a replay resumed from a checkpoint sees exactly the same champions."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.models: dict[tuple, tuple[Champion, Challenger]] = {}
        self.files = files  # model bytes by md5, for the checkpoint
        self.trained = 0
        self.hits = 0
        self.seconds: dict[str, float] = {}  # training time (search included) by model md5

    def train(
        self,
        data: Split,
        settings: Settings,
        decision: Decision,
        baseline: dict[str, Any] | None = None,
        tune: bool = False,
    ) -> tuple[Champion, Challenger]:
        """The model a live run would train on this window: with train.tune when `tune` (the
        params policy), with the params' fixed hyperparameters otherwise (the schedules)."""
        training = settings.training if tune else dataclasses.replace(settings.training, tune=TuneSettings())
        searched = training.tune.when != "never" and wanted(training.tune, decision, baseline)[0]
        key = (
            tuple(data.summary["train_periods"]),
            data.summary["train_until"],
            data.summary["train_rows"],
            searched,
        )
        if key in self.models:
            self.hits += 1
            return self.models[key]
        started = time.perf_counter()
        challenger = train_challenger(
            data.train, data.holdout, settings.schema, training, decision, baseline=baseline
        )
        self.seconds[challenger.metadata["model_md5"]] = time.perf_counter() - started
        self.trained += 1
        self.files[challenger.metadata["model_md5"]] = challenger.model_bytes
        champion = as_loaded(
            challenger.model_bytes,
            challenger.metadata,
            challenger.profile,
            parquet_bytes(challenger.reference),
            npy_bytes(challenger.trained_rows),
            fitted=challenger.model,
        )
        self.models[key] = champion, challenger
        return self.models[key]


def as_loaded(
    model_bytes: bytes,
    metadata: ModelMetadata,
    profile: dict[str, Any],
    reference: bytes,
    trained_rows: bytes,
    fitted: Pipeline | None = None,
) -> Champion:
    """A backtest champion, built from the same bytes a checkpoint stores. The model is loaded
    from `model_bytes` unless the `fitted` model they were dumped from is at hand (skops keeps
    every array exactly, so both predict the same to the bit; a resumed replay checks it)."""
    md5 = metadata["model_md5"]
    version = f"bt-{md5[:8]}"
    return Champion(
        cast(Pointer, {"version": version, "tag": version, "commit": "", "md5": md5}),
        load(model_bytes) if fitted is None else fitted,
        metadata,
        profile,
        pd.read_parquet(BytesIO(reference)),
        read_npy(trained_rows),
    )


def with_baseline(champion: Champion, baseline: Baseline | None) -> Champion:
    """The champion as the pointer names it after `retrain hold` recorded `baseline`."""
    if baseline is None:
        return champion
    return dataclasses.replace(champion, pointer={**champion.pointer, "baseline": baseline})


@dataclass(frozen=True)
class Policy:
    name: str
    kind: str  # triggers | never | every | every_k
    k: int = 1
    tune: bool = False  # searches hyperparameters as train.tune says (the params policy)


def _scored_part(
    frame: pd.DataFrame, *, first: int, spill: str | None, model: Pipeline, schema: Schema, threshold: float
) -> ScoredPart:
    labels = frame[schema.target].to_numpy().astype(np.int8)
    return scored(labels, predict_proba(model, frame, schema), threshold, spill)


def served(champion: Champion | None, batch: ValidatedBatch, settings: Settings) -> dict[str, Any] | None:
    """The metrics users saw from the model in production on this batch, scored where its
    partitions live on every row; only counts come back (model.partitioned_score)."""
    if champion is None or not batch.labelled:
        return None
    schema = settings.schema
    spills = batch.spill_paths(f"served-{uuid.uuid4().hex[:12]}")
    parts = batch.map_parts(
        _scored_part,
        [*schema.features, schema.target],
        each={"spill": spills},
        model=champion.model,
        schema=schema,
        threshold=settings.training.threshold,
    )
    try:
        return merged_metrics(parts, batch.run_tasks)
    finally:
        batch.run_tasks(remove_spilled, [{"path": path} for path in spills if path is not None])


def step(
    policy: Policy,
    t: int,
    batches: BatchSource,
    champion: Champion | None,
    settings: Settings,
    cache: ModelCache,
) -> tuple[Champion | None, dict[str, Any]]:
    """One batch of one policy: decide from the batches up to t and maybe replace the champion."""
    history = batches.history(t, settings.window)
    quiet = {"retrain": False, "promoted": False, "fired": [], "unconfirmed": [], "rows_trained": 0}
    if not any(b.labelled for b in history):
        return champion, quiet
    try:
        data = split(history, settings.schema, settings.window)
    except TooFewRows:  # too few labelled rows so far to train on: as before the first label
        return champion, quiet
    as_of = history[-1].period
    decision = cast(Decision, {"as_of": as_of, "reason": "backtest", "triggers": []})
    baseline = None
    if policy.kind == "triggers":
        record = evaluate(
            champion,
            data.newest_labelled,
            data.newest_batch.as_rows(),
            settings.schema,
            settings.training.threshold,
            observed=history[-1].observed(),
            domain=settings.domain,
            most=settings.window.max_labelled_rows,
            seed=settings.window.seed,
            window_rows=int(data.summary["train_rows"]),
        )
        decision = decide(record, settings.decide)
        baseline = record.get("baseline")
        retrain = decision["retrain"]
        quiet = {
            **quiet,
            "fired": decision["fired"],
            "unconfirmed": decision["unconfirmed"],
            "psi": {r["feature"]: r["psi"] for r in decision.get("drift") or [] if r["monitored"]},
            "drifted": [r["feature"] for r in decision.get("drift") or [] if r["drifted"]],
        }
    elif policy.kind == "never":
        retrain = champion is None
    elif policy.kind == "every":
        retrain = True
    else:
        retrain = champion is None or t % policy.k == 0
    if not retrain or why_no_challenger(
        data.train,
        settings.schema,
        holdout_rows=len(data.holdout),
        min_holdout_rows=settings.compare.min_holdout_rows if policy.kind == "triggers" else None,
    ):  # the schedules promote without compare
        return champion, quiet
    trained, challenger = cache.train(data, settings, decision, baseline, tune=policy.tune)
    tuning: dict[str, Any] = dict(challenger.metadata.get("tuning") or {}) if policy.tune else {}
    if policy.kind == "triggers":
        probabilities = {
            "champion": (
                None if champion is None else predict_proba(champion.model, data.holdout, settings.schema)
            ),
            "challenger": challenger.holdout_proba,
        }
        verdict, _ = compare(
            probabilities,
            data.holdout,
            settings.schema,
            settings.training.threshold,
            settings.compare,
            windows=(
                window_of(None if champion is None else champion.metadata),
                window_of(challenger.metadata),
            ),
        )
        promoted = bool(verdict["promote"])
        held = held_baseline(
            {
                **verdict,
                "as_of": as_of,
                "champion_version": None if champion is None else champion.pointer["version"],
                "challenger_md5": challenger.metadata["model_md5"],
                "challenger_tuning": {"tuned": bool(tuning.get("tuned"))},
                "asked_by": list(decision.get("fired") or []),
            },
            None if champion is None else champion.pointer.get("baseline"),
        )
        if champion is not None and held is not None:
            champion = with_baseline(champion, held)
    else:
        promoted = True
    row = {
        **quiet,
        "retrain": True,
        "promoted": promoted,
        "rows_trained": int(data.summary["train_rows"]),
        "model_md5": challenger.metadata["model_md5"],
    }
    if tuning:
        row["tuned"] = bool(tuning.get("tuned"))
        row["trials"] = int(tuning.get("trials", 0))
    return (trained if promoted else champion), row


def _mean(values: list[float]) -> float:
    return round(float(np.mean(values)), 6)


def summarise(rows: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """Retrains and promotions after the first model, the served metric's mean and worst, and
    the rows every retrain trained on (the cost)."""
    values = [r["served"][metric] for r in rows if r["served"] and r["served"].get(metric) is not None]
    retrains = sum(1 for r in rows[1:] if r["retrain"])
    promotions = sum(1 for r in rows[1:] if r["promoted"])
    searched = [r for r in rows if "tuned" in r]
    tuning = (
        {"tuned": sum(r["tuned"] for r in searched), "tuning_trials": sum(r["trials"] for r in searched)}
        if searched
        else {}
    )
    return tuning | {
        "retrains": retrains,
        "promotions": promotions,
        "retrains_not_promoted": retrains - promotions,
        f"mean_{metric}": _mean(values) if values else None,
        f"worst_{metric}": round(float(np.min(values)), 6) if values else None,
        "rows_trained": sum(r["rows_trained"] for r in rows),
        "batches_served": len(values),
    }


def against_schedules(
    summary: dict[str, Any],
    policies: list[Policy],
    metric: str,
    *,
    served: dict[str, list[float | None]] | None = None,
) -> dict[str, Any]:
    """Whether the params policy dominates the best fixed schedule (every k batches, for each k
    in backtest.every_k): the schedule of highest mean served metric, fewer retrains breaking a
    tie. Dominating it means a mean served metric no lower on the batches the schedule served and
    fewer retrains. A batch the schedule served and the policy had no model for counts as the
    metric's no-skill score (`NO_SKILL`: ROC AUC 0.5, what ranking every row alike scores); for
    a metric without one, the policy must have had a model on every such batch and the means are
    compared on the batches both served. `served`: each policy's metric per batch, None where
    it had no model in production (or the batch no labels)."""
    key = f"mean_{metric}"
    configured = [p.name for p in policies if p.kind == "every_k"]
    schedules = [name for name in configured if summary[name][key] is not None]
    mine = summary["policy"]
    if not schedules:
        return {
            "best_schedule": None,
            "dominates_best_schedule": None,
            "line": (
                "no fixed schedule had a model in production on a labelled batch to compare the policy with"
                if configured
                else "no fixed schedule to compare the policy with (backtest.every_k)"
            ),
        }
    best = max(schedules, key=lambda n: (summary[n][key], -summary[n]["retrains"]))
    theirs = summary[best]
    if mine[key] is None:
        return {
            "best_schedule": best,
            "dominates_best_schedule": False,
            "line": (
                f"The params policy does not dominate the best fixed schedule ({best.replace('_', ' ')} "
                "batches): it had no model in production on any labelled batch (it trains a first "
                "model once the newest labelled batch's holdout holds compare.min_holdout_rows), "
                f"against a mean served {metric} of {theirs[key]:.4f} with {theirs['retrains']} retrains."
            ),
        }
    ours, their_mean, unmatched, common = mine[key], theirs[key], 0, ""
    if served is not None:
        pairs = [(a, b) for a, b in zip(served["policy"], served[best], strict=True) if b is not None]
        both = [(a, b) for a, b in pairs if a is not None]
        missed, chance = len(pairs) - len(both), NO_SKILL.get(metric)
        gap = f" it had no model in production for {missed} of the {len(pairs)} batches the schedule served"
        if missed and chance is not None:
            ours = _mean([chance if a is None else a for a, _ in pairs])
            their_mean = _mean([b for _, b in pairs])
            common = f"{gap}, counted as {chance} (every row ranked alike); on all {len(pairs)},"
        elif missed:
            unmatched = missed
            if both:
                ours, their_mean = _mean([a for a, _ in both]), _mean([b for _, b in both])
                common = f"{gap}; on the {len(both)} both served,"
    dominates = not unmatched and ours >= their_mean and mine["retrains"] < theirs["retrains"]
    verb = "dominates" if dominates else "does not dominate"
    line = (
        f"The params policy {verb} the best fixed schedule ({best.replace('_', ' ')} "
        f"batches):{common} mean served {metric} {ours:.4f} against {their_mean:.4f}, with "
        f"{mine['retrains']} retrains against {theirs['retrains']}."
    )
    return {"best_schedule": best, "dominates_best_schedule": dominates, "line": line}


# --- batches read only when a step needs them --------------------------------------------------


class BatchSource:
    """The batches of a replay by position, in period order: each identified by a digest, read
    only when a step's window needs it and kept while later steps may need it again. A replay
    resumed after step s reads the batches from s on and the window before them, not the
    whole history."""

    def __init__(self, periods: list[str], digests: list[str], read: Callable[[int], ValidatedBatch]) -> None:
        self.periods, self.digests, self._read = periods, digests, read
        self._kept: dict[int, ValidatedBatch] = {}

    @classmethod
    def of(cls, batches: list[Batch]) -> BatchSource:
        ordered = sorted(batches, key=lambda b: b.period)
        check_periods((b.period, b.source) for b in ordered)
        return cls([b.period for b in ordered], [batch_digest(b) for b in ordered], ordered.__getitem__)

    @classmethod
    def files(cls, paths: list[Path], read: Callable[[Path], ValidatedBatch], salt: str = "") -> BatchSource:
        """Batch files (one per period, named by it); a file's digest is the md5 of its bytes
        and of `salt` (the cleaning policy, which changes what the same bytes become)."""
        check_periods((batch_stem(path), str(path)) for path in paths)
        ordered = sorted(paths, key=batch_stem)
        digests = [hashlib.md5(salt.encode() + p.name.encode() + p.read_bytes()).hexdigest() for p in ordered]
        return cls([batch_stem(p) for p in ordered], digests, lambda i: read(ordered[i]))

    def __len__(self) -> int:
        return len(self.periods)

    def batch(self, i: int) -> ValidatedBatch:
        if i not in self._kept:
            self._kept[i] = self._read(i)
        return self._kept[i]

    def history(self, t: int, window: WindowPolicy) -> list[ValidatedBatch]:
        """The batches up to t that split needs: for `last_n`, back to the n-th newest labelled
        batch (and no further); for `all`, every one. Batches older than that are let go."""
        if window.kind == "all":
            return [self.batch(i) for i in range(t + 1)]
        found, labelled = [], 0
        for i in range(t, -1, -1):
            found.append(self.batch(i))
            labelled += found[-1].labelled
            if labelled >= window.batches:
                for old in [k for k in self._kept if k < i]:
                    del self._kept[old]
                break
        return found[::-1]


# --- checkpoints: a new batch costs one replay step --------------------------------------------

CHECKPOINT_STEPS = 3  # resume points kept: the newest batches can still gain labels or change


def batch_digest(batch: Batch) -> str:
    """What identifies a batch's contribution to a replay: its period, rows and observations."""
    digest = hashlib.md5(batch.period.encode())
    digest.update(pd.util.hash_pandas_object(batch.frame, index=False).to_numpy().tobytes())
    digest.update(repr(list(batch.frame.columns)).encode())
    digest.update(json.dumps([batch.labelled, batch.observed()], sort_keys=True, default=str).encode())
    return digest.hexdigest()


def settings_digest(settings: Settings, policies: list[Policy], metric: str) -> str:
    """The params a replay reads and the package's own code: a checkpoint of another version of
    either is never resumed."""
    digest = hashlib.md5(json.dumps(_canonical(settings), sort_keys=True, default=str).encode())
    digest.update(repr((policies, metric)).encode())
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _canonical(value: Any) -> Any:
    """Dataclasses and nested mappings as plain dicts, each key read, so the digest covers every
    value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


@dataclass
class Checkpoint:
    """A replay's state after its newest steps: every policy's rows, and which model each
    policy had in production after each of the last CHECKPOINT_STEPS batches."""

    settings: str
    digests: list[str]
    rows: dict[str, list[dict[str, Any]]]
    champions: dict[int, dict[str, dict[str, Any] | None]]  # step -> policy -> md5, baseline
    models: dict[str, Champion] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def resume_point(self, settings: str, digests: list[str]) -> int | None:
        """The last step this checkpoint can resume after for these batches, if any."""
        if settings != self.settings:
            return None
        usable = [s for s in self.champions if s < len(digests) and self.digests[: s + 1] == digests[: s + 1]]
        return max(usable, default=None)


def save_checkpoint(directory: str | Path, checkpoint: Checkpoint) -> None:
    """Model files first (named by their md5), the state last, then unused models removed: a
    run killed at any point leaves the previous state readable."""
    directory = Path(directory)
    for name, data in sorted(checkpoint.files.items()):
        if not (directory / name).exists():
            atomic_write_bytes(directory / name, data)
    models = {
        md5: {"metadata": c.metadata, "profile": c.profile} for md5, c in sorted(checkpoint.models.items())
    }
    state = {
        "format": 1,
        "settings": checkpoint.settings,
        "digests": checkpoint.digests,
        "champions": {str(s): c for s, c in sorted(checkpoint.champions.items())},
        "models": models,
        "rows": checkpoint.rows,
    }
    atomic_write_bytes(directory / "state.json", dumps_json(state).encode())
    for path in directory.iterdir():
        if path.name != "state.json" and path.name not in checkpoint.files:
            path.unlink()


def read_checkpoint(directory: str | Path, settings: str | None = None) -> Checkpoint | None:
    """The saved state, with its models loaded after their md5 is checked; None when there is
    none or it cannot be used (then the replay starts from the first batch), and, without
    loading a model, when it was saved under other `settings` (settings_digest)."""
    directory = Path(directory)
    try:
        state = json.loads((directory / "state.json").read_bytes())
        if state.get("format") != 1 or (settings is not None and state.get("settings") != settings):
            return None
        files: dict[str, bytes] = {}
        models: dict[str, Champion] = {}
        for md5, record in state["models"].items():
            model = (directory / f"{md5}.skops").read_bytes()
            reference = (directory / f"{md5}.reference.parquet").read_bytes()
            rows = (directory / f"{md5}.rows.npy").read_bytes()
            if md5_bytes(model) != md5:
                return None
            files[f"{md5}.skops"], files[f"{md5}.reference.parquet"] = model, reference
            files[f"{md5}.rows.npy"] = rows
            models[md5] = as_loaded(model, record["metadata"], record["profile"], reference, rows)
        return Checkpoint(
            state["settings"],
            state["digests"],
            state["rows"],
            {int(s): c for s, c in state["champions"].items()},
            models,
            files,
        )
    except (OSError, ValueError, KeyError):
        return None


def replay(
    batches: list[Batch] | BatchSource,
    settings: Settings,
    policies: list[Policy],
    metric: str,
    progress: Callable[[str], None] | None = None,
    checkpoint: Checkpoint | None = None,
    cache: ModelCache | None = None,
) -> dict[str, Any]:
    """Per-batch rows and summary metrics for every policy, on identical batches. With a
    checkpoint of the same settings whose batches are a prefix of these, the replay resumes
    after its last matching step and gives what a replay from the first batch gives. A `cache`
    given keeps the models trained, for a caller that scores them afterwards (retrain.oracle)."""
    if cache is None:
        cache = ModelCache({})
    cache.files.update(
        {
            name.removesuffix(".skops"): data
            for name, data in (checkpoint.files if checkpoint else {}).items()
            if name.endswith(".skops")
        }
    )
    if not isinstance(batches, BatchSource):
        batches = BatchSource.of(batches)
    digests = batches.digests
    fingerprint = settings_digest(settings, policies, metric)
    results: dict[str, list[dict[str, Any]]] = {p.name: [] for p in policies}
    champions: dict[str, Champion | None] = {p.name: None for p in policies}
    history: dict[int, dict[str, Champion | None]] = {}
    start = 0
    resume = checkpoint.resume_point(fingerprint, digests) if checkpoint else None
    if checkpoint is not None and resume is not None:
        start = resume + 1
        for s, named in checkpoint.champions.items():
            if s <= resume:
                history[s] = {
                    p: None if m is None else with_baseline(checkpoint.models[m["md5"]], m["baseline"])
                    for p, m in named.items()
                }
        champions = dict(history[resume])
        results = {name: rows[:start] for name, rows in checkpoint.rows.items()}
        if progress:
            progress(
                f"resumed after {batches.periods[resume]} from the checkpoint "
                f"({start} of {len(batches)} batches replayed before)"
            )
    for t in range(start, len(batches)):
        batch = batches.batch(t)
        started = time.perf_counter()
        for policy in policies:
            seen = served(champions[policy.name], batch, settings)
            champions[policy.name], row = step(policy, t, batches, champions[policy.name], settings, cache)
            results[policy.name].append({"period": batch.period, "served": seen, **row})
        history[t] = dict(champions)
        if progress:
            marks = " ".join(f"{p.name}={'R' if results[p.name][-1]['retrain'] else '.'}" for p in policies)
            progress(f"{t + 1}/{len(batches)} {batch.period}: {marks} ({time.perf_counter() - started:.1f}s)")
    summary = {name: summarise(rows, metric) for name, rows in results.items()}
    reference = summary.get("every_batch", {}).get(f"mean_{metric}")
    for values in summary.values():
        mine = values[f"mean_{metric}"]
        values["gap_to_every_batch"] = (
            None if mine is None or reference is None else round(mine - reference, 6)
        )
    per_batch = {
        name: [r["served"].get(metric) if r["served"] else None for r in rows]
        for name, rows in results.items()
    }
    schedules = against_schedules(summary, policies, metric, served=per_batch)
    kept = {s: c for s, c in history.items() if s >= len(batches) - CHECKPOINT_STEPS}
    models = {str(c.pointer["md5"]): c for named in kept.values() for c in named.values() if c}
    files: dict[str, bytes] = {}
    for md5, champion in models.items():
        files[f"{md5}.skops"] = cache.files[md5]
        files[f"{md5}.reference.parquet"] = parquet_bytes(champion.reference)
        files[f"{md5}.rows.npy"] = npy_bytes(champion.trained_rows)
    state = Checkpoint(
        fingerprint,
        digests,
        results,
        {
            s: {
                p: None if c is None else {"md5": c.pointer["md5"], "baseline": c.pointer.get("baseline")}
                for p, c in named.items()
            }
            for s, named in kept.items()
        },
        models,
        files,
    )
    return {
        "summary": summary,
        "train_seconds": {
            name: round(sum(cache.seconds.get(r.get("model_md5", ""), 0.0) for r in rows), 3)
            for name, rows in results.items()
        },
        "schedules": schedules,
        "batches": results,
        "checkpoint": state,
        "replayed": len(batches) - start,
        "models_trained": cache.trained,
        "models_reused": cache.hits,
    }


def policies_from(params: dict[str, Any], *, tuning: bool = False) -> list[Policy]:
    """The params policy plus the baselines: never, every batch, and every k batches for each k
    of backtest.every_k (a whole number or a list of them, each at least 2). The baselines fit
    the params' fixed hyperparameters; when train.tune searches (`tuning`), the same triggers
    with fixed hyperparameters replay beside the policy as `policy_fixed`."""
    ks = validated("backtest", params)["every_k"]
    out = [Policy("policy", "triggers", tune=True)]
    out += [Policy("policy_fixed", "triggers")] if tuning else []
    out += [Policy("never", "never"), Policy("every_batch", "every")]
    return out + [Policy(f"every_{k}", "every_k", k) for k in sorted(set(ks))]


PER_BATCH = ("policy", "never", "every_batch", "best_schedule")


def per_batch_table(result: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    """One row per batch: the metric served by the policy, the baselines and the best fixed
    schedule (and, when the policy tunes, the same triggers with fixed hyperparameters), the
    policy's retrains and promotions, the triggers that counted and those that
    fired without a performance loss to confirm them."""
    best = result["schedules"]["best_schedule"]
    columns = {name: name for name in PER_BATCH[:-1]} | ({"best_schedule": best} if best else {})
    if "policy_fixed" in result["batches"]:
        columns["policy_fixed"] = "policy_fixed"
    rows = []
    for i, first in enumerate(result["batches"]["policy"]):
        row: dict[str, Any] = {"period": first["period"]}
        for column, name in columns.items():
            value = (result["batches"][name][i]["served"] or {}).get(metric)
            row[column] = "" if value is None else round(value, 6)
        policy = result["batches"]["policy"][i]
        row["policy_retrained"] = int(policy["retrain"])
        row["policy_promoted"] = int(policy["promoted"])
        row["fired"] = " ".join(policy["fired"])
        row["unconfirmed"] = " ".join(policy.get("unconfirmed", []))
        rows.append(row)
    return rows


DRIFT_HISTORY_COLUMNS = ["period", "feature", "psi", "drifted", "retrained", "promoted"]


def drift_history(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per batch and monitored feature, the PSI of the batch against the reference of the
    model the params policy had in production, whether it counted as drifted, and whether the
    policy retrained and promoted on that batch."""
    rows = []
    for row in result["batches"]["policy"]:
        drifted = set(row.get("drifted") or [])
        for feature, value in (row.get("psi") or {}).items():
            rows.append(
                {
                    "period": row["period"],
                    "feature": feature,
                    "psi": round(float(value), 6),
                    "drifted": int(feature in drifted),
                    "retrained": int(row["retrain"]),
                    "promoted": int(row["promoted"]),
                }
            )
    return rows


def backtest_lines(result: dict[str, Any], metric: str) -> list[str]:
    """reports/backtest.md: the verdict against the schedules and, when the policy searched
    hyperparameters, the same triggers with fixed hyperparameters beside it, with what each
    policy's training cost in this replay (seconds vary with the machine; trials do not)."""
    lines = [result["schedules"]["line"]]
    summary, seconds = result["summary"], result["train_seconds"]
    if "policy_fixed" in summary:
        tuned, fixed = summary["policy"], summary["policy_fixed"]
        lines.append(
            f"Tuning (train.tune): mean served {metric} {_number(tuned[f'mean_{metric}'])} with "
            f"{tuned.get('tuned', 0)} of {tuned['retrains'] + 1} fits tuned ({tuned.get('tuning_trials', 0)} "
            f"trials, {seconds['policy']:.1f} s of training), against {_number(fixed[f'mean_{metric}'])} "
            f"with fixed hyperparameters ({seconds['policy_fixed']:.1f} s)."
        )
    return lines


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def tradeoff_table(result: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    """One point per policy: retrains against the mean served metric."""
    return [
        {"policy": name, "retrains": values["retrains"], f"mean_{metric}": values[f"mean_{metric}"]}
        for name, values in result["summary"].items()
        if not name.startswith("_")
    ]
