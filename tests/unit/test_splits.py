import numpy as np
import pandas as pd
import pytest

from retrain.data import splits
from retrain.data.splits import HoldoutCut, WindowPolicy, split
from retrain.errors import DataError, TooFewRows


def test_holdout_is_newer_than_and_disjoint_from_training(toy_batch, toy_schema):
    batches = [toy_batch(p, seed=i) for i, p in enumerate(["2025-01", "2025-02", "2025-03"])]
    result = split(batches, toy_schema, WindowPolicy("all", 6, 0.4))
    assert result.train["ts"].max() <= result.holdout["ts"].min()
    train_keys = set(zip(result.train["key"], result.train["_period"], strict=True))
    hold_keys = set(zip(result.holdout["key"], result.holdout["_period"], strict=True))
    assert not train_keys & hold_keys
    assert set(result.holdout["_period"]) == {"2025-03"}
    assert 0.25 < len(result.holdout) / len(batches[-1].frame) < 0.55


def test_last_n_window_counts_the_newest_labelled_batch(toy_batch, toy_schema):
    batches = [toy_batch(f"2025-0{m}", seed=m) for m in range(1, 6)]
    result = split(batches, toy_schema, WindowPolicy("last_n", 2, 0.4))
    assert sorted(set(result.train["_period"])) == ["2025-04", "2025-05"]
    assert result.summary["train_periods"] == ["2025-04", "2025-05"]
    one = split(batches, toy_schema, WindowPolicy("last_n", 1, 0.4))
    assert set(one.train["_period"]) == {"2025-05"}


def test_unlabelled_newest_batch_is_newest_but_never_trained_on(toy_batch, toy_schema):
    batches = [toy_batch("2025-01"), toy_batch("2025-02", seed=1), toy_batch("2025-03", labelled=False)]
    result = split(batches, toy_schema, WindowPolicy())
    assert result.summary["newest_period"] == "2025-03"
    assert result.summary["holdout_period"] == "2025-02"
    assert "2025-03" not in set(result.train["_period"])
    assert not result.summary["newest_labelled"]


def test_two_files_for_one_period_are_refused(toy_batch, toy_schema):
    a, b = toy_batch("2025-01"), toy_batch("2025-01", seed=3)
    b.source = "data/raw/2025-01.parquet"
    with pytest.raises(DataError, match="period 2025-01 already comes from"):
        split([a, b], toy_schema, WindowPolicy())


def test_no_labelled_batch_is_an_error(toy_batch, toy_schema):
    with pytest.raises(DataError, match="no labelled batch"):
        split([toy_batch("2025-01", labelled=False)], toy_schema, WindowPolicy())


def test_window_policy_validates_params():
    with pytest.raises(DataError, match="prepare.window"):
        WindowPolicy.from_params({"window": "some"})
    with pytest.raises(DataError, match="holdout_fraction"):
        WindowPolicy.from_params({"holdout_fraction": 1.5})


def test_last_n_window_opens_only_the_newest_files_it_needs(toy_batch):
    from pathlib import Path

    from retrain.data.splits import window_batches

    labelled = {"2025-01": True, "2025-02": True, "2025-03": True, "2025-04": True, "2025-05": False}
    paths = [Path(f"data/raw/{p}.csv") for p in labelled]
    opened = []

    def read(path):
        opened.append(path.stem)
        return toy_batch(path.stem, n=20, labelled=labelled[path.stem])

    batches = window_batches(paths, read, WindowPolicy("last_n", 2))
    assert opened == ["2025-05", "2025-04", "2025-03"]
    assert [b.period for b in batches] == ["2025-03", "2025-04", "2025-05"]
    opened.clear()
    assert len(window_batches(paths, read, WindowPolicy("all"))) == 5 and len(opened) == 5


def test_two_files_for_one_period_are_refused_before_any_is_read():
    from pathlib import Path

    from retrain.data.splits import window_batches

    paths = [Path("data/raw/2025-01.csv"), Path("data/raw/2025-01.parquet")]
    with pytest.raises(DataError, match=r"2025-01.parquet: period 2025-01 already comes from"):
        window_batches(paths, lambda p: pytest.fail("read"), WindowPolicy("last_n", 1))


def keys(frame):
    return list(zip(frame["key"], frame["_period"], strict=True))


def test_train_cap_keeps_a_seeded_uniform_sample_of_the_window_in_order(toy_batch, toy_schema):
    batches = [toy_batch(f"2025-0{m}", n=400, seed=m) for m in range(1, 4)]
    whole = split(batches, toy_schema, WindowPolicy("all", 6, 0.4))
    capped = split(batches, toy_schema, WindowPolicy("all", 6, 0.4, max_train_rows=300))
    assert len(capped.train) == 300
    assert capped.summary["train_rows"] == 300
    assert capped.summary["train_window_rows"] == len(whole.train)
    position = {k: i for i, k in enumerate(keys(whole.train))}
    kept = [position[k] for k in keys(capped.train)]
    assert kept == sorted(kept)
    assert {"2025-01", "2025-02", "2025-03"} == set(capped.train["_period"])
    again = split(batches, toy_schema, WindowPolicy("all", 6, 0.4, max_train_rows=300))
    other = split(batches, toy_schema, WindowPolicy("all", 6, 0.4, max_train_rows=300, seed=1))
    assert keys(again.train) == keys(capped.train) != keys(other.train)
    assert keys(capped.holdout) == keys(whole.holdout)


def test_labelled_cap_keeps_the_holdout_among_the_scored_rows(toy_batch, toy_schema):
    batches = [toy_batch("2025-01", n=400), toy_batch("2025-02", n=1000, seed=2)]
    whole = split(batches, toy_schema, WindowPolicy("all", 6, 0.4))
    capped = split(batches, toy_schema, WindowPolicy("all", 6, 0.4, max_labelled_rows=200))
    assert len(capped.newest_labelled) == 200
    assert capped.summary["labelled_batch_rows"] == 1000
    assert len(capped.newest) == 1000
    assert set(keys(capped.holdout)) <= set(keys(capped.newest_labelled))
    assert set(keys(capped.holdout)) <= set(keys(whole.holdout))
    share = len(whole.holdout) / 1000
    assert len(capped.holdout) == round(200 * share)
    assert capped.train["ts"].max() < capped.holdout["ts"].min()
    assert keys(capped.train) == keys(whole.train)


def test_caps_above_the_row_counts_change_nothing(toy_batch, toy_schema):
    batches = [toy_batch("2025-01"), toy_batch("2025-02", seed=1)]
    whole = split(batches, toy_schema, WindowPolicy("all", 6, 0.4))
    capped = split(batches, toy_schema, WindowPolicy("all", 6, 0.4, 10_000, 10_000))
    for name in ("train", "holdout", "newest_labelled"):
        pd.testing.assert_frame_equal(getattr(capped, name), getattr(whole, name))
    assert capped.newest_labelled is capped.newest


@pytest.mark.parametrize("value", [50, "many", 1.5, True])
def test_row_caps_must_be_whole_numbers_of_at_least_100(value):
    with pytest.raises(DataError, match=r"prepare.max_rows.train = .*(equal to 100|integer)"):
        WindowPolicy.from_params({"max_rows": {"train": value}})


def test_row_caps_accept_null_and_refuse_unknown_keys():
    policy = WindowPolicy.from_params({"max_rows": {"train": None, "labelled": 500}})
    assert policy.max_train_rows is None and policy.max_labelled_rows == 500
    with pytest.raises(DataError, match="max_rows.holdout: unknown key; expected one of train, labelled"):
        WindowPolicy.from_params({"max_rows": {"holdout": 500}})


def test_rows_sharing_one_snapshot_date_are_split_by_a_seeded_hash_of_the_id(toy_batch, toy_schema):
    batches = [toy_batch(p, seed=i) for i, p in enumerate(["2025-01", "2025-02"])]
    for batch in batches:
        batch.frame["ts"] = pd.Period(batch.period, "M").start_time
    one = split(batches, toy_schema, WindowPolicy("all", 6, 0.4, seed=0))
    again = split(batches, toy_schema, WindowPolicy("all", 6, 0.4, seed=0))
    other = split(batches, toy_schema, WindowPolicy("all", 6, 0.4, seed=1))
    assert len(one.holdout) == 80 and (one.train["_period"] == "2025-02").sum() == 120
    assert list(one.holdout["key"]) == list(again.holdout["key"])
    assert set(one.holdout["key"]) != set(other.holdout["key"])
    assert not set(one.holdout["key"]) & set(one.train["key"])
    cut = HoldoutCut.from_dict(one.summary["holdout_cut"])
    later = cut.at_or_after(batches[-1].frame, "ts", "key")
    assert sorted(batches[-1].frame.loc[later, "key"]) == sorted(one.holdout["key"])


def test_ties_at_the_cut_are_split_so_the_holdout_is_the_asked_fraction(toy_batch, toy_schema):
    batch = toy_batch("2025-01", seed=3)  # 200 rows over 28 days: many rows share a day
    result = split([batch], toy_schema, WindowPolicy("all", 6, 0.4))
    assert len(result.holdout) == 80 and len(result.train) == 120


def test_a_one_row_batch_gives_advice_that_works(toy_batch, toy_schema):
    """TooFewRows, a DataError: prepare prints it; the backtest's step has no model yet there."""
    batch = toy_batch("2025-01", seed=3, n=1)
    with pytest.raises(TooFewRows, match="add an earlier labelled batch or more rows"):
        split([batch], toy_schema, WindowPolicy("all", 6, 0.4))


class Partitioned:
    """A batch cut into partitions of a few rows, seen as split sees a batch on a cluster."""

    def __init__(self, frame: pd.DataFrame, rows: int):
        self.parts = [frame.iloc[i : i + rows].reset_index(drop=True) for i in range(0, len(frame), rows)]

    @property
    def rows(self) -> int:
        return sum(self.part_rows())

    def part_rows(self) -> list[int]:
        return [len(part) for part in self.parts]

    def map_parts(self, func, columns, each=None, **kwargs):
        firsts = np.cumsum([0, *self.part_rows()[:-1]])
        return [
            func(part[columns], first=int(first), **{k: v[i] for k, v in (each or {}).items()}, **kwargs)
            for i, (part, first) in enumerate(zip(self.parts, firsts, strict=True))
        ]


@pytest.mark.parametrize("values", ["spread", "few distinct", "one value", "negative and huge"])
def test_the_kth_value_counted_over_partitions_is_the_one_a_full_sort_gives(values, monkeypatch):
    rng = np.random.default_rng(4)
    times = {
        "spread": rng.integers(0, 10**15, 997),
        "few distinct": rng.choice([5, 7, 7_000_000_000], 997),
        "one value": np.full(997, 1_700_000_000 * 10**9),
        "negative and huge": np.concatenate(
            [[np.iinfo(np.int64).min + 1, np.iinfo(np.int64).max], rng.integers(-(10**18), 10**18, 995)]
        ),
    }[values]
    frame = pd.DataFrame({"ts": times.astype("datetime64[ns]")})
    monkeypatch.setattr(splits, "SELECT_BINS", 4)  # many narrowing rounds on a small batch
    monkeypatch.setattr(splits, "SELECT_GATHER", 3)
    ordered = np.sort(times)
    for k in [0, 1, 498, 995, 996]:
        rank = splits.kth_smallest(Partitioned(frame, 100), splits.TimesOf("ts"), k)
        assert rank.value == ordered[k]
        assert (rank.smaller, rank.equal) == ((ordered < ordered[k]).sum(), (ordered == ordered[k]).sum())


@pytest.mark.parametrize("snapshot", [False, True])
def test_a_batch_in_partitions_gives_the_holdout_sample_and_cut_of_one_frame(snapshot, toy_batch, toy_schema):
    batch = toy_batch("2025-02", seed=5, n=700)
    if snapshot:
        batch.frame["ts"] = pd.Period(batch.period, "M").start_time
    policy = WindowPolicy("all", 6, 0.3, max_train_rows=300, max_labelled_rows=250, seed=3)
    whole = split([batch], toy_schema, policy)
    parts = Partitioned(batch.frame, 64)
    parts.period, parts.labelled, parts.source = batch.period, True, batch.source
    parts.dropped_duplicates = parts.dropped_blank_labels = 0
    parts.take_many = lambda positions: [batch.take(p) for p in positions]
    parts.observed = batch.observed
    cut = split([parts], toy_schema, policy)
    for name in ("train", "holdout", "newest_labelled"):
        pd.testing.assert_frame_equal(getattr(cut, name), getattr(whole, name))
    assert cut.summary == whole.summary
