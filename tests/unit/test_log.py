import logging
import re
import sys

import pytest

from retrain.errors import DataError
from retrain.log import dvc_verbosity, level_from, logged


@pytest.fixture(autouse=True)
def run_as_a_stage_script(monkeypatch):
    """A stage refuses arguments: run each `logged` main as `python stages/x.py` runs it, whatever
    arguments pytest itself was given."""
    monkeypatch.setattr(sys, "argv", ["stages/decide.py"])


def test_level_names_are_case_blind_and_default_to_info():
    assert level_from(None) == logging.INFO
    assert level_from("debug") == logging.DEBUG
    assert level_from(" Warning ") == logging.WARNING


def test_an_unknown_level_is_one_clear_error():
    with pytest.raises(DataError, match="log level 'loud'.*expected one of DEBUG, INFO"):
        level_from("loud")


def test_stage_lines_carry_the_stage_name_and_the_elapsed_time(capsys, monkeypatch):
    monkeypatch.setenv("RETRAIN_LOG_LEVEL", "DEBUG")
    root = logging.getLogger("retrain")
    root.handlers.clear()

    @logged("decide")
    def main():
        logging.getLogger("retrain.decide").debug("detail %d", 7)
        logging.getLogger("retrain.decide").warning("careful")

    main()
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "decide: detail 7"
    assert re.fullmatch(
        r"decide: done in \d+\.\d\d s, peak memory \d+ MB "
        r"\(\d+ MB before it read anything\)",
        lines[1],
    )
    assert captured.err == "decide: warning: careful\n"
    monkeypatch.setenv("RETRAIN_LOG_LEVEL", "ERROR")
    main()
    assert capsys.readouterr() == ("", "")
    root.handlers.clear()


def test_stages_allocate_arrow_memory_through_the_c_library():
    import pyarrow as pa

    from retrain.log import return_freed_memory

    return_freed_memory()
    assert pa.default_memory_pool().backend_name == "system"


def test_a_finished_stage_leaves_what_it_built_out_of_garbage_collection():
    import gc

    gc.unfreeze()

    @logged("decide")
    def main():
        return [[] for _ in range(10)]

    try:
        assert gc.get_freeze_count() == 0
        built = main()
        assert gc.get_freeze_count() >= len(built) + 1
    finally:
        gc.unfreeze()
        logging.getLogger("retrain").handlers.clear()


def test_a_full_disk_is_one_line_and_exit_1(capsys):
    import errno

    from retrain.errors import one_line

    @one_line
    def writes() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "reports/evaluation.json")

    with pytest.raises(SystemExit) as done:
        writes()
    assert done.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "reports/evaluation.json: no space left" in err


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["/venv/bin/python", "/venv/bin/dvc", "repro", "-q"], "WARNING"),
        (["python", "-m", "dvc", "exp", "run", "--quiet", "-S", "a=1"], "WARNING"),
        (["dvc", "repro", "-fq"], "WARNING"),
        (["dvc", "repro", "-v", "train"], "DEBUG"),
        (["dvc", "exp", "run", "-S", "decide.rule=-q"], None),
        (["dvc", "repro"], None),
        (["sh", "-c", "python stages/decide.py -q"], None),
    ],
)
def test_dvc_quiet_and_verbose_flags_set_the_stage_level(argv, level):
    assert dvc_verbosity(argv) == level
