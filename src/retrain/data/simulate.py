"""A seeded simulator: monthly batches drawn from real rows, with documented drift scenarios."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from retrain.data.schema import Schema
from retrain.errors import DataError
from retrain.params import validated

KINDS = ("scale", "mix", "concept", "new_category", "retype", "seasonal", "set", "noise", "snapshot")


@dataclass(frozen=True)
class Scenario:
    """One injected change, active from period `start` on (and until `end`, if given)."""

    name: str
    kind: str
    start: str
    end: str | None
    spec: dict[str, Any]

    def active(self, period: pd.Period) -> bool:
        start = pd.Period(self.start, freq=period.freq)  # type: ignore[arg-type]  # pandas-stubs
        end = pd.Period(self.end, freq=period.freq) if self.end else None  # type: ignore[arg-type]  # pandas-stubs
        return period >= start and (end is None or period <= end)


@dataclass(frozen=True)
class SimConfig:
    start: str
    rows_per_batch: int
    seed: int
    scenarios: tuple[Scenario, ...]

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> SimConfig:
        params = validated("simulate", params)
        scenarios = []
        for item in params["scenarios"]:
            item = dict(item)
            try:
                scenario = Scenario(
                    str(item.pop("name")),
                    str(item.pop("kind")),
                    str(item.pop("from")),
                    item.pop("until", None),
                    item,
                )
            except KeyError as err:
                raise DataError(f"params.yaml: simulate.scenarios: each needs {err.args[0]!r}") from None
            if scenario.kind not in KINDS:
                raise DataError(
                    f"params.yaml: simulate scenario {scenario.name!r} has kind "
                    f"{scenario.kind!r}, expected one of {', '.join(KINDS)}"
                )
            scenarios.append(scenario)
        return cls(str(params["start"]), int(params["rows_per_batch"]), int(params["seed"]), tuple(scenarios))


def _segment(frame: pd.DataFrame, where: dict[str, Any] | None) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for column, value in (where or {}).items():
        values = value if isinstance(value, list) else [value]
        mask &= frame[column].isin(values)
    return mask


def draw_rows(n_source: int, index: int, rows: int, seed: int) -> np.ndarray:
    """Source rows for the `index`-th batch: disjoint blocks of a seeded permutation per pass."""
    blocks = max(n_source // rows, 1)
    cycle, block = divmod(index, blocks)
    order = np.random.default_rng([seed, cycle]).permutation(n_source)
    return order[block * rows : (block + 1) * rows]


def simulate_batch(
    source: pd.DataFrame, schema: Schema, config: SimConfig, period: pd.Period, unlabelled: bool = False
) -> tuple[pd.DataFrame, list[str]]:
    """The batch for `period` and the names of the scenarios active in it."""
    start = pd.Period(config.start, freq=period.freq)  # type: ignore[arg-type]  # pandas-stubs
    index = (period - start).n
    if index < 0:
        raise DataError(f"period {period} is before simulate.start {config.start}")

    def rng(purpose: str) -> np.random.Generator:
        return np.random.default_rng([config.seed, index, zlib.crc32(purpose.encode())])

    rows = draw_rows(len(source), index, config.rows_per_batch, config.seed)
    frame = source.iloc[rows].copy()
    frame.insert(0, schema.id, [f"C{i:06d}" for i in rows])
    active = [s for s in config.scenarios if s.active(period)]
    for scenario in active:
        spec = scenario.spec
        if scenario.kind == "mix":
            keep = spec["keep"]
            draw = rng(scenario.name).random(len(frame))
            ratio = frame[spec["column"]].map(keep).fillna(1.0).astype(float)
            frame = frame.loc[draw < ratio.to_numpy()]
    days = (period.end_time.normalize() - period.start_time).days + 1
    offsets = rng("dates").integers(0, days, len(frame))
    if any(s.kind == "snapshot" for s in active):
        offsets = np.zeros(len(frame), dtype=int)  # one snapshot date for the whole batch
    dates = period.start_time + pd.to_timedelta(offsets, unit="D")
    for scenario in active:
        spec = scenario.spec
        seg = _segment(frame, spec.get("where"))
        if scenario.kind == "scale":
            col = spec["column"]
            frame.loc[seg, col] = (frame.loc[seg, col] * float(spec["factor"])).round(2)
        elif scenario.kind == "concept":
            negative = frame[schema.target] == schema.negative
            flip = seg & negative & (rng(scenario.name).random(len(frame)) < float(spec["flip_to_positive"]))
            frame.loc[flip, schema.target] = schema.positive
        elif scenario.kind in ("new_category", "set"):
            pick = seg & (rng(scenario.name).random(len(frame)) < float(spec["fraction"]))
            if isinstance(spec["value"], str):
                frame[spec["column"]] = frame[spec["column"]].astype(object)
            frame.loc[pick, spec["column"]] = spec["value"]
        elif scenario.kind == "seasonal":
            phase = seasonal_phase(dates, str(spec["peak"]), int(spec.get("cycle", 12)))
            for col in _columns(spec["column"]):
                frame.loc[seg, col] = (
                    frame.loc[seg, col] * (1 + float(spec.get("amplitude", 0.0)) * phase)
                ).round(2)
            flip_rate = float(spec.get("label_amplitude", 0.0)) * np.abs(phase)
            draw = rng(scenario.name).random(len(frame)) < flip_rate
            up = seg & draw & (phase > 0) & (frame[schema.target] == schema.negative)
            down = seg & draw & (phase < 0) & (frame[schema.target] == schema.positive)
            frame.loc[up, schema.target] = schema.positive
            frame.loc[down, schema.target] = schema.negative
        elif scenario.kind == "noise":
            flip = seg & (rng(scenario.name).random(len(frame)) < float(spec["fraction"]))
            positive = frame[schema.target] == schema.positive
            frame.loc[flip & positive, schema.target] = schema.negative
            frame.loc[flip & ~positive, schema.target] = schema.positive
        elif scenario.kind == "retype":
            col = spec["column"]
            mapping = {str(k): v for k, v in spec["mapping"].items()}
            text = frame[col].astype(str)
            frame[col] = text.map(mapping).where(text.isin(list(mapping)), frame[col]).astype(object)
    if schema.time_unit:
        frame.insert(
            1, schema.time, (dates - pd.Timestamp("1970-01-01")) // pd.Timedelta(1, unit=schema.time_unit)
        )
    else:
        frame.insert(1, schema.time, dates.strftime("%Y-%m-%d"))
    if unlabelled:
        frame[schema.target] = ""
    frame = frame.sort_values([schema.time, schema.id], kind="stable").reset_index(drop=True)
    return frame, [s.name for s in active]


def _columns(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def seasonal_phase(dates: pd.DatetimeIndex, peak: str, cycle: int = 12) -> np.ndarray:
    """Where each date's month sits in a cycle of `cycle` months: 1 in the peak month, -1 half
    a cycle away. Rows of one batch can sit at different points of the cycle (a yearly batch
    holds every season)."""
    months = dates.year * 12 + dates.month - 1
    top = pd.Period(peak, freq="M")
    steps = np.asarray(months) - (top.year * 12 + top.month - 1)
    return np.cos(2 * np.pi * steps / cycle)


def next_period(existing: list[str], config: SimConfig, freq: str) -> pd.Period:
    """The period after the newest existing batch, or simulate.start for an empty directory."""
    if not existing:
        return pd.Period(config.start, freq=freq)
    return max(pd.Period(p, freq=freq) for p in existing) + 1
