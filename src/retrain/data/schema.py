"""Validation and cleaning of one raw batch against the data contract (retrain.data.contract)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retrain.data.contract import PERIOD as PERIOD
from retrain.data.contract import CleaningPolicy as CleaningPolicy
from retrain.data.contract import Schema as Schema
from retrain.errors import DataError
from retrain.params import FREQUENCY_EXAMPLES

if TYPE_CHECKING:
    from retrain.engine.rows import FrameRows

MISSING = "__missing__"  # the category a missing categorical value counts as
PARALLEL_ROWS = 50_000
_UNIX_TIME = re.compile(r"^\d{9,13}(\.\d*)?$")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")


@dataclass
class Batch:
    """A validated, cleaned batch: its period, rows, and whether it carries labels."""

    period: str
    frame: pd.DataFrame
    labelled: bool
    source: str
    dropped_duplicates: int = 0
    extra_columns: list[str] = field(default_factory=list)
    unparseable: dict[str, int] = field(default_factory=dict)
    dropped_blank_labels: int = 0

    def observed(self) -> dict[str, Any]:
        """What the raw file showed beyond the schema, for evaluate's schema-change check."""
        return {"rows": self.rows, "extra_columns": self.extra_columns, "unparseable": self.unparseable}

    @property
    def rows(self) -> int:
        return len(self.frame)

    def part_rows(self) -> list[int]:
        return [len(self.frame)]

    def map_parts(
        self,
        func: Callable[..., Any],
        columns: list[str] | None,
        each: dict[str, list[Any]] | None = None,
        **kwargs: Any,
    ) -> list[Any]:
        """splits.ValidatedBatch.map_parts: the frame is the only partition."""
        mine = {name: values[0] for name, values in (each or {}).items()}
        return [func(self.frame if columns is None else self.frame[columns], first=0, **mine, **kwargs)]

    def spill_paths(self, name: str) -> list[str | None]:
        """splits.ValidatedBatch.spill_paths: in-process, nothing is spilled."""
        return [None]

    def run_tasks(self, func: Callable[..., Any], calls: list[dict[str, Any]]) -> list[Any]:
        """splits.ValidatedBatch.run_tasks: here, one call after the other."""
        return [func(**kwargs) for kwargs in calls]

    def as_rows(self) -> FrameRows:
        from retrain.engine.rows import FrameRows

        return FrameRows(self.frame)

    def take(self, positions: np.ndarray | None) -> pd.DataFrame:
        """The rows at sorted `positions`; None: the frame itself."""
        return self.frame if positions is None else self.frame.take(positions)

    def take_many(self, positions: list[np.ndarray | None]) -> list[pd.DataFrame]:
        return [self.take(p) for p in positions]


def period_name(period: pd.Period) -> str:
    """The name of a period's batch: pandas' spelling ('2025-07', '2025Q3', '2025'), or its first
    day where that spelling is a span ('2025-06-30' for the week 2025-06-30/2025-07-06)."""
    text = str(period)
    return f"{period.start_time:%Y-%m-%d}" if "/" in text else text


def parse_period(name: str, freq: str, source: str) -> pd.Period:
    """The period a name spells exactly ('2025-07' for monthly data); else one DataError."""
    try:
        example = pd.Period("2025-07-01", freq=freq)
    except ValueError:
        raise DataError(
            f"params.yaml: schema.period {freq!r} is not a pandas period frequency ({FREQUENCY_EXAMPLES})"
        ) from None
    try:
        period = pd.Period(name, freq=freq)
    except (ValueError, TypeError):
        period = None
    if period is None or period_name(period) != name:
        what = "value" if source.startswith("--") else "file name"
        expected = (
            f"a name like {period_name(example)!r}"
            if period is None
            else f"{period_name(period)!r} for the period holding {name!r}"
        )
        raise DataError(
            f"{source}: {what} {name!r} is not a period of frequency {freq!r} (expected {expected})"
        )
    return period


def first_bad(mask: pd.Series, values: pd.Series) -> str:
    """The first row `mask` marks, numbered from 1 in the batch (a partition's index starts at
    the number of rows before it), with its value."""
    pos = int(np.flatnonzero(mask.to_numpy())[0])
    value = str(values.iloc[pos])
    shown = value if len(value) <= 60 else f"{value[:57]}... ({len(value)} chars)"
    first = values.index.start if isinstance(values.index, pd.RangeIndex) else 0
    return f"row {first + pos + 1} (value {shown!r})"


def _time_expected(schema: Schema, value: Any) -> str:
    """What the time column should hold, for the error on a value that is not a time."""
    if schema.time_unit:
        unit = {"s": "seconds", "ms": "milliseconds"}[schema.time_unit]
        return f"a number of {unit} since 1970-01-01 UTC (schema.time_unit is {schema.time_unit!r})"
    if _UNIX_TIME.match(str(value).strip()):
        return "a date (for Unix time, numbers of seconds or milliseconds, set schema.time_unit: s or ms)"
    return "a date"


def _as_text(col: pd.Series) -> pd.Series:
    """Trimmed text as a nullable string column; blank becomes missing."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = col.astype("string")
    arrow = getattr(text.array, "_pa_array", None)
    if arrow is None:
        text = text.str.strip()
        return text.mask(text == "")
    trimmed = pc.utf8_trim_whitespace(arrow)  # what .str.strip() runs, without its wrapping
    trimmed = pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, trimmed.type), trimmed)
    return pd.Series(pd.arrays.ArrowStringArray(trimmed), index=col.index, name=col.name)


def _as_float(text: pd.Series) -> pd.Series:
    """Numbers parsed from text, unparseable ones missing. Arrow's parser first (ten times
    faster; it parses every number to the same double as pandas, tested); when a value does
    not parse it refuses the column, and pandas' coercing parser takes it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrow = getattr(text.array, "_pa_array", None)
    if arrow is not None and (pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type)):
        try:
            parsed = pc.cast(arrow, pa.float64()).to_numpy()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        else:
            return pd.Series(np.asarray(parsed, dtype="float64"), index=text.index)
    values = pd.to_numeric(text.astype(object), errors="coerce")
    return pd.Series(np.asarray(values, dtype="float64"), index=text.index)


def clean_numeric(col: pd.Series, name: str, policy: CleaningPolicy, source: str) -> tuple[pd.Series, int]:
    """Numbers as float64 and the count of unparseable values the policy turned missing.

    Blanks and text follow the policy; an infinity is always an error.
    """
    unparseable = 0
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        values = pd.Series(col.to_numpy(dtype="float64", na_value=np.nan), index=col.index)
        blank = values.isna()
    else:
        text = _as_text(col)
        blank = text.isna()
        if policy.text_numeric == "parse" and text.str.contains(",", regex=False).any():
            grouped = text.str.fullmatch(_THOUSANDS).fillna(False).astype(bool)
            text = text.where(~grouped, text.str.replace(",", "", regex=False))
        values = _as_float(text)
        bad = values.isna() & ~blank
        if bad.any():
            if policy.unparseable_numeric == "error":
                raise DataError(
                    f"{source}: column {name!r}, {first_bad(bad, col)}: expected a number "
                    f"({int(bad.sum())} such value(s))"
                )
            unparseable = int(bad.sum())
            blank = blank | bad
    infinite = np.isinf(values.to_numpy())
    if infinite.any():
        raise DataError(
            f"{source}: column {name!r}, {first_bad(pd.Series(infinite, index=col.index), col)}: "
            "expected a finite number"
        )
    if blank.any() and policy.blank_numeric == "error":
        raise DataError(
            f"{source}: column {name!r}, {first_bad(blank, col)}: blank value, "
            "expected a number (prepare.cleaning.blank_numeric is 'error')"
        )
    low, high = policy.bounds.get(name, (None, None))
    for limit, words in ((low, "at least"), (high, "at most")):
        if limit is None:
            continue
        outside = values < limit if words == "at least" else values > limit
        if not outside.any():
            continue
        if policy.out_of_bounds == "error":
            raise DataError(
                f"{source}: column {name!r}, {first_bad(outside, col)}: expected "
                f"{words} {limit:g} (prepare.cleaning.bounds; {int(outside.sum())} "
                "such value(s))"
            )
        values = values.mask(outside)
    return values, unparseable


def _checked_header(
    raw: pd.DataFrame, source: str, required: tuple[str, ...], rows_needed: bool = True
) -> pd.DataFrame:
    """The raw frame with trimmed column names, or one DataError about its header."""
    if raw.columns.duplicated().any():
        dup = raw.columns[raw.columns.duplicated()][0]
        raise DataError(f"{source}: column {dup!r} appears twice in the header")
    raw = raw.rename(columns=lambda c: str(c).strip())
    missing = [c for c in required if c not in raw.columns]
    if missing:
        if len(raw.columns) == 1 and ";" in raw.columns[0]:
            raise DataError(f"{source}: one column {raw.columns[0][:60]!r}: expected a comma as delimiter")
        raise DataError(
            f"{source}: missing column(s) {', '.join(map(repr, missing))} required by params.yaml schema"
        )
    if rows_needed and len(raw) == 0:
        raise DataError(f"{source}: header only, expected at least one data row")
    return raw


def _cleaned_ids(raw: pd.DataFrame, source: str, schema: Schema) -> pd.Series:
    ids = _as_text(raw[schema.id])
    if ids.isna().any():
        raise DataError(f"{source}: column {schema.id!r}, {first_bad(ids.isna(), raw[schema.id])}: blank id")
    return ids.astype(str)


def _clean_features(
    raw: pd.DataFrame, out: pd.DataFrame, source: str, schema: Schema, policy: CleaningPolicy
) -> dict[str, int]:
    """Fill `out` with the cleaned features; return per column the count of values not of its
    type: unparseable numbers, and categorical values stored as numbers, booleans or lists (a
    categorical column that arrives as integer codes is a type change, not new categories)."""
    from retrain.execution import threads

    def categorical(name: str) -> tuple[pd.Series, int]:
        column, odd = raw[name], 0
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            odd = int(column.notna().sum())
        elif column.dtype == object:
            nested = column.map(lambda v: isinstance(v, list | tuple | dict | set | np.ndarray))
            if nested.any():
                odd = int(nested.sum())
                column = column.mask(nested)
        return _as_text(column).astype("str"), odd

    # Columns in parallel for a large batch (Arrow's kernels run without the interpreter lock);
    # results, and the first error, are taken in column order, so the outcome is the sequential
    # one. A small batch (a request to the service) is cleaned in this thread.
    workers = min(threads(), len(schema.features)) if len(raw) >= PARALLEL_ROWS else 1
    with ThreadPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
        each = pool.map if pool is not None else map
        numeric = each(lambda name: clean_numeric(raw[name], name, policy, source), schema.numeric)  # type: ignore[arg-type]  # pandas-stubs
        cleaned = list(zip(schema.numeric, numeric, strict=True))
        cleaned += zip(schema.categorical, each(categorical, schema.categorical), strict=True)
    unparseable = {}
    for name, (values, odd) in cleaned:
        out[name], unparseable[name] = values, odd
    return {k: v for k, v in unparseable.items() if v}


def validate_features(raw: pd.DataFrame, source: str, schema: Schema, policy: CleaningPolicy) -> pd.DataFrame:
    """Rows to score: the id and every feature, checked and cleaned exactly as prepare does."""
    raw = _checked_header(raw, source, (schema.id, *schema.features))
    out = pd.DataFrame(index=raw.index)
    out[schema.id] = _cleaned_ids(raw, source, schema)
    _clean_features(raw, out, source, schema, policy)
    return out.reset_index(drop=True)


@dataclass
class RowChecks:
    """What the batch-wide checks read of rows validated one at a time: the labels present,
    the first blank and the first unknown label (described as in an error), each feature's
    count of present values and of values not of its type, the columns beyond the schema, and
    the positions of the rows whose label is blank where others are labelled."""

    labels: int
    blank_label: str | None
    unknown_label: str | None
    filled: dict[str, int]
    unparseable: dict[str, int]
    extra_columns: list[str]
    blank_rows: np.ndarray

    def blank_positions(self, rows: int) -> np.ndarray:
        """Positions of the rows whose label is blank, of these `rows` rows."""
        return self.blank_rows if self.labels else np.arange(rows)


@dataclass
class CleanedRows(RowChecks):
    """Rows of one batch (all of them, or one partition of them on a cluster) validated and
    cleaned row by row, not yet deduplicated."""

    frame: pd.DataFrame


def batch_period(source: str, schema: Schema, today: pd.Timestamp | None = None) -> pd.Period:
    """The period a batch file's name spells, refused when it lies in the future."""
    from retrain.data.files import batch_stem

    period = parse_period(batch_stem(source), schema.period, source)
    today = today if today is not None else pd.Timestamp.now()
    if period.start_time > today:
        raise DataError(
            f"{source}: period {period} is in the future (today is "
            f"{today:%Y-%m-%d}); expected a batch of data already observed"
        )
    return period


def validate_batch(
    raw: pd.DataFrame,
    source: str,
    schema: Schema,
    policy: CleaningPolicy,
    today: pd.Timestamp | None = None,
) -> Batch:
    """Check one raw batch against the schema and return it cleaned, or raise one DataError."""
    period = batch_period(source, schema, today)
    raw = _checked_header(raw, source, schema.required)
    ids = _cleaned_ids(raw, source, schema)
    # The duplicate check needs the ids only: it runs beside the cleaning, used where it was.
    side = ThreadPoolExecutor(1)
    try:
        duplicated = side.submit(ids.duplicated, keep="last")
        rows = clean_rows(raw, source, schema, policy, period=period, ids=ids)
        labelled = check_rows([rows], source, schema, policy)
        dupes = duplicated.result().to_numpy()
    finally:
        side.shutdown(wait=False, cancel_futures=True)
    out = rows.frame
    if dupes.any():
        first = first_bad(pd.Series(dupes, index=out.index), out[schema.id])
        refuse_duplicates(source, schema, policy, first)
    blank = np.zeros(len(out), dtype=bool)
    if labelled and policy.blank_label == "drop":
        blank[rows.blank_positions(len(out))] = True
        blank &= ~dupes
    if dupes.any() or blank.any():
        out = out.loc[~(dupes | blank)]
        refuse_no_rows_left(source, len(out))
    return Batch(
        period_name(period),
        out.reset_index(drop=True),
        labelled,
        source,
        int(dupes.sum()),
        extra_columns=rows.extra_columns,
        unparseable=rows.unparseable,
        dropped_blank_labels=int(blank.sum()),
    )


def refuse_no_rows_left(source: str, rows: int) -> None:
    """One error for a batch whose every row was dropped (a blank label, a duplicated id)."""
    if not rows:
        raise DataError(
            f"{source}: every labelled row has a later row of its id whose label is blank; "
            "expected a label for at least one id"
        )


def refuse_duplicates(source: str, schema: Schema, policy: CleaningPolicy, first: str) -> None:
    """One error for the first duplicated id (`first`, as _first_bad says it) when the policy
    refuses duplicates; else nothing (the earlier rows of an id are dropped)."""
    if policy.duplicates == "error":
        raise DataError(
            f"{source}: column {schema.id!r}, {first}: duplicated id (prepare.cleaning.duplicates is 'error')"
        )


def clean_rows(
    raw: pd.DataFrame,
    source: str,
    schema: Schema,
    policy: CleaningPolicy,
    *,
    period: pd.Period,
    ids: pd.Series | None = None,
) -> CleanedRows:
    """Validate and clean every row of `raw` (a batch, or one partition of it whose index
    holds the rows' numbers in the batch): the checks that need one row at a time."""
    raw = _checked_header(raw, source, schema.required, rows_needed=False)
    out = pd.DataFrame(index=raw.index)
    out[schema.id] = _cleaned_ids(raw, source, schema) if ids is None else ids
    text = raw[schema.time]
    try:
        if pd.api.types.is_datetime64_any_dtype(text):  # typed already (a Parquet batch)
            times = text
        elif schema.time_unit:
            numbers = (
                text
                if pd.api.types.is_numeric_dtype(text)
                else pd.to_numeric(_as_text(text), errors="coerce")
            )
            times = pd.to_datetime(numbers, unit=schema.time_unit, errors="coerce")
        else:
            text = _as_text(text)
            times = pd.to_datetime(text, errors="coerce", format="mixed")
    except ValueError:
        zones = text.str.extract(r"(Z|[+-]\d\d:?\d\d)$", expand=False).fillna("none")
        raise DataError(
            f"{source}: column {schema.time!r} mixes time zones "
            f"({', '.join(repr(z) for z in zones.unique()[:3])}); expected one time "
            "zone, or none, for every row"
        ) from None
    bad_time = times.isna()
    if bad_time.any():
        raise DataError(
            f"{source}: column {schema.time!r}, {first_bad(bad_time, raw[schema.time])}: "
            f"expected {_time_expected(schema, raw[schema.time][bad_time].iloc[0])}"
        )
    times = times.dt.tz_localize(None) if times.dt.tz is not None else times
    outside = (times < period.start_time) | (times > period.end_time)
    if outside.any():
        raise DataError(
            f"{source}: column {schema.time!r}, {first_bad(outside, raw[schema.time])}: "
            f"expected a date within period {period}"
        )
    out[schema.time] = times.astype("datetime64[ns]")
    unparseable = _clean_features(raw, out, source, schema, policy)
    filled = {name: int(out[name].notna().sum()) for name in schema.features}

    labels, blank_label, unknown_label = 0, None, None
    blank_rows = np.zeros(0, dtype=np.int64)
    if schema.target in raw.columns:
        text = _as_text(raw[schema.target])
        present = text.notna()
        labels = int(present.sum())
        if labels < len(text):
            blank_label = first_bad(~present, raw[schema.target])
            if labels:
                blank_rows = np.flatnonzero(~present.to_numpy())
        unknown = present & ~text.isin([schema.positive, schema.negative])
        if unknown.any():
            unknown_label = first_bad(unknown, raw[schema.target])
        if labels:
            out[schema.target] = (text == schema.positive).fillna(False).astype("int8")
    if not labels:
        out[schema.target] = pd.array([pd.NA] * len(out), dtype="Int8")
    out[PERIOD] = period_name(period)
    return CleanedRows(
        frame=out,
        labels=labels,
        blank_label=blank_label,
        unknown_label=unknown_label,
        filled=filled,
        unparseable=unparseable,
        extra_columns=[str(c) for c in raw.columns if c not in (*schema.required, schema.target)],
        blank_rows=blank_rows,
    )


def check_rows(parts: Sequence[RowChecks], source: str, schema: Schema, policy: CleaningPolicy) -> bool:
    """The checks that need the whole batch, from its parts in order: a feature blank in every
    row, and labels (a labelled batch has a known label in every row, unless the policy drops
    the rows of a blank one). True when labelled."""
    if policy.all_blank == "error":
        for name in schema.features:
            filled = sum(part.filled[name] for part in parts)
            if not filled and not any(part.unparseable.get(name) for part in parts):
                raise DataError(
                    f"{source}: column {name!r} is blank in every row; expected "
                    "values (prepare.cleaning.all_blank is 'error')"
                )
    if not any(part.labels for part in parts):
        return False
    for what, first in (
        (
            "blank label in a labelled batch (prepare.cleaning.blank_label: drop leaves such rows out)",
            None
            if policy.blank_label == "drop"
            else next((p.blank_label for p in parts if p.blank_label), None),
        ),
        (
            f"expected {schema.positive!r} or {schema.negative!r}",
            next((p.unknown_label for p in parts if p.unknown_label), None),
        ),
    ):
        if first is not None:
            raise DataError(f"{source}: column {schema.target!r}, {first}: {what}")
    return True


def check_size(path: str | Path, policy: CleaningPolicy) -> None:
    """Refuse a file larger than prepare.cleaning.max_batch_mb before reading a byte of it."""
    size = Path(path).stat().st_size / 2**20 if Path(path).exists() else 0.0
    if size > policy.max_batch_mb:
        raise DataError(
            f"{path}: {size:.1f} MB is more than prepare.cleaning.max_batch_mb "
            f"({policy.max_batch_mb:g}); split the batch, or raise the limit where "
            "memory allows (reading and cleaning a CSV hold about 6x its size in memory: 5.5x "
            "measured on a 140 MB, 1M-row batch; Parquet, being compressed, more)"
        )


def read_batch(path: str | Path, schema: Schema, policy: CleaningPolicy) -> Batch:
    """One batch file, validated and cleaned."""
    from retrain.data.files import read_raw_batch

    check_size(path, policy)
    return validate_batch(read_raw_batch(path), str(path), schema, policy)


def read_rows_to_score(path: str | Path, schema: Schema, policy: CleaningPolicy) -> pd.DataFrame:
    """A file to score (any name, no time or label needed), checked and cleaned like a batch."""
    from retrain.data.files import read_raw_batch

    check_size(path, policy)
    return validate_features(read_raw_batch(path), str(path), schema, policy)


def read_batches(raw_dir: str | Path, schema: Schema, policy: CleaningPolicy) -> list[Batch]:
    """Every batch file of `raw_dir`, validated and cleaned, in period order."""
    from retrain.data.files import list_batches

    return [read_batch(path, schema, policy) for path in list_batches(raw_dir)]
