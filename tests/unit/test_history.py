import pytest

from retrain.errors import Refused
from retrain.registry.history import in_production_at, previous_version, table, window_text


def event(version, as_of, action="promote"):
    return {
        "version": version,
        "as_of": as_of,
        "action": action,
        "committed_at": "2026-01-01T00:00:00",
        "window": ["2025-01", "2025-02"],
        "rows": 10,
        "metrics": {"roc_auc": 0.8},
        "reason": "r",
    }


EVENTS = [
    event("v1.0.0", "2025-03"),
    event("v1.1.0", "2025-05"),
    event("v1.0.0", "2025-05", "rollback"),
    event("v1.2.0", "2025-07"),
]


@pytest.mark.parametrize(
    "period,version",
    [
        ("2025-02", None),
        ("2025-03", None),
        ("2025-04", "v1.0.0"),
        ("2025-05", "v1.0.0"),
        ("2025-06", "v1.0.0"),
        ("2025-07", "v1.0.0"),
        ("2025-08", "v1.2.0"),
    ],
)
def test_in_production_at_is_the_last_change_before_the_batch(period, version):
    serving = in_production_at(EVENTS, period, "M")
    assert (serving and serving["version"]) == version


def test_previous_version_skips_the_current_one():
    assert previous_version(EVENTS, "v1.2.0") == "v1.0.0"
    assert previous_version(EVENTS[:2], "v1.1.0") == "v1.0.0"
    with pytest.raises(Refused, match="before v1.0.0"):
        previous_version(EVENTS[:1], "v1.0.0")


def test_table_marks_production_on_the_last_row():
    lines = table(EVENTS, "v1.2.0", "roc_auc").splitlines()
    assert len(lines) == 5 and lines[-1].startswith("*") and "v1.2.0" in lines[-1]
    assert not any(line.startswith("*") for line in lines[:-1])
    assert "2025-01..2025-02" in lines[1] and "0.8000" in lines[1]
    assert window_text(None) == "-" and window_text(["2025-01"]) == "2025-01"


def test_a_hold_is_listed_and_changes_neither_the_previous_version_nor_who_served():
    events = [*EVENTS, event("v1.2.0", "2025-09", "hold")]
    assert previous_version(events, "v1.2.0") == "v1.0.0"
    assert in_production_at(events, "2025-10", "M")["version"] == "v1.2.0"
    lines = table(events, "v1.2.0", "roc_auc").splitlines()
    assert "hold" in lines[-1] and lines[-1].startswith("*")


def test_a_long_reason_is_cut_at_a_word_and_marked():
    reason = "champion stays: roc_auc 0.7812 -> 0.7790 (-0.0022, needs >= +0.0050); guards checked: brier"
    lines = table([{**event("v1.0.0", "2025-03"), "reason": reason}], "v1.0.0", "roc_auc").splitlines()
    shown = lines[1].split("  ")[-1].strip()
    assert shown.endswith(" ...") and reason.startswith(shown[: -len(" ...")])
    assert len(shown) <= 70


def test_a_tuned_promotion_is_marked_and_a_rollback_to_it_is_not():
    tuned = {"trials": 20, "best_hyperparameters": {"C": 0.3}, "best_score": 0.8, "metric": "roc_auc"}
    events = [{**event("v1.0.0", "2025-03"), "tuned": tuned}, event("v1.1.0", "2025-05")]
    events.append({**event("v1.0.0", "2025-07", "rollback"), "tuned": tuned})
    lines = table(events, "v1.0.0", "roc_auc").splitlines()
    assert "promote (tuned)" in lines[1] and "(tuned)" not in lines[2] and "(tuned)" not in lines[3]
