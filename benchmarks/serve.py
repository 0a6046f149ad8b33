"""Benchmark: `retrain serve` against a bare endpoint serving the same model without validation.

    python benchmarks/serve.py              # 300 one-row and 60 1,000-row requests, then 5 s of load

Builds a temporary repository (three simulated months, `dvc repro`, `retrain promote`), starts
`retrain serve` and a minimal Starlette app on uvicorn that loads the same verified model and
scores a posted CSV with `predict_proba` (no cleaning, no checks, no headers, no metrics), then
measures both in turns from one client on 127.0.0.1: p50 and p99 latency of 1-row and 1,000-row
requests, and the throughput of 1-row requests from 8 concurrent clients. Prints one table with
the ratios. Nothing is written outside a temporary folder.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import create_repo  # noqa: E402

BASELINE = textwrap.dedent('''\
    """The minimal baseline: the same model, a CSV body, predict_proba, JSON back."""
    import io
    import sys

    import pandas as pd
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from retrain.registry.champion import load_champion
    from retrain.data.schema import Schema
    from retrain.params import load

    schema = Schema.from_params(load("params.yaml")["schema"])
    model = load_champion(".").model

    async def predict(request):
        rows = pd.read_csv(io.BytesIO(await request.body()))
        proba = model.predict_proba(rows[list(schema.features)])[:, 1]
        return JSONResponse({"probability": proba.tolist()})

    uvicorn.run(Starlette(routes=[Route("/predict", predict, methods=["POST"])]),
                host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def started(cmd: list[str], cwd: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{cmd[0]} did not start")


def latencies(url: str, body: bytes, n: int, kind: str = "text/csv") -> list[float]:
    out = []
    with httpx.Client(timeout=30) as client:
        for _ in range(n):
            start = time.perf_counter()
            answer = client.post(url, content=body, headers={"Content-Type": kind})
            out.append(time.perf_counter() - start)
            assert answer.status_code == 200, answer.text
    return out


async def throughput(url: str, body: bytes, seconds: float = 5.0, clients: int = 8) -> float:
    done = 0
    deadline = time.monotonic() + seconds

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            answer = await client.post(url, content=body, headers={"Content-Type": "text/csv"})
            assert answer.status_code == 200
            done += 1

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(one(client) for _ in range(clients)))
    return done / seconds


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="retrain-serve-bench-"))
    procs = []
    try:
        repo = create_repo(work / "repo")
        os.environ.setdefault("DVC_NO_ANALYTICS", "1")
        repo.first_run()
        rows = pd.read_csv(repo.path / "data/raw/2025-03.csv", dtype=str, keep_default_na=False)
        one = rows.head(1).to_csv(index=False).encode()
        many = pd.concat([rows] * 3).head(1000).to_csv(index=False).encode()
        (repo.path / "baseline.py").write_text(BASELINE)
        bin_dir = Path(sys.executable).parent
        ports = {"retrain serve": free_port(), "bare endpoint": free_port()}
        procs.append(
            started(
                [str(bin_dir / "retrain"), "serve", "--port", str(ports["retrain serve"])],
                repo.path,
                ports["retrain serve"],
            )
        )
        procs.append(
            started(
                [sys.executable, "baseline.py", str(ports["bare endpoint"])],
                repo.path,
                ports["bare endpoint"],
            )
        )
        results: dict[str, dict[str, float]] = {name: {} for name in ports}
        for port in ports.values():
            latencies(f"http://127.0.0.1:{port}/predict", one, 30)  # warm up
        for _ in range(3):
            for name, port in ports.items():
                url = f"http://127.0.0.1:{port}/predict"
                r = results[name]
                r.setdefault("one", []).extend(latencies(url, one, 100))
                r.setdefault("many", []).extend(latencies(url, many, 20))
                r.setdefault("rps", []).append(asyncio.run(throughput(url, one, seconds=5 / 3)))
        print("\n| measure | retrain serve | bare endpoint | ratio |")
        print("|---|---|---|---|")
        rows_out = [
            ("1-row p50, ms", lambda r: p(r["one"], 50)),
            ("1-row p99, ms", lambda r: p(r["one"], 99)),
            ("1,000-row p50, ms", lambda r: p(r["many"], 50)),
            ("1,000-row p99, ms", lambda r: p(r["many"], 99)),
            ("1-row requests/s, 8 clients", lambda r: statistics.median(r["rps"])),
        ]
        for label, measure in rows_out:
            ours, bare = measure(results["retrain serve"]), measure(results["bare endpoint"])
            print(f"| {label} | {ours:.1f} | {bare:.1f} | {ours / bare:.2f} |")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
