import os

import numpy  # noqa: F401  (BLAS loaded before the limit, as in every stage)
import pytest
from threadpoolctl import threadpool_info

from retrain.errors import DataError
from retrain.execution import available_cpus, limited_threads, threads


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
