"""The story of production: every promotion and rollback, from the pointer's git history."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from retrain.errors import Refused
from retrain.registry.champion import POINTER
from retrain.registry.git import git


def pointer_history(root: str | Path) -> list[dict[str, Any]]:
    """Each commit that changed the pointer to a version, oldest first; a commit that only
    recorded a hold (the same model, a new baseline) is a `hold` event."""
    log = git(root, "log", "--reverse", "--format=%H%x00%cI", "--", POINTER)
    events: list[dict[str, Any]] = []
    for line in log.splitlines():
        commit, date = line.split("\x00")
        try:
            pointer = json.loads(git(root, "show", f"{commit}:{POINTER}"))
        except json.JSONDecodeError:
            continue
        if not pointer.get("version"):
            continue
        event = {
            "commit": commit,
            "committed_at": date,
            "version": pointer["version"],
            "model_commit": pointer.get("commit"),
            "action": pointer.get("action") or "promote",
            "as_of": pointer.get("promoted_as_of"),
            "trained_through": pointer.get("trained_through_period"),
            "window": pointer.get("window"),
            "rows": pointer.get("rows"),
            "metrics": pointer.get("metrics"),
            "reason": pointer.get("reason"),
            "pinned": bool(pointer.get("pinned")),
            "tuned": pointer.get("tuned"),
        }
        held = pointer.get("baseline") or {}
        same = bool(events) and events[-1]["model_commit"] == event["model_commit"]
        if same and pointer.get("unpinned") and events[-1].get("pinned"):
            event.update(action="unpin", as_of=events[-1]["as_of"], reason=pointer["unpinned"])
        elif held and same:
            event.update(
                action="hold", as_of=held.get("as_of"), metrics=held.get("metrics"), reason=held.get("reason")
            )
        events.append(event)
    return events


def in_production_at(events: list[dict[str, Any]], period: str, freq: str) -> dict[str, Any] | None:
    """The version serving when batch `period` arrived: the last change recorded before it."""
    import pandas as pd

    target = pd.Period(period, freq=freq)
    serving = None
    for event in events:
        if event["as_of"] and pd.Period(event["as_of"], freq=freq) < target:
            serving = event
    return serving


def window_text(window: list[str] | None) -> str:
    if not window:
        return "-"
    return window[0] if len(window) == 1 else f"{window[0]}..{window[-1]}"


def table(events: list[dict[str, Any]], production: str | None, primary: str) -> str:
    """A plain-text table, one row per promotion or rollback, production marked with '*'."""
    header = ["", "version", "action", "as of", "committed", "window", "rows", primary, "reason"]
    rows = []
    last = len(events) - 1
    for i, e in enumerate(events):
        value = (e.get("metrics") or {}).get(primary)
        rows.append(
            [
                "*" if i == last and e["version"] == production else "",
                e["version"],
                e["action"] + (" (tuned)" if e.get("tuned") and e["action"] == "promote" else ""),
                e["as_of"] or "-",
                e["committed_at"][:19].replace("T", " "),
                window_text(e.get("window")),
                str(e.get("rows") or "-"),
                "-" if value is None else f"{value:.4f}",
                textwrap.shorten(e.get("reason") or "", width=70, placeholder=" ..."),
            ]
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    return "\n".join(lines)


def previous_version(events: list[dict[str, Any]], current: str | None) -> str:
    """The version that was in production before `current`."""
    earlier = [e["version"] for e in events]
    while earlier and earlier[-1] == current:
        earlier.pop()
    if not earlier:
        raise Refused(f"no version was in production before {current}")
    return earlier[-1]
