import ctypes
import os
import subprocess
import sys

import numpy  # noqa: F401  (BLAS loaded before the limit, as in every stage)
import pytest
from threadpoolctl import threadpool_info

from retrain.errors import DataError
from retrain.execution import FIT_ROWS_PER_THREAD, available_cpus, fit_threads, limited_threads, threads


def test_threads_come_from_the_environment_or_the_available_cpus(monkeypatch):
    monkeypatch.setenv("RETRAIN_THREADS", "3")
    assert threads() == 3
    monkeypatch.delenv("RETRAIN_THREADS")
    assert threads() == available_cpus() >= 1
    for wrong in ("0", "-1", "two", "1.5"):
        monkeypatch.setenv("RETRAIN_THREADS", wrong)
        with pytest.raises(DataError, match="RETRAIN_THREADS is"):
            threads()


def test_limited_threads_caps_loaded_libraries_and_those_loaded_later(monkeypatch):
    monkeypatch.setenv("RETRAIN_THREADS", "1")
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY"):
        monkeypatch.delenv(name, raising=False)
    with limited_threads() as n:
        assert n == 1
        assert all(lib["num_threads"] == 1 for lib in threadpool_info())
        assert os.environ["OMP_NUM_THREADS"] == "1" and os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_a_fit_gets_one_thread_per_150k_rows_at_most_retrain_threads(monkeypatch):
    monkeypatch.setenv("RETRAIN_THREADS", "4")
    assert fit_threads(1_000) == fit_threads(FIT_ROWS_PER_THREAD - 1) == 1
    assert fit_threads(2 * FIT_ROWS_PER_THREAD) == 2
    assert fit_threads(100 * FIT_ROWS_PER_THREAD) == 4
    monkeypatch.setenv("RETRAIN_THREADS", "1")
    assert fit_threads(100 * FIT_ROWS_PER_THREAD) == 1


def test_a_small_fit_runs_on_one_openmp_thread_where_more_are_allowed(monkeypatch, toy_batch, toy_schema):
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: F401  (OpenMP loaded)

    from retrain.model import modeling, preprocessing

    seen = []

    class Probe:
        def fit(self, features, labels):
            seen.append({lib["user_api"]: lib["num_threads"] for lib in threadpool_info()})

    monkeypatch.setenv("RETRAIN_THREADS", "2")
    monkeypatch.setattr(preprocessing, "make_model", lambda *args: Probe())
    with limited_threads():
        assert {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "openmp"} == {2}
        modeling.fit(toy_batch("2025-01").frame, toy_schema, "hist_gradient_boosting", {}, 0)
    assert seen == [{**seen[0], "openmp": 1}]


def test_dask_settings_are_checked_before_any_work(monkeypatch, tmp_path):
    from retrain import execution

    for name in (
        "RETRAIN_ENGINE",
        "RETRAIN_DASK_PARTITION_ROWS",
        "RETRAIN_DASK_SCRATCH",
        "RETRAIN_DASK_MEMORY_LIMIT",
    ):
        monkeypatch.delenv(name, raising=False)
    assert execution.engine() == "local" and execution.partition_rows() is None
    assert execution.scratch_dir() is None and execution.dask_memory_limit() == "auto"
    monkeypatch.setenv("RETRAIN_ENGINE", " Dask ")
    monkeypatch.setenv("RETRAIN_DASK_PARTITION_ROWS", "500000")
    monkeypatch.setenv("RETRAIN_DASK_SCRATCH", str(tmp_path))
    monkeypatch.setenv("RETRAIN_DASK_MEMORY_LIMIT", "3GiB")
    assert execution.engine() == "dask" and execution.partition_rows() == 500_000
    assert execution.scratch_dir() == str(tmp_path) and execution.dask_memory_limit() == "3GiB"
    for name, wrong, check in (
        ("RETRAIN_ENGINE", "spark", execution.engine),
        ("RETRAIN_DASK_PARTITION_ROWS", "0", execution.partition_rows),
        ("RETRAIN_DASK_SCRATCH", str(tmp_path / "missing"), execution.scratch_dir),
        ("RETRAIN_DASK_MEMORY_LIMIT", "lots", execution.dask_memory_limit),
    ):
        monkeypatch.setenv(name, wrong)
        with pytest.raises(DataError, match=f"^{name} is "):
            check()


FRAGMENTED = """
import numpy as np, psutil
from retrain.log import return_freed_memory
return_freed_memory()
rss = lambda: psutil.Process().memory_info().rss / 2**20
before = rss()
big, small = [], []
for _ in range(150):  # 2 MB buffers, each followed by a small one that stays
    buffer = np.empty(2_000_000, dtype=np.uint8)
    buffer[::4096] = 1
    big.append(buffer)
    small.append(np.ones(600, dtype=np.uint8))
held = rss()
del big
print(before, held, rss())
"""


def test_the_mmap_threshold_is_an_execution_setting_that_returns_smaller_freed_buffers(monkeypatch):
    """RETRAIN_MMAP_THRESHOLD_MB (default 4): with 1, freed 2 MB buffers leave the process even
    where small allocations that stay sit between them; with the default they stay resident."""
    from retrain import execution

    monkeypatch.delenv("RETRAIN_MMAP_THRESHOLD_MB", raising=False)
    assert execution.mmap_threshold_bytes() == 4 * 2**20
    monkeypatch.setenv("RETRAIN_MMAP_THRESHOLD_MB", "1")
    assert execution.mmap_threshold_bytes() == 2**20
    monkeypatch.setenv("RETRAIN_MMAP_THRESHOLD_MB", "0.5")
    with pytest.raises(DataError, match="^RETRAIN_MMAP_THRESHOLD_MB is '0.5', expected a whole number"):
        execution.mmap_threshold_bytes()
    if execution.c_library("mallopt") is None:
        pytest.skip("this C library has no mallopt: the threshold cannot be set")
    left = {}
    for mb in ("1", "4"):
        env = {**os.environ, "RETRAIN_MMAP_THRESHOLD_MB": mb}
        run = subprocess.run([sys.executable, "-c", FRAGMENTED], env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        before, held, after = map(float, run.stdout.split())
        assert held > before + 250
        left[mb] = after - before
    assert left["1"] < 30 and left["4"] > 250, left


ARENAS = """
import ctypes, threading
import retrain  # noqa: F401
import pyarrow  # noqa: F401  (Arrow's threads start here)
def work():
    for _ in range(50):
        ctypes.create_string_buffer(200_000)
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL(None).malloc_stats()
"""


@pytest.mark.parametrize("engine", ["dask", "local"])
def test_the_dask_engine_serves_every_thread_of_a_stage_from_one_malloc_arena(engine):
    if not hasattr(ctypes.CDLL(None), "malloc_stats"):
        pytest.skip("not glibc: no malloc arenas to count")
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    proc = subprocess.run(
        [sys.executable, "-c", ARENAS], env={**env, "RETRAIN_ENGINE": engine}, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    arenas = proc.stderr.count("Arena ")
    assert arenas == 1 if engine == "dask" else arenas > 1, proc.stderr
