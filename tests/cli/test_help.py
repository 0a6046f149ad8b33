"""Every subcommand's --help says what it does, shows an example and lists the exit codes."""

import pytest

from retrain.cli import EXAMPLES, parser

COMMANDS = sorted(EXAMPLES)


def test_every_subcommand_has_an_example():
    actions = [a for a in parser()._actions if a.dest == "command"]
    assert sorted(actions[0].choices) == COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_a_description_an_example_and_exit_codes(command, capsys):
    with pytest.raises(SystemExit) as done:
        parser().parse_args([command, "--help"])
    assert done.value.code == 0
    page = capsys.readouterr().out
    usage, description = page.split("\n\n")[:2]
    assert usage.startswith(f"usage: retrain {command}") and len(description.strip()) > 20
    assert f"example:\n  retrain {command}" in page or f"example:\n  dvc repro && retrain {command}" in page
    assert "exit codes: 0 done; 1 error" in page and "3 refused" in page


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path):
    import subprocess
    import sys

    from tests.helpers import ROOT, command_env

    proc = subprocess.run(
        f"{sys.executable} -m retrain.cli --help | head -c 1; "
        f"{sys.executable} -c \"import sys; sys.argv = ['retrain', 'ingest', '--dry-run']; "
        'from retrain.cli import main; main()" | head -n 0',
        shell=True,
        cwd=ROOT,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
