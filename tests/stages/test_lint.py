"""The code passes ruff's lint and format check and mypy's type check, and the docs build with no
broken link."""

import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT

BIN = Path(sys.executable).parent
CODE = ["src", "stages", "tests", "benchmarks", "tools"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing():
    proc = _run(str(BIN / "ruff"), "check", *CODE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_code_is_formatted_as_ruff_format_writes_it():
    proc = _run(str(BIN / "ruff"), "format", "--check", *CODE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_finds_no_type_error_in_the_package_and_the_stages():
    proc = _run(str(BIN / "mypy"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr


def test_the_docs_build_strict_with_every_link_resolved(tmp_path):
    proc = _run(str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(tmp_path / "site"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").is_file()
