"""The Dask engine on a real distributed.LocalCluster: two worker processes talking over TCP on
127.0.0.1 give the in-process engine's answers, bit for bit, and their errors reach the user as
one line."""

import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.e2e.test_pipeline import LOOP_PARAMS
from tests.helpers import TOY, create_repo, ran_stages

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client

    from retrain.engine.cluster import local_cluster

    with local_cluster(2) as local, Client(local) as client:
        yield local, client


def test_the_cluster_is_two_worker_processes_on_loopback_tcp(cluster):
    local, client = cluster
    workers = client.scheduler_info()["workers"]
    assert local.scheduler_address.startswith("tcp://127.0.0.1:")
    assert len(workers) == 2 and all(address.startswith("tcp://127.0.0.1:") for address in workers)
    pids = set(client.run(lambda: __import__("os").getpid()).values())
    assert len(pids) == 2
    import os

    import psutil

    listening = [
        conn.laddr
        for conn in psutil.net_connections("tcp")
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids | {os.getpid()}
    ]
    assert listening and all(address.ip == "127.0.0.1" for address in listening)
    assert 8787 not in {address.port for address in listening}  # no fixed port: clusters side by side


def test_a_stage_s_local_workers_give_freed_buffers_back_to_the_system(monkeypatch):
    """The workers of the cluster a stage starts allocate as the stage does (log.return_freed_memory):
    a large buffer freed on a worker leaves its resident memory, so the whole tree's peak
    follows what the tasks hold, not what they held."""
    from retrain.engine.cluster import dask_client

    def rss_mb_after_a_freed_buffer() -> tuple[str, float, float]:
        import psutil
        import pyarrow as pa

        me = psutil.Process()
        before = me.memory_info().rss / 2**20
        buffer = pa.allocate_buffer(300 * 2**20)
        memoryview(buffer).cast("B")[::4096] = b"x" * len(range(0, buffer.size, 4096))  # touch each page
        held = me.memory_info().rss / 2**20 - before
        del buffer
        return pa.default_memory_pool().backend_name, held, me.memory_info().rss / 2**20 - before

    monkeypatch.setenv("RETRAIN_DASK_WORKERS", "2")
    monkeypatch.delenv("RETRAIN_DASK_SCHEDULER", raising=False)
    with dask_client() as client:
        found = list(client.run(rss_mb_after_a_freed_buffer).values())
    assert len(found) == 2
    for pool, held, left in found:
        assert pool == "system"
        assert held > 250 and left < 20, (held, left)


def toy_batch(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "key": [f"k{i}" for i in range(n)],
            "ts": pd.Timestamp("2025-03-01") + pd.to_timedelta(rng.integers(0, 30 * 86400, n), unit="s"),
            "x1": rng.normal(0.2, 1.1, n),
            "x2": np.where(rng.random(n) < 0.1, np.nan, rng.gamma(2, 12, n)),
            "colour": rng.choice(["red", "green", "blue", "pink", None], n, p=[0.4, 0.3, 0.15, 0.1, 0.05]),
            "_period": "2025-03",
        }
    )


def test_partitions_on_two_workers_give_the_in_process_statistics(cluster, tmp_path):
    """Drift counts, KS values over a spaced subsample, schema changes, the domain classifier's
    rows and a seeded sample are the same from 1 frame as from partitions read by the workers,
    whatever the partition size."""
    from retrain.data.schema import Schema
    from retrain.engine.cluster import PartitionedRows
    from retrain.engine.rows import FrameRows
    from retrain.monitor.drift import KS_MAX_ROWS, batch_drift, build_profile

    _, client = cluster
    toy = Schema.from_params(TOY)
    reference = toy_batch(3000, 1).assign(label=0)
    profile, sample = build_profile(reference, toy, 10, 1000, 0, holdout={})
    batch = toy_batch(2 * KS_MAX_ROWS + 50_001, 2)
    path = tmp_path / "newest.parquet"
    pq.write_table(pa.Table.from_pandas(batch, preserve_index=False), path, row_group_size=70_000)

    observed = {"rows": len(batch)}
    whole = batch_drift(profile, sample, FrameRows(pd.read_parquet(path)), toy, observed, 3, 500, 4)
    positions = np.sort(np.random.default_rng(5).choice(len(batch), 2000, replace=False))
    for most in (None, 33_333):
        rows = PartitionedRows(client, path, most)
        assert len(rows.parts) == (4 if most is None else 11)  # 70k: 3 pieces each; 40,001: 2
        assert batch_drift(profile, sample, rows, toy, observed, 3, 500, 4) == whole
        pd.testing.assert_frame_equal(rows.take(positions), pd.read_parquet(path).take(positions))
    assert whole.features["x1"]["p_value"] is not None and whole.domain["roc_auc"] is not None


def test_a_broken_file_read_by_a_worker_is_one_error_naming_it(cluster, tmp_path):
    from retrain.engine.cluster import PartitionedRows
    from retrain.errors import DataError

    _, client = cluster
    path = tmp_path / "newest.parquet"
    pq.write_table(pa.Table.from_pandas(toy_batch(100, 3), preserve_index=False), path)
    rows = PartitionedRows(client, path)
    path.write_bytes(b"PAR1 not parquet PAR1")
    with pytest.raises(DataError, match=rf"^{path}: not a readable Parquet file"):
        rows.map_partitions(len)


def raw_parquet(path, frame, row_group_size):
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group_size)
    return path


def toy_history(tmp_path):
    """Three raw Parquet batches in small row groups; the newest repeats ids across partitions
    (a re-sent row replaces the earlier one) and shares one snapshot date among many rows."""
    from tests.helpers import toy_raw

    paths = []
    for i, period in enumerate(["2025-01", "2025-02", "2025-03"]):
        raw = toy_raw(period, n=1500, seed=i)
        if period == "2025-03":
            raw.loc[::3, "ts"] = "2025-03-28"
            raw = pd.concat([raw, raw.iloc[[5, 700, 1200]].assign(x2="7")], ignore_index=True)
        paths.append(raw_parquet(tmp_path / f"{period}.parquet", raw, 400))
    return paths


def test_prepare_on_two_workers_gives_the_in_process_batches_samples_and_bytes(
    cluster, tmp_path, monkeypatch
):
    """read_batch and split on partitions read by the workers: the same rows, the same
    duplicates dropped, the same holdout cut among rows sharing a timestamp, the same sampled
    training and labelled rows, and the newest batch written to the same bytes, in row groups
    that span partitions."""
    from retrain.data import files
    from retrain.data.schema import CleaningPolicy, Schema, read_batch
    from retrain.data.splits import WindowPolicy, split
    from retrain.engine.batches import read_partitioned_batch, write_batch

    _, client = cluster
    monkeypatch.setattr(files, "ROW_GROUP_ROWS", 256)
    toy, cleaning = Schema.from_params(TOY), CleaningPolicy()
    policy = WindowPolicy(
        kind="all", holdout_fraction=0.4, max_train_rows=1000, max_labelled_rows=900, seed=3
    )
    paths = toy_history(tmp_path)
    local = [read_batch(path, toy, cleaning) for path in paths]
    for most in (None, 150):
        scratch = tmp_path / f"scratch-{most}"
        scratch.mkdir()
        dask = [
            read_partitioned_batch(client, path, toy, cleaning, scratch=scratch, most_rows=most)
            for path in paths
        ]
        assert [len(b.parts) for b in dask] == ([4, 4, 4] if most is None else [11, 11, 12])
        assert dask[-1].dropped_duplicates == local[-1].dropped_duplicates == 3
        for ours, theirs in zip(dask, local, strict=True):
            pd.testing.assert_frame_equal(ours.take(None).reset_index(drop=True), theirs.frame)
            assert ours.observed() == theirs.observed()
        a, b = split(dask, toy, policy), split(local, toy, policy)
        assert a.summary == b.summary and a.summary["train_rows"] == 1000
        for name in ("newest_labelled", "train", "holdout"):
            pd.testing.assert_frame_equal(
                getattr(a, name).reset_index(drop=True), getattr(b, name).reset_index(drop=True)
            )
        write_batch(tmp_path / "dask.parquet", a.newest_batch)
        files.write_parquet(tmp_path / "local.parquet", b.newest)
        assert (tmp_path / "dask.parquet").read_bytes() == (tmp_path / "local.parquet").read_bytes()
        groups = pq.ParquetFile(tmp_path / "dask.parquet").metadata
        assert [groups.row_group(i).num_rows for i in range(groups.num_row_groups)] == [256] * 5 + [220]


@pytest.mark.parametrize(
    "change, policy",
    [
        ("x1", {}),  # a number that does not parse
        ("duplicate", {"duplicates": "error"}),
        ("label", {}),  # one partition without labels in a labelled batch
        ("blank", {}),  # a feature blank in every row, across every partition
    ],
)
def test_a_bad_row_in_any_partition_is_the_in_process_error(cluster, tmp_path, change, policy):
    from retrain.data.schema import CleaningPolicy, Schema, read_batch
    from retrain.engine.batches import read_partitioned_batch
    from retrain.errors import DataError
    from tests.helpers import toy_raw

    _, client = cluster
    toy, cleaning = Schema.from_params(TOY), CleaningPolicy(**policy)
    raw = toy_raw("2025-03", n=1000, seed=4)
    if change == "x1":
        raw.loc[777, "x1"] = "12,5x"
    elif change == "duplicate":
        raw.loc[901, "key"] = raw.loc[123, "key"]
    elif change == "label":
        raw.loc[800:, "label"] = ""
    else:
        raw["x2"] = ""
    path = raw_parquet(tmp_path / "2025-03.parquet", raw, 200)
    with pytest.raises(DataError) as expected:
        read_batch(path, toy, cleaning)
    with pytest.raises(DataError) as got:
        read_partitioned_batch(client, path, toy, cleaning, scratch=tmp_path, most_rows=90)
    assert str(got.value) == str(expected.value)
    assert str(path) in str(got.value) and ("row" in str(got.value) or change == "blank")


def test_rows_without_a_label_dropped_on_two_workers_are_the_in_process_rows(cluster, tmp_path):
    """prepare.cleaning.blank_label: drop, with whole partitions blank in a labelled batch and a
    duplicated id whose newer row is blank."""
    from retrain.data.schema import CleaningPolicy, Schema, read_batch
    from retrain.engine.batches import read_partitioned_batch
    from tests.helpers import toy_raw

    _, client = cluster
    toy, cleaning = Schema.from_params(TOY), CleaningPolicy(blank_label="drop")
    raw = toy_raw("2025-03", n=1000, seed=4)
    raw.loc[[5, 333], "label"] = ""
    raw.loc[800:, "label"] = ""
    raw.loc[901, "key"] = raw.loc[123, "key"]
    path = raw_parquet(tmp_path / "2025-03.parquet", raw, 200)
    local = read_batch(path, toy, cleaning)
    assert (local.rows, local.dropped_duplicates, local.dropped_blank_labels) == (797, 1, 202)
    for most in (None, 90):
        scratch = tmp_path / f"scratch-{most}"
        scratch.mkdir()
        dask = read_partitioned_batch(client, path, toy, cleaning, scratch=scratch, most_rows=most)
        pd.testing.assert_frame_equal(dask.take(None).reset_index(drop=True), local.frame)
        assert (dask.dropped_duplicates, dask.dropped_blank_labels, dask.labelled) == (1, 202, True)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A repository of raw Parquet batches in row groups of 250 rows, whose champion v1.0.0 was
    evaluated in-process on a 600-row newest batch, and the bytes of what it recorded."""
    repo = create_repo(tmp_path_factory.mktemp("dask") / "repo", LOOP_PARAMS)
    repo.retrain("simulate", "--months", "3")
    for path in sorted((repo.path / "data/raw").glob("*.csv")):
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
        raw_parquet(path.with_suffix(".parquet"), raw, 250)
        path.unlink()
    repo.commit_all("three months of data, as Parquet")
    repo.repro()
    repo.retrain("promote")
    repo.repro()  # evaluate again, now with a champion
    assert repo.json("reports/evaluation.json")["champion"]["version"] == "v1.0.0"
    return repo, {rel: (repo.path / rel).read_bytes() for rel in OUTPUTS}


OUTPUTS = [
    "data/prepared/newest.parquet",
    "data/prepared/train.parquet",
    "reports/prepare.json",
    "reports/evaluation.json",
    "reports/decision.json",
    "reports/promotion.json",
    "reports/backtest.json",
    "reports/backtest.csv",
    "reports/backtest_drift.csv",
    "dvc.lock",
]


def recorded(repo) -> dict:
    return {rel: (repo.path / rel).read_bytes() for rel in OUTPUTS}


def test_dask_engine_repro_gives_the_in_process_decision_and_promotion_bytes(evaluated, cluster, tmp_path):
    """`RETRAIN_ENGINE=dask dvc repro -f` of prepare, evaluate and the backtest (replayed from
    its first batch), the stages whose batches the engine reads, writes the same bytes, so no
    later stage is out of date: changing the engine changes no recorded output. The stage starts
    a local cluster of its own when no scheduler is named; a wrong setting is one line."""
    repo, before = evaluated
    local, _ = cluster
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    dask = {
        "RETRAIN_ENGINE": "dask",
        "RETRAIN_DASK_SCHEDULER": local.scheduler_address,
        "RETRAIN_DASK_PARTITION_ROWS": "70",
        "RETRAIN_DASK_SCRATCH": str(scratch),
    }
    # The stages the engine runs, forced; the same outputs leave every other stage as it is.
    shutil.rmtree(repo.path / "data/backtest")  # its checkpoint: replay every batch on the cluster
    stages = ("prepare", "evaluate", "backtest")
    out = repo.run("dvc", "repro", "-f", "--single-item", *stages, env=dask).stdout
    assert "read 600 rows of the newest batch (9 partitions, Dask)" in out
    assert "replayed 3 of 3 batches" in out
    assert ran_stages(out) == set(stages)
    assert recorded(repo) == before
    assert "changed" not in repo.run("dvc", "status").stdout
    assert not list(scratch.iterdir())  # prepare's cleaned partitions, removed after it

    (repo.path / "reports/evaluation.json").unlink()
    own = repo.run(
        "python", "stages/evaluate.py", env={"RETRAIN_ENGINE": "dask", "RETRAIN_DASK_WORKERS": "2"}
    )
    assert "partitions, Dask" in own.stdout + own.stderr
    assert recorded(repo) == before
    assert "evaluate" not in repo.run("dvc", "status").stdout

    for env, expected in (
        ({"RETRAIN_ENGINE": "spark"}, "error: RETRAIN_ENGINE is 'spark', expected one of: local, dask\n"),
        (
            {
                "RETRAIN_ENGINE": "dask",
                "RETRAIN_DASK_SCHEDULER": "tcp://127.0.0.1:9",
                "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s",  # Dask's own setting
            },
            "error: RETRAIN_DASK_SCHEDULER=tcp://127.0.0.1:9: no Dask scheduler answered",
        ),
    ):
        failed = repo.run("python", "stages/evaluate.py", env=env, check=False)
        assert failed.returncode == 1 and failed.stderr.startswith(expected), failed.stderr
        assert failed.stderr.count("\n") == 1
    assert recorded(repo) == before


def test_a_worker_killed_mid_stage_is_replaced_and_the_stage_gives_the_same_bytes(evaluated):
    """SIGKILL a worker while it reads a partition: the nanny starts a new one, the scheduler
    runs the lost tasks again, and evaluate records what it recorded in-process."""
    import os
    import signal
    import subprocess
    import time

    from distributed import Client

    from retrain.engine.cluster import local_cluster
    from tests.helpers import command_env

    repo, before = evaluated
    pause = {"RETRAIN_PAUSE_AT": "partition:2:1.5"}  # each read of partition 2 waits
    with local_cluster(2, env=pause) as local, Client(local) as client:
        pids = client.run(os.getpid)
        stage = subprocess.Popen(
            ["python", "stages/evaluate.py"],
            cwd=repo.path,
            env=command_env(
                {
                    "RETRAIN_ENGINE": "dask",
                    "RETRAIN_DASK_SCHEDULER": local.scheduler_address,
                    "RETRAIN_DASK_PARTITION_ROWS": "70",
                }
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        killed = None
        deadline = time.monotonic() + 60
        while killed is None and time.monotonic() < deadline and stage.poll() is None:
            busy = [worker for worker, tasks in client.processing().items() if tasks]
            if busy:
                killed = pids[busy[0]]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.05)
        out, err = stage.communicate(timeout=120)
        assert killed is not None, "the stage ended before a worker was busy"
        assert stage.returncode == 0, err
        assert killed not in client.run(os.getpid).values()
    assert recorded(repo) == before


def test_a_bad_value_cleaned_on_a_worker_stops_prepare_with_the_in_process_line(evaluated, cluster):
    """A batch with an unparseable number in its fourth partition: prepare on the cluster stops
    with the one line the in-process engine prints (file, column, row), and nothing recorded
    changes."""
    repo, before = evaluated
    local, _ = cluster
    newest = sorted((repo.path / "data/raw").glob("*.parquet"))[-1]
    raw = pd.read_parquet(newest)
    raw.loc[400, "monthly_charges"] = "12,5x"
    raw_parquet(newest, raw, 250)
    try:
        lines = []
        for env in (
            {},
            {
                "RETRAIN_ENGINE": "dask",
                "RETRAIN_DASK_SCHEDULER": local.scheduler_address,
                "RETRAIN_DASK_PARTITION_ROWS": "70",
            },
        ):
            failed = repo.run("python", "stages/prepare.py", env=env, check=False)
            assert failed.returncode == 1
            lines.append(failed.stderr)
        assert lines[0] == lines[1]
        assert lines[1] == (
            f"error: data/raw/{newest.name}: column 'monthly_charges', row 401 (value '12,5x'): "
            "expected a number (1 such value(s))\n"
        )
        assert recorded(repo) == before
    finally:
        repo.git("checkout", "--", f"data/raw/{newest.name}")
