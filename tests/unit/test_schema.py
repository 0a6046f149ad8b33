import pandas as pd
import pytest

from retrain.data.schema import PERIOD, CleaningPolicy, Schema, clean_numeric, validate_batch
from retrain.errors import DataError
from tests.helpers import TOY, toy_raw


def check(raw, schema, policy=None, source="data/raw/2025-03.csv"):
    return validate_batch(raw, source, schema, policy or CleaningPolicy())


def test_clean_batch_has_typed_columns_and_period(toy_schema):
    batch = check(toy_raw("2025-03"), toy_schema)
    frame = batch.frame
    assert batch.labelled and batch.period == "2025-03"
    assert frame["x1"].dtype == "float64" and frame["x2"].dtype == "float64"
    assert str(frame["ts"].dtype).startswith("datetime64")
    assert set(frame["label"].unique()) <= {0, 1}
    assert (frame[PERIOD] == "2025-03").all()


def test_schema_requires_every_key():
    broken = {k: v for k, v in TOY.items() if k != "target"}
    with pytest.raises(DataError, match="schema.target is required"):
        Schema.from_params(broken)


def test_schema_refuses_a_column_named_twice():
    with pytest.raises(DataError, match="twice: x1"):
        Schema.from_params({**TOY, "categorical": ["x1"]})


def test_missing_column_names_the_file_and_column(toy_schema):
    raw = toy_raw("2025-03").drop(columns=["x2"])
    with pytest.raises(DataError, match=r"data/raw/2025-03.csv: missing column\(s\) 'x2'"):
        check(raw, toy_schema)


def test_header_only_is_refused(toy_schema):
    raw = toy_raw("2025-03").iloc[:0]
    with pytest.raises(DataError, match="header only"):
        check(raw, toy_schema)


def test_text_in_numeric_column_names_row_and_value(toy_schema):
    raw = toy_raw("2025-03")
    raw.loc[4, "x2"] = "lots"
    with pytest.raises(DataError, match=r"column 'x2', row 5 \(value 'lots'\): expected a number"):
        check(raw, toy_schema)


def test_unparseable_numbers_become_missing_when_policy_says_so(toy_schema):
    raw = toy_raw("2025-03")
    raw.loc[4, "x2"] = "lots"
    batch = check(raw, toy_schema, CleaningPolicy(unparseable_numeric="missing"))
    assert pd.isna(batch.frame.loc[4, "x2"]) and batch.unparseable == {"x2": 1}


def test_blank_numbers_are_missing_or_an_error_by_policy(toy_schema):
    raw = toy_raw("2025-03")
    raw.loc[2, "x1"] = "  "
    assert pd.isna(check(raw, toy_schema).frame.loc[2, "x1"])
    with pytest.raises(DataError, match="row 3.*blank value"):
        check(raw, toy_schema, CleaningPolicy(blank_numeric="error"))


def test_thousands_separators_and_spaces_parse_as_numbers():
    col = pd.Series([" 1,234.5", "12", "1,000,000", "-3.5 "])
    values, unparseable = clean_numeric(col, "x", CleaningPolicy(), "f.csv")
    assert unparseable == 0
    assert values.tolist() == [1234.5, 12.0, 1_000_000.0, -3.5]


def test_thousands_separators_are_an_error_when_text_numbers_are_refused():
    with pytest.raises(DataError, match="row 1 \\(value '1,234'\\)"):
        clean_numeric(pd.Series(["1,234"]), "x", CleaningPolicy(text_numeric="error"), "f.csv")


def test_infinity_is_refused():
    with pytest.raises(DataError, match="row 2.*finite"):
        clean_numeric(pd.Series(["1", "inf"]), "x", CleaningPolicy(), "f.csv")


def test_unknown_label_is_refused(toy_schema):
    raw = toy_raw("2025-03")
    raw.loc[7, "label"] = "maybe"
    with pytest.raises(DataError, match=r"column 'label', row 8 \(value 'maybe'\): expected '1' or '0'"):
        check(raw, toy_schema)


def test_blank_label_in_a_labelled_batch_is_refused_with_the_option_that_drops_it(toy_schema):
    raw = toy_raw("2025-03")
    raw.loc[3, "label"] = ""
    with pytest.raises(DataError, match=r"row 4.*blank label.*prepare.cleaning.blank_label: drop"):
        check(raw, toy_schema)


def test_rows_of_a_labelled_batch_whose_label_is_blank_are_dropped_when_the_policy_says_so(toy_schema):
    raw = toy_raw("2025-03", n=20)
    raw.loc[[3, 15, 16, 17, 18, 19], "label"] = ""  # injuries no longer noted from row 16 on
    raw.loc[18, "key"] = raw.loc[2, "key"]  # a newer row of id 2, not labelled yet: both go
    batch = check(raw, toy_schema, CleaningPolicy(blank_label="drop"))
    assert batch.labelled and batch.dropped_duplicates == 1 and batch.dropped_blank_labels == 6
    kept = raw.drop(index=[2, 3, 15, 16, 17, 18, 19])
    assert batch.frame["key"].tolist() == kept["key"].tolist()
    assert batch.frame["label"].tolist() == kept["label"].astype(int).tolist()
    assert batch.frame["label"].dtype == "int8"
    unlabelled = check(toy_raw("2025-03", labelled=False), toy_schema, CleaningPolicy(blank_label="drop"))
    assert not unlabelled.labelled and unlabelled.rows == 200 and unlabelled.dropped_blank_labels == 0


def test_a_batch_whose_every_labelled_row_has_a_newer_blank_one_is_refused(toy_schema):
    raw = toy_raw("2025-03", n=4)
    raw.loc[2:3, "key"] = raw.loc[0:1, "key"].to_numpy()
    raw.loc[2:3, "label"] = ""
    with pytest.raises(DataError, match=r"2025-03.csv: every labelled row has a later row of its id"):
        check(raw, toy_schema, CleaningPolicy(blank_label="drop"))


def test_batch_without_labels_is_unlabelled_not_an_error(toy_schema):
    batch = check(toy_raw("2025-03", labelled=False), toy_schema)
    assert not batch.labelled and batch.frame["label"].isna().all()
    without_column = check(toy_raw("2025-03").drop(columns=["label"]), toy_schema)
    assert not without_column.labelled


def test_dates_must_parse_and_fall_in_the_file_period(toy_schema):
    raw = toy_raw("2025-03")
    raw.loc[1, "ts"] = "not a date"
    with pytest.raises(DataError, match="column 'ts', row 2.*expected a date$"):
        check(raw, toy_schema)
    raw = toy_raw("2025-03")
    raw.loc[0, "ts"] = "2025-04-02"
    with pytest.raises(DataError, match="expected a date within period 2025-03"):
        check(raw, toy_schema)


def test_unix_time_in_seconds_or_milliseconds_is_read_as_utc_times():
    raw = toy_raw("2025-03")
    seconds = (pd.to_datetime(raw["ts"]) - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    expected = check(raw, Schema.from_params(TOY)).frame["ts"]
    in_seconds = Schema.from_params({**TOY, "time_unit": "s"})
    for schema, numbers in [
        (in_seconds, seconds.astype(str)),
        (Schema.from_params({**TOY, "time_unit": "ms"}), (seconds * 1000).astype(str)),
        (in_seconds, seconds),  # typed, as a Parquet int64 column arrives
    ]:
        pd.testing.assert_series_equal(check(raw.assign(ts=numbers), schema).frame["ts"], expected)
    text = raw.assign(ts=seconds.astype(str))
    text.loc[1, "ts"] = "2025-03-02"
    with pytest.raises(DataError, match=r"row 2 \(value '2025-03-02'\): expected a number of seconds since"):
        check(text, in_seconds)
    with pytest.raises(
        DataError, match=r"expected a date \(for Unix time, .* set schema.time_unit: s or ms\)$"
    ):
        check(raw.assign(ts=seconds.astype(str)), Schema.from_params(TOY))
    with pytest.raises(DataError, match="schema.time_unit"):
        Schema.from_params({**TOY, "time_unit": "minutes"})


def test_file_name_must_be_a_period(toy_schema):
    with pytest.raises(DataError, match="file name 'latest' is not a period"):
        check(toy_raw("2025-03"), toy_schema, source="data/raw/latest.csv")


def test_a_period_flag_is_named_as_a_value_not_a_file_name():
    from retrain.data.schema import parse_period

    with pytest.raises(DataError, match=r"^--until: value '2025-13' is not a period"):
        parse_period("2025-13", "M", "--until")


def test_a_weekly_batch_is_named_by_its_first_day_and_holds_only_that_week():
    weekly = Schema.from_params({**TOY, "period": "W"})
    raw = toy_raw("2025-07").assign(ts="2025-07-06")
    raw.loc[0, "ts"] = "2025-06-30"
    batch = check(raw, weekly, source="data/raw/2025-06-30.csv")
    assert batch.period == "2025-06-30" and (batch.frame[PERIOD] == "2025-06-30").all()
    raw.loc[1, "ts"] = "2025-07-07"
    with pytest.raises(DataError, match="row 2.*expected a date within period 2025-06-30/2025-07-06"):
        check(raw, weekly, source="data/raw/2025-06-30.csv")


def test_a_weekly_file_named_by_another_day_of_its_week_is_told_the_first_day():
    from retrain.data.schema import parse_period

    with pytest.raises(
        DataError, match=r"'2025-07-02' is not a period of frequency 'W' \(expected '2025-06-30'"
    ):
        parse_period("2025-07-02", "W", "data/raw/2025-07-02.csv")
    assert str(parse_period("2025-07-01", "W-MON", "f") + 1) == "2025-07-08/2025-07-14"
    # the params model checks the grammar only (without pandas); what pandas refuses beyond it
    # is one params error where the first period is read, not a traceback
    with pytest.raises(
        DataError, match=r"^params.yaml: schema.period 'M-SUN' is not a pandas period frequency"
    ):
        parse_period("2025-07", "M-SUN", "data/raw/2025-07.csv")


def test_duplicated_ids_keep_the_last_row_or_fail_by_policy(toy_schema):
    raw = toy_raw("2025-03", n=10)
    raw.loc[9, "key"] = raw.loc[0, "key"]
    batch = check(raw, toy_schema)
    assert len(batch.frame) == 9 and batch.dropped_duplicates == 1
    assert batch.frame["key"].is_unique
    kept = batch.frame.loc[batch.frame["key"] == raw.loc[0, "key"], "x1"].iloc[0]
    assert kept == float(raw.loc[9, "x1"])
    with pytest.raises(DataError, match="duplicated id"):
        check(raw, toy_schema, CleaningPolicy(duplicates="error"))


def test_duplicated_header_is_refused(toy_schema):
    raw = toy_raw("2025-03")
    raw.columns = [*raw.columns[:-1], "x1"]
    with pytest.raises(DataError, match="'x1' appears twice"):
        check(raw, toy_schema)


def test_blank_id_is_refused(toy_schema):
    raw = toy_raw("2025-03")
    raw.loc[5, "key"] = ""
    with pytest.raises(DataError, match="row 6.*blank id"):
        check(raw, toy_schema)


def test_extra_columns_are_ignored_and_noted(toy_schema):
    raw = toy_raw("2025-03")
    raw["surprise"] = "x"
    batch = check(raw, toy_schema)
    assert "surprise" not in batch.frame.columns
    assert batch.extra_columns == ["surprise"]


def test_cleaning_policy_rejects_unknown_values():
    with pytest.raises(DataError, match="prepare.cleaning.duplicates"):
        CleaningPolicy.from_params({"duplicates": "sometimes"})


def test_rows_to_score_are_cleaned_like_a_batch_and_need_no_time_or_label(toy_schema):
    from retrain.data.schema import validate_features

    raw = toy_raw("2025-01", n=20).drop(columns=["ts", "label"])
    raw.loc[3, "x2"] = "1,234"
    rows = validate_features(raw, "to_score.csv", toy_schema, CleaningPolicy())
    batch = validate_batch(
        toy_raw("2025-01", n=20).assign(x2=raw["x2"]), "data/raw/2025-01.csv", toy_schema, CleaningPolicy()
    )
    assert rows["x2"][3] == 1234.0
    pd.testing.assert_frame_equal(rows, batch.frame[["key", "x1", "x2", "colour"]])


def test_rows_to_score_missing_a_feature_name_the_file_and_column(toy_schema):
    from retrain.data.schema import validate_features

    raw = toy_raw("2025-01", n=5).drop(columns=["colour"])
    with pytest.raises(DataError, match=r"^to_score.csv: missing column\(s\) 'colour'"):
        validate_features(raw, "to_score.csv", toy_schema, CleaningPolicy())
    raw = toy_raw("2025-01", n=5)
    raw.loc[2, "x1"] = "abc"
    with pytest.raises(DataError, match=r"to_score.csv: column 'x1', row 3 \(value 'abc'\)"):
        validate_features(raw, "to_score.csv", toy_schema, CleaningPolicy())


def test_bounds_refuse_impossible_values_or_blank_them_by_policy(toy_schema):
    raw = toy_raw("2025-03", n=10)
    raw.loc[4, "x2"] = "-3"
    policy = CleaningPolicy.from_params({"bounds": {"x2": [0, None]}})
    with pytest.raises(DataError, match=r"column 'x2', row 5 \(value '-3'\): expected at least 0"):
        check(raw, toy_schema, policy)
    lenient = CleaningPolicy.from_params({"bounds": {"x2": [0, 50]}, "out_of_bounds": "missing"})
    cleaned = check(raw, toy_schema, lenient).frame["x2"]
    assert cleaned.isna().sum() == 1 + (pd.to_numeric(raw["x2"]) > 50).sum()
    with pytest.raises(DataError, match=r"prepare.cleaning.bounds.x2.1 is required"):
        CleaningPolicy.from_params({"bounds": {"x2": [0]}})


def test_a_feature_blank_in_every_row_is_refused_unless_kept(toy_schema):
    raw = toy_raw("2025-03", n=10).assign(colour="")
    with pytest.raises(DataError, match=r"column 'colour' is blank in every row"):
        check(raw, toy_schema)
    kept = check(raw, toy_schema, CleaningPolicy(all_blank="keep")).frame
    assert kept["colour"].isna().all()


def test_a_period_after_today_is_refused(toy_schema):
    raw = toy_raw("2025-03", n=5)
    with pytest.raises(DataError, match=r"period 2025-03 is in the future \(today is 2025-02-27\)"):
        validate_batch(
            raw, "data/raw/2025-03.csv", toy_schema, CleaningPolicy(), today=pd.Timestamp("2025-02-27")
        )


def test_file_names_must_spell_the_period_exactly(toy_schema):
    from retrain.data.schema import parse_period

    assert str(parse_period("2025-07", "M", "x")) == "2025-07"
    for name in ("april", "2025-7", "2025-07-01"):
        with pytest.raises(DataError, match=r"is not a period of frequency 'M'"):
            parse_period(name, "M", f"data/raw/{name}.csv")


def test_mixed_time_zones_are_one_clear_error(toy_schema):
    from tests.helpers import toy_raw

    raw = toy_raw("2025-01")
    raw.loc[0, "ts"], raw.loc[1, "ts"] = "2025-01-03T00:00:00+00:00", "2025-01-04T00:00:00+02:00"
    with pytest.raises(
        DataError,
        match=r"2025-01.csv: column 'ts' mixes time zones "
        r"\('\+00:00', '\+02:00', 'none'\)",
    ):
        validate_batch(raw, "2025-01.csv", toy_schema, CleaningPolicy())


def test_a_huge_bad_value_is_shown_cut_in_the_error_line(toy_schema):
    from tests.helpers import toy_raw

    raw = toy_raw("2025-01")
    raw.loc[3, "x1"] = "z" * 5_000_000
    with pytest.raises(DataError, match=r"row 4 \(value 'z{57}\.\.\. \(5000000 chars\)'\)") as err:
        validate_batch(raw, "2025-01.csv", toy_schema, CleaningPolicy())
    assert len(str(err.value)) < 300


def test_numbers_parse_to_the_same_doubles_as_pandas_and_bad_ones_fall_back():
    import numpy as np

    from retrain.data.schema import _as_float, _as_text

    rng = np.random.default_rng(0)
    values = rng.normal(0, 1e3, 20_000).tolist()
    texts = [repr(v) for v in values] + [f"{v:.17g}" for v in values] + [f"{v:.2f}" for v in values]
    texts += ["1e5", "-0", "+3.5", ".5", "5.", "inf", "-Infinity", "nan", "1E-320", "00012", ""]
    text = _as_text(pd.Series(texts, dtype="str"))
    expected = np.asarray(pd.to_numeric(text.astype(object), errors="coerce"), dtype="float64")
    np.testing.assert_array_equal(_as_float(text).to_numpy(), expected)
    mixed = _as_text(pd.Series(["1.5", "1,5", "abc", " 2 ", None], dtype="str"))
    np.testing.assert_array_equal(_as_float(mixed).to_numpy(), [1.5, np.nan, np.nan, 2.0, np.nan])


def test_text_is_trimmed_and_blanks_are_missing_as_pandas_strip_does():
    from retrain.data.schema import _as_text

    raw = pd.Series([" a", "b ", "\u00a0c\t", "", "  ", None, "d"], dtype="str")
    expected = raw.astype("string").str.strip()
    expected = expected.mask(expected == "")
    assert _as_text(raw).equals(expected)
    assert _as_text(pd.Series([1, None, 3], dtype="object")).tolist() == ["1", pd.NA, "3"]
