"""A stage script takes no arguments: `--help` says what it does, anything else is refused,
and neither reads or writes a file (a stray `--help` once ran the backtest in a checkout)."""

import subprocess
import sys

import pytest
import yaml

from tests.helpers import ROOT, command_env

STAGES = sorted(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])


def run_stage(name: str, *args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "stages" / f"{name}.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=command_env(),
        timeout=120,
    )


@pytest.mark.parametrize("name", STAGES)
def test_help_describes_the_stage_and_touches_nothing(name, tmp_path):
    proc = run_stage(name, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: dvc repro {name}")
    assert f"Stage {name}:" in proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_any_other_argument_is_refused_before_work(tmp_path):
    proc = run_stage("backtest", "--months", "3", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == "error: stage backtest takes no arguments, got '--months 3'"
    assert proc.stdout == ""
    assert list(tmp_path.iterdir()) == []
