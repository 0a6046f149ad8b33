"""The data contract params.yaml declares: the columns and their roles, the period, and the
cleaning policy. Without pandas, so that commands which only read it start fast."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from retrain.errors import DataError
from retrain.params import validated

PERIOD = "_period"


@dataclass(frozen=True)
class Schema:
    id: str
    time: str
    target: str
    positive: str
    negative: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    period: str = "M"
    time_unit: Literal["s", "ms"] | None = None  # None: dates as text; s or ms: Unix time, UTC

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Schema:
        params = validated("schema", params)
        schema = cls(
            id=params["id"],
            time=params["time"],
            target=params["target"],
            positive=str(params["positive"]),
            negative=str(params["negative"]),
            numeric=tuple(params["numeric"]),
            categorical=tuple(params["categorical"]),
            period=params["period"],
            time_unit=params["time_unit"],
        )
        names = [schema.id, schema.time, schema.target, *schema.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise DataError(f"params.yaml: schema names a column twice: {', '.join(dupes)}")
        if PERIOD in names:
            raise DataError(f"params.yaml: column name {PERIOD!r} is reserved")
        if not schema.features:
            raise DataError("params.yaml: schema declares no numeric or categorical feature")
        if schema.positive == schema.negative:
            raise DataError("params.yaml: schema.positive and schema.negative must differ")
        return schema

    @property
    def features(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)

    @property
    def required(self) -> tuple[str, ...]:
        return (self.id, self.time, *self.features)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "target": self.target,
            "positive": self.positive,
            "negative": self.negative,
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "period": self.period,
        }


@dataclass(frozen=True)
class CleaningPolicy:
    """What to do with values that are not clean numbers, impossible values, blank features,
    duplicated ids, and batches too large to read."""

    blank_numeric: str = "missing"  # missing | error
    text_numeric: str = "parse"  # parse | error  ("1,234", " 12.5 ")
    unparseable_numeric: str = "error"  # error | missing
    duplicates: str = "keep_last"  # keep_last | error
    all_blank: str = "error"  # error | keep: a feature blank in every row
    blank_label: str = "error"  # error | drop: a blank label in a batch labelled elsewhere
    out_of_bounds: str = "error"  # error | missing: outside `bounds`
    bounds: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    max_batch_mb: float = 2048.0

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> CleaningPolicy:
        params = validated("prepare.cleaning", params)
        bounds = {str(column): (low, high) for column, (low, high) in params.pop("bounds").items()}
        return cls(**params, bounds=bounds)
