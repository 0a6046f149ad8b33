"""`retrain serve` refuses to start with nothing verified to serve."""

from tests.helpers import create_repo, run


def test_serve_without_a_model_in_production_is_one_line(tmp_path):
    repo = create_repo(tmp_path / "repo")
    proc = run(["retrain", "serve", "--port", "1"], repo.path, check=False, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: no model is in production yet: run `dvc repro` and `retrain promote`"
    )
