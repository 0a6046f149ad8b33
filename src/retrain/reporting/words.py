"""Values as a person reads them in a report's tables: numbers without exponents, no Python
reprs, no "None", and each trigger's state with the reason it did or did not count."""

from __future__ import annotations

import re
from typing import Any

from retrain.records import Trigger

NOTHING = "–"


def number(value: float, digits: int = 4) -> str:
    """4 decimals; thousands separated; a tiny non-zero value as "< 0.0001", never an exponent."""
    if value != value:  # NaN
        return NOTHING
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if value != 0 and abs(value) < 10**-digits:
        return f"{'-' if value < 0 else ''}< {10**-digits:.{digits}f}"
    return f"{value:.{digits}f}"


def name(text: str) -> str:
    """A key as words: `new_category` reads "new category"."""
    return text.replace("_", " ")


def cell(value: Any) -> str:
    """Any recorded value as table text."""
    if value is None:
        return NOTHING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return number(value)
    if isinstance(value, dict):
        return "; ".join(f"{name(str(k))}: {cell(v)}" for k, v in value.items()) or NOTHING
    if isinstance(value, list | tuple):
        return ", ".join(name(cell(v)) for v in value) or "none"
    return str(value)


def trigger_state(trigger: Trigger) -> str:
    """off, quiet, fired and counted, or fired and not counted (with why it did not count)."""
    if not trigger["enabled"]:
        return "off"
    if not trigger["fired"]:
        value, threshold = trigger["value"], trigger["threshold"]
        tested = re.search(r"\bp=([0-9.e-]+)", trigger["detail"])
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (value, threshold))
        if tested and numbers and value >= threshold:
            return f"quiet: past the threshold, but not significant (p={tested.group(1)})"
        return "quiet"
    if trigger.get("counted", True):
        return "fired, counted"
    if trigger.get("answered"):
        return "fired, not counted: answered by a challenger that lost"
    if trigger.get("waiting"):
        return f"fired, not counted: no labels newer than {trigger['waiting']}, which the champion learned"
    return "fired, not counted: no performance loss confirms it"


def trigger_kind(trigger: Trigger) -> str:
    """counted, uncounted (fired, not counted), quiet or off: the class a report styles it by."""
    state = trigger_state(trigger)
    if state == "fired, counted":
        return "counted"
    return "uncounted" if state.startswith("fired") else state.split(":")[0]


def trigger_value(trigger: Trigger) -> str:
    """The measured value; empty for a yes/no trigger whose detail says it all."""
    value = trigger["value"]
    if isinstance(value, bool) and isinstance(trigger["threshold"], bool):
        return ""
    return cell(value)


def trigger_threshold(trigger: Trigger) -> str:
    if isinstance(trigger["threshold"], bool):
        return ""
    return cell(trigger["threshold"])


def ordered_triggers(triggers: list[Trigger]) -> list[Trigger]:
    """Counted first, then fired and not counted, then quiet, then off; params order within."""

    rank = {"counted": 0, "uncounted": 1, "quiet": 2, "off": 3}
    return sorted(triggers, key=lambda t: rank[trigger_kind(t)])
