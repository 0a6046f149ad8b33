"""params.yaml: one typed model that holds the only defaults and refuses a mistake before work.

Stage scripts and CLI commands call `load`; the logic receives the validated mapping (every key
present, every value of its type) and never supplies a default of its own.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML, YAMLError

from retrain.errors import DataError

# The grammar of pandas' period frequencies, checked without importing pandas (a command that
# only reads params starts in 0.2 s, not 0.6); a value pandas still refuses is refused where
# the first period is read (schema.parse_period).
PERIOD_FREQUENCY = re.compile(r"\d*(Y|Q|M|W|D|B|h|min|s|ms|us|ns)(-[A-Z]{3})?")
FREQUENCY_EXAMPLES = "M, W, Q, Y, D, W-MON, ..."
METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "brier")
ESTIMATORS = ("logistic_regression", "random_forest", "hist_gradient_boosting")
BOOL_SPELLINGS = {
    "true": True,
    "yes": True,
    "on": True,
    "y": True,
    "false": False,
    "no": False,
    "off": False,
    "n": False,
}

Metric = Literal["accuracy", "precision", "recall", "f1", "roc_auc", "brier"]
# A guard may also watch recall at the champion's alert budget: the challenger flags as many
# holdout rows as the champion flags at metrics.threshold (monitor.comparison.compare).
Guarded = Literal[Metric, "recall_at_budget"]
Count = Annotated[StrictInt, Field(ge=0)]
Positive = Annotated[StrictInt, Field(ge=1)]


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {_described(value)}")
    return float(value)


Number = Annotated[float, BeforeValidator(_number)]
Share = Annotated[Number, Field(ge=0, le=1)]
Probability = Annotated[Number, Field(gt=0, lt=1)]


def _yes_no(value: Any) -> Any:
    """Booleans in YAML 1.1 and 1.2 spellings: `no` read by a YAML 1.2 parser is a string."""
    if isinstance(value, str) and value.strip().lower() in BOOL_SPELLINGS:
        return BOOL_SPELLINGS[value.strip().lower()]
    return value


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _booleans(cls, value: Any, info: Any) -> Any:
        field = cls.model_fields[info.field_name]
        return _yes_no(value) if field.annotation is bool else value


class Toggle(Section):
    enabled: StrictBool = True


class SchemaParams(Section):
    id: StrictStr
    time: StrictStr
    target: StrictStr
    positive: StrictStr | StrictInt | StrictBool
    negative: StrictStr | StrictInt | StrictBool
    numeric: list[StrictStr] = []
    categorical: list[StrictStr] = []
    period: StrictStr = "M"
    time_unit: Literal["s", "ms"] | None = None

    @field_validator("period")
    @classmethod
    def _frequency(cls, period: str) -> str:
        if not PERIOD_FREQUENCY.fullmatch(period):
            raise ValueError(f"{period!r} is not a pandas period frequency ({FREQUENCY_EXAMPLES})")
        return period


class RowCaps(Section):
    """Rows kept of a very large batch; null keeps every row."""

    train: Annotated[StrictInt, Field(ge=100)] | None = 300_000
    labelled: Annotated[StrictInt, Field(ge=100)] | None = 200_000


class CleaningParams(Section):
    blank_numeric: Literal["missing", "error"] = "missing"
    text_numeric: Literal["parse", "error"] = "parse"
    unparseable_numeric: Literal["error", "missing"] = "error"
    duplicates: Literal["keep_last", "error"] = "keep_last"
    all_blank: Literal["error", "keep"] = "error"
    blank_label: Literal["error", "drop"] = "error"
    out_of_bounds: Literal["error", "missing"] = "error"
    bounds: dict[StrictStr, tuple[Number | None, Number | None]] = {}
    max_batch_mb: Annotated[Number, Field(gt=0)] = 2048

    @field_validator("bounds")
    @classmethod
    def _ordered(cls, bounds: dict[str, tuple[float | None, float | None]]) -> Any:
        for column, (low, high) in bounds.items():
            if low is not None and high is not None and low > high:
                raise ValueError(f"bounds of {column!r} are inverted: low {low} > high {high}")
        return bounds


class PrepareParams(Section):
    window: Literal["all", "last_n"] = "last_n"
    window_batches: Positive = 3
    holdout_fraction: Probability = 0.4
    max_rows: RowCaps = RowCaps()
    sample_seed: Count = 0
    cleaning: CleaningParams = CleaningParams()


class MetricsParams(Section):
    primary: Metric = "roc_auc"
    threshold: Probability = 0.5


class DomainClassifierParams(Section):
    folds: Annotated[StrictInt, Field(ge=2)] = 3
    max_rows: Annotated[StrictInt, Field(ge=10)] = 1000
    seed: Count = 0


class EvaluateParams(Section):
    domain_classifier: DomainClassifierParams = DomainClassifierParams()


class PerformanceParams(Toggle):
    metric: Metric = "roc_auc"
    threshold: Number = 0.72


class PerformanceDropParams(Toggle):
    metric: Literal["roc_auc", "accuracy"] = "roc_auc"
    max_drop: Annotated[Number, Field(ge=0)] = 0.03
    alpha: Probability = 0.05


class ConfirmParams(Section):
    triggers: list[Literal["data_drift", "multivariate_drift", "label_shift", "schema_change"]] = [
        "data_drift",
        "multivariate_drift",
    ]
    metric: Metric = "roc_auc"
    min_drop: Annotated[Number, Field(ge=0)] = 0.02


class AnsweredParams(Section):
    batches: Count = 12
    triggers: list[
        Literal[
            "performance",
            "performance_drop",
            "age",
            "data_growth",
            "data_drift",
            "multivariate_drift",
            "concept_drift",
            "label_shift",
            "estimated_performance",
            "schema_change",
        ]
    ] = ["performance", "data_growth", "data_drift", "multivariate_drift", "label_shift"]


class AgeParams(Toggle):
    max_batches: Count = 12


class DataGrowthParams(Toggle):
    factor: Annotated[Number, Field(gt=1)] = 3


class FeatureDriftParams(Toggle):
    psi: Annotated[Number, Field(gt=0)] | None = None


class DataDriftParams(Toggle):
    psi: Annotated[Number, Field(gt=0)] = 0.2
    alpha: Probability = 0.01
    correction: Literal["holm", "bh"] = "holm"
    share: Share = 0.05
    features: dict[StrictStr, FeatureDriftParams] = {}


class MultivariateDriftParams(Toggle):
    auc: Annotated[Number, Field(ge=0, le=1)] = 0.7


class ShiftParams(Toggle):
    alpha: Probability = 0.01
    min_effect: Share = 0.05


class EstimatedPerformanceParams(Section):
    enabled: StrictBool = False
    metric: Metric = "roc_auc"
    threshold: Number = 0.75


class SchemaChangeParams(Toggle):
    new_column: Literal["ignore", "retrain", "stop"] = "ignore"
    type_change: Literal["ignore", "retrain", "stop"] = "stop"
    new_category: Literal["ignore", "retrain", "stop"] = "retrain"
    out_of_range: Literal["ignore", "retrain", "stop"] = "ignore"
    out_of_range_share: Share = 0.05
    new_category_share: Share = 0.05


class DecideParams(Section):
    rule: Literal["any", "at_least"] = "any"
    min_fired: Positive = 1
    min_rows: Count = 100
    cooldown: Count = 0
    force: StrictBool = False
    cold_start: Toggle = Toggle()
    performance: PerformanceParams = PerformanceParams()
    performance_drop: PerformanceDropParams = PerformanceDropParams()
    confirm: ConfirmParams = ConfirmParams()
    answered: AnsweredParams = AnsweredParams()
    age: AgeParams = AgeParams()
    data_growth: DataGrowthParams = DataGrowthParams()
    data_drift: DataDriftParams = DataDriftParams()
    multivariate_drift: MultivariateDriftParams = MultivariateDriftParams()
    concept_drift: ShiftParams = ShiftParams()
    label_shift: ShiftParams = ShiftParams(alpha=0.001)
    estimated_performance: EstimatedPerformanceParams = EstimatedPerformanceParams()
    schema_change: SchemaChangeParams = SchemaChangeParams()


class SearchRange(Section):
    """One searched hyperparameter: `choices`, or `low` to `high` (whole numbers when both are,
    on a log scale with `log: true`)."""

    low: StrictInt | Number | None = None
    high: StrictInt | Number | None = None
    log: StrictBool = False
    choices: list[StrictStr | StrictInt | Number | StrictBool | None] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SearchRange:
        if self.choices is not None:
            if self.low is not None or self.high is not None or not self.choices:
                raise ValueError("give either a non-empty choices list or low and high, not both")
            return self
        if self.low is None or self.high is None:
            raise ValueError("expected low and high (or choices)")
        if self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low above 0, got {self.low}")
        return self


Estimator = Literal["logistic_regression", "random_forest", "hist_gradient_boosting"]


class TuneParams(Section):
    when: Literal["never", "always", "on_concept_drift"] = "never"
    trials: Positive = 20
    timeout_s: Annotated[Number, Field(gt=0)] = 600.0
    seed: Count = 0
    folds: Positive = 3
    min_gain: Annotated[Number, Field(ge=0)] = 0.01
    space: dict[Estimator, dict[StrictStr, SearchRange]] = {
        "hist_gradient_boosting": {
            "learning_rate": SearchRange(low=0.01, high=0.3, log=True),
            "max_leaf_nodes": SearchRange(low=7, high=63, log=True),
            "min_samples_leaf": SearchRange(low=10, high=200, log=True),
            "l2_regularization": SearchRange(low=0.001, high=10.0, log=True),
        },
        "logistic_regression": {"C": SearchRange(low=0.001, high=100.0, log=True)},
        "random_forest": {"min_samples_leaf": SearchRange(low=1, high=50, log=True)},
    }


class TrainParams(Section):
    estimator: Estimator = "hist_gradient_boosting"
    seed: Count = 42
    logistic_regression: dict[StrictStr, Any] = {"C": 1.0, "max_iter": 2000}
    random_forest: dict[StrictStr, Any] = {"n_estimators": 200, "min_samples_leaf": 5, "n_jobs": 1}
    hist_gradient_boosting: dict[StrictStr, Any] = {
        "learning_rate": 0.05,
        "max_iter": 150,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 40,
        "l2_regularization": 1.0,
    }
    tune: TuneParams = TuneParams()


class ProfileParams(Section):
    bins: Annotated[StrictInt, Field(ge=2)] = 10
    reference_rows: Positive = 2000
    reference_periods: Positive = 1


class CompareParams(Section):
    min_improvement: Number = -0.01
    min_holdout_rows: Positive = 100  # fewer holdout rows than this: no challenger, no verdict
    guards: dict[Guarded, Annotated[Number, Field(ge=0)]] = {
        "brier": 0.01,
        "accuracy": 0.05,
        "recall_at_budget": 0.1,
    }
    minimums: dict[Metric, Number] = {"roc_auc": 0.55}


Bump = Literal["major", "minor", "patch"]


class RegistryParams(Section):
    model_name: Annotated[StrictStr, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")] = "churn-model"
    bump: Bump = "minor"
    on_schema_change: Bump = "major"


class SimulateParams(Section):
    source: StrictStr = "data/source/wa_churn.parquet"
    start: StrictStr = "2025-01"
    rows_per_batch: Positive = 500
    seed: Count = 7
    scenarios: list[dict[StrictStr, Any]] = []


class IngestParams(Section):
    query: StrictStr = "sql/batch.sql"
    connection: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_-]+$")] = "warehouse"
    grace_days: Count = 3
    start: StrictStr | None = None
    chunk_rows: Positive = 100_000


class ServeParams(Section):
    host: StrictStr = "127.0.0.1"
    port: Annotated[StrictInt, Field(ge=1, le=65535)] = 8000
    max_rows: Positive = 10_000
    max_body_mb: Annotated[Number, Field(gt=0)] = 10.0
    poll_seconds: Annotated[Number, Field(gt=0)] = 10.0


class BacktestParams(Section):
    every_k: list[Annotated[StrictInt, Field(ge=2)]] = [2, 3, 4, 6]

    @field_validator("every_k", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) and not isinstance(value, bool) else value


class Params(Section):
    schema_: SchemaParams = Field(alias="schema")
    prepare: PrepareParams = PrepareParams()
    metrics: MetricsParams = MetricsParams()
    evaluate: EvaluateParams = EvaluateParams()
    decide: DecideParams = DecideParams()
    train: TrainParams = TrainParams()
    profile: ProfileParams = ProfileParams()
    compare: CompareParams = CompareParams()
    registry: RegistryParams = RegistryParams()
    simulate: SimulateParams = SimulateParams()
    ingest: IngestParams = IngestParams()
    serve: ServeParams = ServeParams()
    backtest: BacktestParams = BacktestParams()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _columns_exist(self) -> Params:
        schema = self.schema_
        numeric, features = set(schema.numeric), {*schema.numeric, *schema.categorical}
        checks: list[tuple[str, dict[str, Any], set[str], str]] = [
            (
                "prepare.cleaning.bounds",
                self.prepare.cleaning.bounds,
                numeric,
                "a numeric column of schema.numeric",
            ),
            (
                "decide.data_drift.features",
                self.decide.data_drift.features,
                features,
                "a feature of schema.numeric or schema.categorical",
            ),
        ]
        for where, mapping, known, what in checks:
            for column in mapping:
                if column not in known:
                    raise ValueError(f"{where}.{column}: {column!r} is not {what}")
        return self


SECTIONS: dict[str, type[Section]] = {
    "schema": SchemaParams,
    "prepare": PrepareParams,
    "metrics": MetricsParams,
    "evaluate": EvaluateParams,
    "decide": DecideParams,
    "train": TrainParams,
    "profile": ProfileParams,
    "compare": CompareParams,
    "registry": RegistryParams,
    "simulate": SimulateParams,
    "backtest": BacktestParams,
    "prepare.cleaning": CleaningParams,
}


def _described(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_line(err: ValidationError, model: type[BaseModel], prefix: str, source: str) -> str:
    """The first error as `file: key = value: what was expected`, with a near spelling for a
    key that does not exist."""
    first = err.errors()[0]
    loc = [str(part) for part in first["loc"]]
    key = ".".join(([prefix] if prefix else []) + loc)
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    if first["type"] == "extra_forbidden":
        known = _known_keys(model, loc[:-1])
        near = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f"did you mean {near[0]!r}?" if near else f"expected one of {', '.join(known)}"
        return f"{source}: {key}: unknown key; {hint}{more}"
    if first["type"] == "missing":
        return f"{source}: {key} is required{more}"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"].startswith("literal_error"):
        message = "expected " + message.removeprefix("Input should be ")
    shown = "" if first["type"] == "value_error" else f" = {_described(first.get('input'))}"
    head = f"{key}{shown}: " if key else ""
    return f"{source}: {head}{message[0].lower() + message[1:]}{more}"


def _known_keys(model: type[BaseModel], path: list[str]) -> list[str]:
    for part in path:
        field = model.model_fields.get("schema_" if part == "schema" else part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return [info.alias or name for name, info in model.model_fields.items()]


def _checked(model: type[BaseModel], data: Any, prefix: str, source: str) -> dict[str, Any]:
    try:
        return model.model_validate(data).model_dump(by_alias=True)
    except ValidationError as err:
        raise DataError(_one_line(err, model, prefix, source)) from None


def validate(data: Any, source: str = "params.yaml") -> dict[str, Any]:
    """The whole params mapping, checked and completed with the model's defaults."""
    if not isinstance(data, dict):
        raise DataError(f"{source}: expected a mapping of sections")
    return _checked(Params, data, "", source)


def validated(name: str, data: Any) -> dict[str, Any]:
    """One section, checked and completed (what a logic function receives)."""
    return _checked(SECTIONS[name], data if data is not None else {}, name, "params.yaml")


def load(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read params the way DVC does (YAML 1.2: `Yes` stays a string after `dvc exp run -S`),
    then validate every section before any work."""
    path = Path(path)
    try:
        data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run from the repository root") from None
    except YAMLError as err:
        raise DataError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    return validate(data, str(path))


def section(params: dict[str, Any], name: str) -> dict[str, Any]:
    try:
        value = params[name]
    except KeyError:
        raise DataError(f"params.yaml: section {name!r} is missing") from None
    if not isinstance(value, dict):
        raise DataError(f"params.yaml: section {name!r} must be a mapping")
    return value
