"""The catalogue of bad inputs, each through the real `dvc repro` (or `retrain`) in a copy of a
repository whose champion is in production: handled by an explicit params policy, or refused with
one line naming the file, the column or row and what was expected. Either way the pointer, the
tags, dvc.lock and data/raw are byte-identical before and after.

docs/reliability.md lists the same catalogue ("Bad input: the catalogue").
"""

import gzip
import hashlib
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import Repo, create_repo

pytestmark = pytest.mark.e2e

NEXT = "2025-04"
BATCH = f"data/raw/{NEXT}.csv"
PARAMS = {
    "prepare": {"window": "last_n", "window_batches": 2, "holdout_fraction": 0.5},
    "simulate": {"rows_per_batch": 300, "scenarios": []},
}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """v1.0.0 in production after three months; a clean fourth month kept aside."""
    repo = create_repo(tmp_path_factory.mktemp("bad") / "repo", PARAMS)
    repo.first_run(months=3)
    repo.retrain("simulate", "--period", NEXT, "--out", "aside")
    shutil.move(repo.path / "aside", repo.path.parent / "aside")
    return repo


@pytest.fixture
def repo(base, tmp_path) -> Repo:
    target = tmp_path / "copy"
    shutil.copytree(base.path, target, symlinks=True)
    shutil.copytree(base.path.parent / "aside", tmp_path / "aside")
    return Repo(target)


def good(repo: Repo) -> str:
    return (repo.path.parent / "aside" / f"{NEXT}.csv").read_text()


def frame(repo: Repo) -> pd.DataFrame:
    return pd.read_csv(repo.path.parent / "aside" / f"{NEXT}.csv", dtype=str, keep_default_na=False)


def put(repo: Repo, text: str | bytes, name: str = BATCH) -> None:
    path = repo.path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())


def put_frame(repo: Repo, df: pd.DataFrame, name: str = BATCH) -> None:
    put(repo, df.to_csv(index=False), name)


def cell(df: pd.DataFrame, row: int, column: str, value: str) -> pd.DataFrame:
    df = df.copy()
    df.loc[row, column] = value
    return df


def snapshot(repo: Repo) -> dict:
    raw = {
        p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted((repo.path / "data/raw").iterdir())
    }
    return {
        "pointer": (repo.path / "models/champion.json").read_bytes(),
        "tags": repo.git("tag", "--list"),
        "lock": (repo.path / "dvc.lock").read_bytes(),
        "raw": raw,
        "head": repo.git("rev-parse", "HEAD"),
    }


@dataclass
class Case:
    mutate: Callable[[Repo], None]
    refused: str | None = None  # regex the one error line must match
    handled: Callable[[Repo], None] | None = None
    command: tuple[str, ...] = ("dvc", "repro")

    def __post_init__(self) -> None:
        if self.handled and self.command == ("dvc", "repro"):
            self.command = ("dvc", "repro", "decide")  # enough to see how it was handled


def prepared(repo: Repo) -> dict:
    return repo.json("reports/prepare.json")


def newest(repo: Repo) -> pd.DataFrame:
    return pd.read_parquet(repo.path / "data/prepared/newest.parquet")


def corrupt_champion(repo: Repo) -> None:
    pointer = repo.json("models/champion.json")
    cache = repo.path / ".dvc/cache/files/md5" / pointer["md5"][:2] / pointer["md5"][2:]
    cache.chmod(0o644)
    cache.write_bytes(cache.read_bytes()[:200])


def point_at_missing_version(repo: Repo) -> None:
    path = repo.path / "models/champion.json"
    pointer = json.loads(path.read_text())
    pointer.update(version="v9.9.9", tag="churn-model@v9.9.9", commit="0" * 40)
    path.write_text(json.dumps(pointer, indent=2) + "\n")
    repo.commit_all("point at a version that does not exist")


CASES = {
    "empty_file": Case(lambda r: put(r, ""), refused=rf"{BATCH}: empty file, expected a header"),
    "header_only": Case(
        lambda r: put(r, good(r).splitlines()[0] + "\n"),
        refused=rf"{BATCH}: header only, expected at least one data row",
    ),
    "missing_column": Case(
        lambda r: put_frame(r, frame(r).drop(columns=["tenure"])),
        refused=rf"{BATCH}: missing column\(s\) 'tenure' required by params",
    ),
    "extra_column": Case(
        lambda r: put_frame(r, frame(r).assign(loyalty_points="3")),
        handled=lambda r: (
            r.json("reports/evaluation.json")["schema_changes"]["new_columns"] == ["loyalty_points"]
        ),
    ),
    "columns_reordered": Case(
        lambda r: put_frame(r, frame(r)[frame(r).columns[::-1]]),
        handled=lambda r: prepared(r)["newest_rows"] == 300,
    ),
    "duplicated_header": Case(
        lambda r: put(r, good(r).replace("tenure", "contract", 1)),
        refused=rf"{BATCH}: column 'contract' appears twice in the header",
    ),
    "semicolon_delimiter": Case(
        lambda r: put(r, frame(r).to_csv(index=False, sep=";")),
        refused=rf"{BATCH}: one column .*: expected a comma as delimiter",
    ),
    "byte_order_mark": Case(
        lambda r: put(r, b"\xef\xbb\xbf" + good(r).encode()),
        handled=lambda r: prepared(r)["newest_rows"] == 300,
    ),
    "latin1_bytes": Case(
        lambda r: put(r, good(r).encode().replace(b"Month-to-month", b"Month-to-m\xf6nth")),
        refused=rf"{BATCH}: not UTF-8 text \(byte \d+\)",
    ),
    "thousands_separators": Case(
        lambda r: put_frame(r, cell(frame(r), 0, "total_charges", "1,234.50")),
        handled=lambda r: 1234.5 in newest(r)["total_charges"].tolist(),
    ),
    "blank_numeric": Case(
        lambda r: put_frame(r, cell(frame(r), 5, "monthly_charges", " ")),
        handled=lambda r: newest(r)["monthly_charges"].isna().sum() == 1,
    ),
    "text_in_numeric": Case(
        lambda r: put_frame(r, cell(frame(r), 7, "tenure", "seven")),
        refused=rf"{BATCH}: column 'tenure', row 8 \(value 'seven'\): expected a number",
    ),
    "infinity": Case(
        lambda r: put_frame(r, cell(frame(r), 2, "monthly_charges", "inf")),
        refused=rf"{BATCH}: column 'monthly_charges', row 3 .*expected a finite",
    ),
    "negative_value": Case(
        lambda r: put_frame(r, cell(frame(r), 4, "tenure", "-3")),
        refused=rf"{BATCH}: column 'tenure', row 5 \(value '-3'\): expected at least 0",
    ),
    "impossible_flag": Case(
        lambda r: put_frame(r, cell(frame(r), 9, "senior_citizen", "7")),
        refused=rf"{BATCH}: column 'senior_citizen', row 10 \(value '7'\): expected at most 1",
    ),
    "unparseable_date": Case(
        lambda r: put_frame(r, cell(frame(r), 3, "snapshot_date", "31/31/2025")),
        refused=rf"{BATCH}: column 'snapshot_date', row 4 \(value '31/31/2025'\): expected a date",
    ),
    "date_outside_period": Case(
        lambda r: put_frame(r, cell(frame(r), 1, "snapshot_date", "2025-05-02")),
        refused=rf"{BATCH}: column 'snapshot_date', row 2 .*expected a date within period",
    ),
    "period_in_the_future": Case(
        lambda r: put_frame(r, frame(r).assign(snapshot_date="2099-01-15"), "data/raw/2099-01.csv"),
        refused=r"data/raw/2099-01.csv: period 2099-01 is in the future \(today is",
    ),
    "period_exists_already": Case(
        lambda r: (r.path / "data/raw/2025-03.parquet").write_bytes(
            pd.read_csv(r.path / "data/raw/2025-03.csv", dtype=str).to_parquet()
        ),
        refused=r"data/raw/2025-03.parquet: period 2025-03 already comes from",
    ),
    "file_name_not_a_period": Case(
        lambda r: put(r, good(r), "data/raw/april.csv"),
        refused=r"data/raw/april.csv: file name 'april' is not a period",
    ),
    "duplicated_ids": Case(
        lambda r: put_frame(r, cell(frame(r), 1, "customer_id", frame(r)["customer_id"][0])),
        handled=lambda r: prepared(r)["duplicates_dropped"] == 1,
    ),
    "blank_id": Case(
        lambda r: put_frame(r, cell(frame(r), 6, "customer_id", "")),
        refused=rf"{BATCH}: column 'customer_id', row 7 .*blank id",
    ),
    "label_outside_values": Case(
        lambda r: put_frame(r, cell(frame(r), 8, "churn", "Maybe")),
        refused=rf"{BATCH}: column 'churn', row 9 .*expected 'Yes' or 'No'",
    ),
    "blank_label_in_labelled_batch": Case(
        lambda r: put_frame(r, cell(frame(r), 8, "churn", "")),
        refused=rf"{BATCH}: column 'churn', row 9 .*blank label in a labelled batch "
        r"\(prepare.cleaning.blank_label: drop",
    ),
    "blank_labels_dropped_by_policy": Case(
        lambda r: (
            r.set_params({"prepare": {"cleaning": {"blank_label": "drop"}}}),
            put_frame(r, cell(cell(frame(r), 8, "churn", ""), 30, "churn", "")),
        ),
        handled=lambda r: prepared(r)["blank_labels_dropped"] == 2,
    ),
    "single_class_batch": Case(
        lambda r: put_frame(r, frame(r).assign(churn="No")),
        handled=lambda r: (
            r.json("reports/evaluation.json")["metrics"]["roc_auc"] is None
            and "roc_auc"
            in r.json("reports/decision.json")["reason"]
            + json.dumps(r.json("reports/decision.json")["triggers"])
        ),
    ),
    "all_missing_feature": Case(
        lambda r: put_frame(r, frame(r).assign(monthly_charges="")),
        refused=rf"{BATCH}: column 'monthly_charges' is blank in every row",
    ),
    "truncated_parquet": Case(
        lambda r: (r.path / f"data/raw/{NEXT}.parquet").write_bytes(frame(r).to_parquet()[:-100]),
        refused=rf"data/raw/{NEXT}.parquet: not a readable Parquet file",
    ),
    "batch_larger_than_allowed": Case(
        lambda r: (r.set_params({"prepare": {"cleaning": {"max_batch_mb": 0.01}}}), put(r, good(r))),
        refused=rf"{BATCH}: \d+\.\d MB is more than prepare.cleaning.max_batch_mb",
    ),
    "corrupt_champion_model": Case(corrupt_champion, refused=r"md5 [0-9a-f]{32} does not match [0-9a-f]{32}"),
    "pointer_names_missing_version": Case(
        point_at_missing_version, refused=r"models/champion.json names churn-model v9\.9\.9, but no tag"
    ),
    "upper_case_suffix": Case(
        lambda r: put(r, good(r), f"data/raw/{NEXT}.CSV"),
        handled=lambda r: prepared(r)["newest_rows"] == 300 and prepared(r)["newest_period"] == NEXT,
    ),
    "gzipped_csv": Case(
        lambda r: put(r, gzip.compress(good(r).encode()), f"data/raw/{NEXT}.csv.gz"),
        handled=lambda r: prepared(r)["newest_rows"] == 300 and prepared(r)["newest_period"] == NEXT,
    ),
    "stray_file_in_raw": Case(
        lambda r: (put(r, good(r)), put(r, "notes", "data/raw/notes.txt")),
        refused=r"data/raw/notes.txt: not a batch file; expected <period>.csv, .csv.gz or "
        r".parquet",
    ),
    "json_batch": Case(
        lambda r: put(r, frame(r).to_json(orient="records"), f"data/raw/{NEXT}.json"),
        refused=rf"data/raw/{NEXT}.json: not a batch file",
    ),
    "row_with_missing_fields": Case(
        lambda r: put(r, good(r).replace("\n", "\n" + ",".join(["x"] * 3) + "\n", 5)),
        refused=rf"{BATCH}: row 1 \(line 2\) has 3 field\(s\) where the header has 22 \(5 such",
    ),
    "file_cut_in_its_last_line": Case(
        lambda r: put(r, good(r).rstrip("\n").rsplit(",", 4)[0] + "\n"),
        refused=rf"{BATCH}: row 300 \(line 301\) has \d+ field\(s\) where the header has",
    ),
    "unknown_cleaning_policy_in_params": Case(
        lambda r: (r.set_params({"prepare": {"cleaning": {"blank_numeric": "guess"}}}), put(r, good(r))),
        refused=r"params.yaml: prepare.cleaning.blank_numeric = 'guess': expected 'missing' or 'error'",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(repo, name):
    case = CASES[name]
    case.mutate(repo)
    before = snapshot(repo)
    proc = repo.run(*case.command, check=False)
    after = snapshot(repo)
    if not case.refused:  # a handled batch is recorded by a new dvc.lock
        before.pop("lock"), after.pop("lock")
    assert after == before, f"{name}: something recorded changed"
    errors = [
        line
        for line in proc.stderr.splitlines()
        if line.startswith("error: ") and not line.startswith("error: failed to reproduce")
    ]
    if case.refused:
        assert proc.returncode != 0, f"{name}: expected a refusal\n{proc.stderr[-2000:]}"
        assert len(errors) == 1, proc.stderr[-2000:]
        assert re.search(case.refused, errors[0]), errors[0]
    else:
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert case.handled(repo), name


def test_the_catalogue_has_at_least_25_cases_and_the_docs_list_each():
    readme = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text()
    assert len(CASES) >= 25
    for name in CASES:
        assert f"`{name}`" in readme, name
