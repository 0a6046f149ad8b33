"""The records that cross a stage boundary, as they are written to JSON and read back.

Each is a TypedDict, so a record stays the plain JSON object the output contracts describe
(`reports/decision.json`, `reports/promotion.json`, `models/champion.json`, ...) while mypy checks
every key a writer sets and a reader takes. Keys a record may lack are marked `NotRequired`.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

Scores = dict[str, Any]
"""A model's metrics on labelled rows (model.metrics.score): rows, roc_auc, accuracy, ..."""


class Trigger(TypedDict):
    """One trigger in decision.json, fired or not."""

    name: str
    enabled: bool
    fired: bool
    value: Any
    threshold: Any
    detail: str
    counted: NotRequired[bool]
    answered: NotRequired[str]
    waiting: NotRequired[str]  # the period the champion was trained through, no labels newer
    p_value: NotRequired[float | None]


class Cooldown(TypedDict):
    batches: int
    champion_age: int | None
    active: bool


class Decision(TypedDict):
    """reports/decision.json: whether to retrain as of a period, and every trigger behind it."""

    retrain: bool
    as_of: str | None
    rule: str
    reason: str
    fired: list[str]
    unconfirmed: list[str]
    force: bool
    cooldown: Cooldown
    triggers: list[Trigger]
    drift: NotRequired[list[dict[str, Any]]]


class Promotion(TypedDict):
    """reports/promotion.json: champion against challenger on the same holdout."""

    promote: bool
    undecided: bool
    reason: str
    champion: Scores | None
    challenger: Scores | None
    primary: NotRequired[str]
    improvement: NotRequired[float | None]
    checks: NotRequired[list[dict[str, Any]]]
    holdout: NotRequired[dict[str, Any]]
    as_of: NotRequired[str | None]
    champion_version: NotRequired[str | None]
    champion_md5: NotRequired[str | None]
    challenger_md5: NotRequired[str | None]
    challenger_tuning: NotRequired[dict[str, Any]]
    asked_by: NotRequired[list[str]]  # the triggers that counted for the challenger's training
    locked: NotRequired[bool]


class Baseline(TypedDict):
    """What a champion scored when a challenger lost to it (registry.commands.held_baseline)."""

    version: str | None
    as_of: str | None
    metrics: Scores
    challenger_md5: str | None
    reason: str | None
    holds: int
    asked_by: NotRequired[list[str]]
    challenger_tuned: NotRequired[bool]


class Pin(TypedDict):
    """A rollback's hold on production: until `retrain unpin`, or through period `until`."""

    as_of: str | None
    reason: str
    until: str | None


class RolledBack(TypedDict):
    version: str
    md5: str
    as_of: str | None
    reason: str


class Pointer(TypedDict):
    """models/champion.json: the model in production, as the registry's tags record it."""

    name: str
    version: str | None
    tag: str | None
    commit: str | None
    path: str | None
    md5: str | None
    action: str | None
    promoted_as_of: str | None
    trained_through_period: str | None
    window: list[str] | None
    rows: int | None
    reason: str
    metrics: Scores | None
    baseline: NotRequired[Baseline]
    pinned: NotRequired[Pin]
    rolled_back: NotRequired[list[RolledBack]]
    unpinned: NotRequired[str]
    tuned: NotRequired[dict[str, Any]]


class TagRecord(TypedDict):
    """The JSON record in a version tag's message: the root of trust for that version."""

    version: str
    commit: str
    tag: str
    path: str
    md5: str
    as_of: NotRequired[str | None]
    trained_through_period: NotRequired[str]
    trained_until: NotRequired[str]
    window: NotRequired[list[str]]
    rows: NotRequired[int]
    estimator: NotRequired[str | None]
    metrics: NotRequired[Scores | None]
    schema: NotRequired[dict[str, Any] | None]
    reason: NotRequired[str]
    files: NotRequired[dict[str, str]]
    tuned: NotRequired[dict[str, Any]]


class Tuning(TypedDict):
    """A challenger's hyperparameter search (model.tuning.search), in its metadata."""

    tuned: bool
    when: str
    reason: str
    metric: str
    trials: int
    pruned: int
    stopped_by: str | None
    fixed_score: float | None
    best_score: float | None
    best_hyperparameters: dict[str, Any]
    validation: dict[str, Any]
    seconds: float


class ModelMetadata(TypedDict):
    """models/challenger/metadata.json: how the challenger was trained, or why it was not."""

    trained: bool
    as_of: str | None
    reason: str | None
    estimator: NotRequired[str]
    hyperparameters: NotRequired[dict[str, Any]]
    seed: NotRequired[int]
    schema: NotRequired[dict[str, Any]]
    window: NotRequired[dict[str, Any]]
    trained_until: NotRequired[str]
    trained_through_period: NotRequired[str]
    holdout: NotRequired[dict[str, Any]]
    model_md5: NotRequired[str]
    sklearn_version: NotRequired[str]
    tuning: NotRequired[Tuning]
    importance: NotRequired[dict[str, float]]
