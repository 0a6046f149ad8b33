"""Files in and out: batches, Parquet, JSON, all writes atomic."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from io import BytesIO, StringIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain.errors import DataError
from retrain.faults import checkpoint

if TYPE_CHECKING:
    import pandas as pd

BATCH_SUFFIXES = (".csv.gz", ".csv", ".parquet")  # matched case-insensitively
IGNORED_IN_RAW = ".dvc"  # with files whose name starts with '.': DVC's and git's own files
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def atomic_write_bytes(path: str | Path, data: bytes, overwrite: bool = True) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it; with
    `overwrite=False`, link it into place instead, which raises FileExistsError rather than
    replace a file that exists (or appeared meanwhile)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            os.unlink(tmp)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    checkpoint(f"write:{path}")


def confined(path: str | Path, root: str | Path = ".") -> Path:
    """`path` if it stays inside `root` once symlinks and `..` are resolved; else one error."""
    base = Path(root).resolve()
    if not (base / path).resolve().is_relative_to(base):
        raise DataError(f"{path}: outside the repository ({base}); expected a path inside it")
    return Path(path)


RECORDED = (
    "models",
    "data/raw",
    "data/prepared",
    "data/scored",
    "data/backtest",
    "dvc.lock",
    "dvc.yaml",
    "params.yaml",
    ".git",
    ".dvc",
)


def output_path(path: str | Path, root: str | Path = ".") -> Path:
    """A path the user names for a command's output: anywhere, except the repository's recorded
    state (the registry, the batches, DVC's outputs and files, git)."""
    base, target = Path(root).resolve(), (Path(root) / path).resolve()
    for kept in RECORDED:
        if target == base / kept or target.is_relative_to(base / kept):
            raise DataError(
                f"{path}: inside {kept}, which the repository records; choose another output path"
            )
    return Path(path)


def dumps_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, allow_nan=False, default=_jsonable) + "\n"


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, dumps_json(obj).encode())


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return loads_json(path.read_bytes(), str(path))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None


def loads_json(data: bytes, name: str) -> Any:
    """JSON from bytes read elsewhere (a commit, a request); `name` says where in the error."""
    try:
        return json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{name}: not valid JSON ({err})") from None


def read_bytes(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None


def read_text(path: str | Path) -> str:
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None


def write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


# Rows per Parquet row group of every file written here: a file written in parts (by the Dask
# engine) cuts them where a file written whole does, and a reader's partitions are row groups.
ROW_GROUP_ROWS = 256 * 1024


def arrow_table(df: pd.DataFrame, metadata: dict[str, str] | None = None) -> Any:
    """The frame as the Arrow table every Parquet writer here writes: no index, the given
    schema metadata."""
    import pyarrow as pa

    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    return table.replace_schema_metadata(metadata)


def parquet_bytes(df: pd.DataFrame, metadata: dict[str, str] | None = None) -> bytes:
    """Deterministic Parquet: same frame and metadata, same bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(arrow_table(df, metadata), sink, compression="zstd", row_group_size=ROW_GROUP_ROWS)
    return sink.getvalue().to_pybytes()


def write_parquet_tables(path: str | Path, tables: Iterable[Any]) -> None:
    """Arrow tables (arrow_table of frames) laid end to end as one Parquet file, taken one at a
    time: the same row groups, hence the same bytes, as write_parquet of the frames'
    concatenation; written atomically. Tables of ROW_GROUP_ROWS rows are written as they come."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer, pending, held = None, [], 0
        for table in tables:
            writer = writer or pq.ParquetWriter(tmp, table.schema, compression="zstd")
            pending.append(table)
            held += len(table)
            while held >= ROW_GROUP_ROWS:
                rows = pending[0] if len(pending) == 1 else pa.concat_tables(pending)
                writer.write_table(
                    rows.slice(0, ROW_GROUP_ROWS).combine_chunks(), row_group_size=ROW_GROUP_ROWS
                )
                held -= ROW_GROUP_ROWS
                pending = [rows.slice(ROW_GROUP_ROWS)] if held else []
            table = rows = None  # hold nothing written while the next table arrives
        if writer is None:
            raise DataError(f"{path}: nothing to write")
        if held:
            writer.write_table(pa.concat_tables(pending).combine_chunks(), row_group_size=ROW_GROUP_ROWS)
        writer.close()
        os.chmod(tmp, _FILE_MODE)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    checkpoint(f"write:{path}")


def write_parquet(path: str | Path, df: pd.DataFrame, metadata: dict[str, str] | None = None) -> None:
    atomic_write_bytes(path, parquet_bytes(df, metadata))


def parquet_metadata(path: str | Path) -> dict[str, str]:
    """The key-value metadata write_parquet stored in the file's schema."""
    import pyarrow.parquet as pq

    try:
        stored = pq.read_schema(path).metadata or {}
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as err:  # pyarrow raises several unrelated types for a broken file
        raise DataError(f"{path}: not a readable Parquet file ({type(err).__name__}: {err})") from None
    return {k.decode(): v.decode() for k, v in stored.items()}


def parquet_row_count(path: str | Path) -> int:
    """The rows of a Parquet file, from its footer."""
    import pyarrow.parquet as pq

    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as err:  # pyarrow raises several unrelated types for a broken file
        raise DataError(f"{path}: not a readable Parquet file ({type(err).__name__}: {err})") from None


def read_parquet(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    import pandas as pd

    path = Path(path)
    try:
        return pd.read_parquet(path, columns=columns)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as err:  # pyarrow raises several unrelated types for a broken file
        raise DataError(f"{path}: not a readable Parquet file ({type(err).__name__}: {err})") from None


def write_rows(path: str | Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """Rows as CSV, as pandas writes them; written atomically."""
    buffer = StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def write_frame(path: str | Path, df: pd.DataFrame) -> None:
    """A table as CSV or Parquet, chosen by the file's suffix; written atomically."""
    suffix = Path(path).suffix
    if suffix == ".csv":
        write_text(path, df.to_csv(index=False))
    elif suffix == ".parquet":
        write_parquet(path, df)
    else:
        raise DataError(f"{path}: expected a .csv or .parquet file name")


def batch_suffix(path: str | Path) -> str | None:
    """The batch format of a file name (.csv, .csv.gz or .parquet, any case), or None."""
    name = Path(path).name.lower()
    return next((s for s in BATCH_SUFFIXES if name.endswith(s) and len(name) > len(s)), None)


def batch_stem(path: str | Path) -> str:
    """A batch file's name without its format suffix: the period it holds."""
    suffix = batch_suffix(path)
    name = Path(path).name
    return name[: len(name) - len(suffix)] if suffix else Path(path).stem


def read_raw_batch(path: str | Path) -> pd.DataFrame:
    """Read a raw batch as text columns (CSV, gzipped or not) or as stored (Parquet); cleaning
    comes later. A CSV row with fewer fields than the header is refused with its line."""
    import pandas as pd

    path = Path(path)
    suffix = batch_suffix(path)
    if suffix == ".parquet":
        return read_parquet(path).reset_index(drop=True)
    if suffix is None:
        raise DataError(f"{path}: expected a .csv, .csv.gz or .parquet file")
    compression = "gzip" if suffix == ".csv.gz" else None
    try:
        _check_header(path, compression)
        return pd.read_csv(  # type: ignore[call-overload]  # pandas-stubs
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[],
            encoding="utf-8-sig",
            compression=compression,
            engine="pyarrow",
        )
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file, expected a header row and data rows") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except pd.errors.ParserError as err:
        if "Expected" in str(err) and "columns, got" in str(err):
            _refuse_ragged_rows(path, compression)
        raise DataError(f"{path}: not a readable CSV ({str(err).strip()[:200]})") from None
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: not a readable gzip file ({err})") from None


def _csv_text(path: Path, compression: str | None) -> Any:
    """The CSV file as text, decompressed when gzipped, for Python's csv module."""
    import gzip

    opener = gzip.open if compression == "gzip" else open
    return opener(path, "rt", encoding="utf-8-sig", newline="")


def _refuse_ragged_rows(path: Path, compression: str | None) -> None:
    """Name the first row whose number of fields differs from the header's (the parser that
    found it does not say which row it was)."""
    with _csv_text(path, compression) as fh:
        reader = csv.reader(fh)
        width = len(next(reader, []))
        ragged = [(i, len(row)) for i, row in enumerate(reader, start=1) if len(row) != width]
    if ragged:
        row, fields = ragged[0]
        raise DataError(
            f"{path}: row {row} (line {row + 1}) has {fields} field(s) where the "
            f"header has {width} ({len(ragged)} such row(s)); expected every row "
            "complete (a file cut short?)"
        )


def _check_header(path: Path, compression: str | None) -> None:
    """Refuse a duplicated column name in a CSV header (pandas would rename it silently)."""
    with _csv_text(path, compression) as fh:
        names = [name.strip() for name in next(csv.reader(fh), [])]
    duplicated = next((name for i, name in enumerate(names) if name in names[:i]), None)
    if duplicated is not None:
        raise DataError(f"{path}: column {duplicated!r} appears twice in the header")


def list_batches(raw_dir: str | Path) -> list[Path]:
    """Batch files in `raw_dir`, sorted by name (the period). Names starting with '.' and
    `*.dvc` files are DVC's and git's and are skipped; any other file that is not a batch is
    refused, never silently left out."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise DataError(f"{raw_dir}: batch directory not found")
    files = []
    for path in sorted(raw_dir.iterdir()):
        if path.name.startswith(".") or path.name.endswith(IGNORED_IN_RAW):
            continue
        if not path.is_file() or batch_suffix(path) is None:
            raise DataError(
                f"{path}: not a batch file; expected <period>.csv, .csv.gz or "
                f".parquet (any case) in {raw_dir}; move it elsewhere"
            )
        files.append(path)
    return sorted(files, key=batch_stem)


def npy_bytes(array: Any) -> bytes:
    """An array in numpy's .npy format (no pickled objects)."""
    import numpy as np

    buffer = BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def read_npy(data: bytes) -> Any:
    import numpy as np

    return np.load(BytesIO(data), allow_pickle=False)


def md5_bytes(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def md5_file(path: str | Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
