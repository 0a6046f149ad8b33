"""`retrain serve`: a real HTTP server on 127.0.0.1 answering as `retrain predict` does, refusing
bad requests with one line, and following a bare origin through a promotion and a rollback
under load without a failed request."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import ALWAYS_PROMOTE, BIN, Repo, command_env

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`retrain serve` as its own process, stopped at the end of the test."""

    def __init__(self, cwd: Path, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cwd.parent / f"serve-{self.port}.log"
        self.proc = subprocess.Popen(
            [f"{BIN}/retrain", "serve", "--port", str(self.port), *args],
            cwd=cwd,
            env=command_env(),
            stdout=open(self.log, "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, seconds: float = 120) -> None:
        import httpx

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"not ready in {seconds} s:\n{self.log.read_text()[-3000:]}")

    def version(self) -> str | None:
        import httpx

        model = httpx.get(f"{self.url}/version", timeout=5).json()["model"]
        return model and model["version"]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def served(first_run_repo):
    repo = first_run_repo()  # the pipeline reads no serve key: the default first run, then the limits
    repo.set_params({"serve": {"max_rows": 50, "max_body_mb": 0.05}})
    repo.commit_all("serve limits")
    server = Server(repo.path)
    try:
        server.wait_ready()
        yield repo, server
    finally:
        server.stop()


def test_the_service_scores_exactly_as_retrain_predict_and_says_which_model_answered(served):
    import httpx

    repo, server = served
    newest = repo.path / "data/raw/2025-03.csv"
    rows = pd.read_csv(newest, dtype=str, keep_default_na=False).head(40)
    rows.to_csv(repo.path / "rows.csv", index=False)
    repo.retrain("predict", "rows.csv", "-o", "predicted.parquet")
    expected = pd.read_parquet(repo.path / "predicted.parquet")
    pointer = repo.json("models/champion.json")

    as_csv = httpx.post(
        f"{server.url}/predict",
        content=(repo.path / "rows.csv").read_bytes(),
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )
    as_json = httpx.post(f"{server.url}/predict", json=rows.to_dict(orient="records"), timeout=30)
    for answer in (as_csv, as_json):
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-Model-Version"] == pointer["version"] == "v1.0.0"
        assert answer.headers["X-Model-MD5"] == pointer["md5"]
        got = pd.DataFrame(answer.json()["predictions"])
        assert got["customer_id"].tolist() == expected["customer_id"].tolist()
        assert got["probability"].tolist() == expected["probability"].tolist()  # exact
        assert got["label"].tolist() == expected["label"].tolist()

    assert httpx.get(f"{server.url}/health").json() == {"status": "up"}
    assert httpx.get(f"{server.url}/ready").json()["md5"] == pointer["md5"]
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "retrain_rows_scored_total 80" in metrics
    assert f'retrain_model_info{{version="v1.0.0",md5="{pointer["md5"]}"}} 1' in metrics
    lines = server.log.read_text().splitlines()
    access = [json.loads(line.split(": ", 1)[1]) for line in lines if line.startswith("serve.access: ")]
    scored = [a for a in access if a["path"] == "/predict"]
    assert len(scored) == 2 and all(a["status"] == 200 and a["rows"] == 40 for a in scored)
    assert all(a["model"] == "v1.0.0" and a["ms"] > 0 for a in scored)


def test_bad_requests_get_one_clear_4xx_line_and_never_a_traceback(served):
    import httpx

    repo, server = served
    rows = pd.read_csv(repo.path / "data/raw/2025-03.csv", dtype=str, keep_default_na=False).head(5)
    records = rows.to_dict(orient="records")
    missing = [{k: v for k, v in r.items() if k != "tenure"} for r in records]
    wrong = [dict(r, tenure="abc") for r in records]
    cases = {
        "missing column": (dict(json=missing), 422, "missing column(s) 'tenure'"),
        "wrong type": (dict(json=wrong), 422, "column 'tenure', row 1 (value 'abc'): expected a number"),
        "too many rows": (dict(json=records * 11), 413, "more than 50 (serve.max_rows)"),
        "body too large": (
            dict(content=b"x" * 60_000, headers={"Content-Type": "text/csv"}),
            413,
            "larger than 0.05 MB",
        ),
        "not JSON": (
            dict(content=b"{not json", headers={"Content-Type": "application/json"}),
            400,
            "not JSON",
        ),
        "not a list of records": (dict(json={"a": 1}), 400, "expected a JSON list of records"),
        "other content type": (dict(content=b"x", headers={"Content-Type": "text/xml"}), 415, "text/xml"),
        "nested value": (dict(json=[dict(records[0], tenure=[1])]), 422, "expected a number or text"),
    }
    for name, (request, status, message) in cases.items():
        answer = httpx.post(f"{server.url}/predict", timeout=30, **request)
        assert answer.status_code == status, (name, answer.text)
        assert message in answer.json()["error"], (name, answer.text)
        assert "Traceback" not in answer.text and "\n" not in answer.json()["error"], name
    missing_page = httpx.get(f"{server.url}/nope")
    assert missing_page.status_code == 404 and missing_page.headers["X-Model-Version"] == "v1.0.0"
    assert httpx.get(f"{server.url}/predict").status_code == 405
    assert httpx.post(f"{server.url}/hooks/registry").status_code == 403
    assert "Traceback" not in server.log.read_text()


def load(url: str, stop: threading.Event, seen: list, seconds: float = 120, most: int = 3000) -> None:
    """One request at a time, until told to stop, bounded in count and time."""
    import httpx

    body = "customer_id,tenure\n"  # replaced below by a real row
    with httpx.Client(timeout=10) as client:
        deadline = time.monotonic() + seconds
        while not stop.is_set() and time.monotonic() < deadline and len(seen) < most:
            started = time.monotonic()
            try:
                answer = client.post(
                    f"{url}/predict", content=load.body, headers={"Content-Type": "text/csv"}
                )
                seen.append((started, answer.status_code, answer.headers.get("X-Model-Version")))
            except httpx.HTTPError as err:
                seen.append((started, repr(err), None))
            time.sleep(0.02)
    del body


def test_a_followed_origin_swaps_versions_under_load_without_a_failed_request(first_run_repo, tmp_path):
    origin, remote = tmp_path / "origin.git", tmp_path / "dvc-remote"
    Repo(tmp_path).run("git", "init", "-q", "--bare", "-b", "main", str(origin))
    project = first_run_repo(ALWAYS_PROMOTE)
    project.run("dvc", "remote", "add", "-d", "storage", str(remote))
    project.commit_all("first model")
    project.run("dvc", "push", "-q")
    project.git("remote", "add", "origin", str(origin))
    project.git("push", "-q", "origin", "main", "--tags")
    rows = pd.read_csv(project.path / "data/raw/2025-03.csv", dtype=str, keep_default_na=False).head(1)
    load.body = rows.to_csv(index=False).encode()

    server = Server(
        project.path, "--follow", str(origin), "--workdir", str(tmp_path / "followed"), "--poll-seconds", "1"
    )
    stop, seen = threading.Event(), []
    try:
        server.wait_ready()
        assert server.version() == "v1.0.0"
        thread = threading.Thread(target=load, args=(server.url, stop, seen), daemon=True)
        thread.start()

        project.next_month()
        project.repro()
        project.retrain("promote")
        project.repro()
        project.commit_all("Evaluate")
        project.git("push", "-q", "origin", "main", "--tags")  # the tags, before the model bytes
        failure = wait_for_error(server)
        assert "v1.1.0" not in str(server.version()) and server.version() == "v1.0.0", failure
        project.run("dvc", "push", "-q", "--all-tags")  # as the job does: the tagged versions' bytes
        wait_for(server, "v1.1.0")
        time.sleep(2)

        project.retrain("rollback", "--previous", "--reason", "serving test")
        project.git("push", "-q", "origin", "main", "--tags")
        wait_for(server, "v1.0.0")
        time.sleep(2)  # the load goes on past the rollback
    finally:
        stop.set()
        server.stop()
    failed = [s for s in seen if s[1] != 200]
    assert not failed, failed[:5]
    versions = [v for _, _, v in seen]
    assert set(versions) == {"v1.0.0", "v1.1.0"}, set(versions)
    first_new = next(t for t, _, v in seen if v == "v1.1.0")
    back = next(t for t, _, v in seen if t > first_new and v == "v1.0.0")
    late_old = [t for t, _, v in seen if first_new + 1.0 < t < back and v == "v1.0.0"]
    assert not late_old, "the old model answered more than a second after the switch"
    late_new = [t for t, _, v in seen if t > back + 1.0 and v == "v1.1.0"]
    assert not late_new, "the rolled-back model answered more than a second after the rollback"
    log = server.log.read_text()
    assert "in service: churn-model v1.1.0" in log and "was v1.1.0" in log and "Traceback" not in log


def wait_for(server: Server, version: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.version() == version:
            return
        time.sleep(0.2)
    raise AssertionError(f"the service never served {version}:\n{server.log.read_text()[-3000:]}")


def wait_for_error(server: Server, seconds: float = 60) -> str:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        error = httpx.get(f"{server.url}/version", timeout=5).json()["last_error"]
        if error:
            assert httpx.get(f"{server.url}/ready", timeout=5).status_code == 200
            assert "retrain_model_load_failures_total 0" not in httpx.get(f"{server.url}/metrics").text
            return error
        time.sleep(0.2)
    raise AssertionError(f"no load failure reported:\n{server.log.read_text()[-3000:]}")
