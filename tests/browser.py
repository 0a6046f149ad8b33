"""Headless Chromium for tests: load a local page offline, record its network requests."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--hide-scrollbars",
]


def chromium() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


@dataclass
class PageLoad:
    dom: str
    requests: list[str]
    screenshot: Path | None


def page_requests(net_log: Path) -> list[str]:
    """URLs the page itself asked for: requests whose initiator is an origin (the browser's own
    background requests carry 'not an origin')."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start
        and "url" in (e.get("params") or {})
        and e["params"].get("initiator") != "not an origin"
    ]


def load(page: Path, screenshot: Path | None = None, size: str = "1200,3200") -> PageLoad:
    """Open `page` twice in a fresh profile: once for the DOM after load, once for a screenshot."""
    browser = chromium()
    assert browser, "chromium is not installed (apt-get install chromium)"
    with tempfile.TemporaryDirectory() as tmp:
        net_log = Path(tmp) / "net.json"
        common = [browser, *FLAGS, f"--user-data-dir={tmp}/profile", f"--window-size={size}"]
        dom = subprocess.run(
            [*common, f"--log-net-log={net_log}", "--dump-dom", page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        requests = page_requests(net_log)
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [*common, f"--screenshot={screenshot}", page.resolve().as_uri()],
                capture_output=True,
                timeout=120,
                check=True,
            )
    return PageLoad(dom, requests, screenshot)
