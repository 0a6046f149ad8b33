"""Benchmark: `retrain serve` against MLServer's scikit-learn runtime, the same model and rows.

    python3 -m venv /tmp/mlserver && /tmp/mlserver/bin/pip install mlserver mlserver-sklearn \
        && /tmp/mlserver/bin/pip install --no-deps -e . && /tmp/mlserver/bin/pip install skops
    MLSERVER=/tmp/mlserver/bin/mlserver python benchmarks/serve_mlserver.py

MLServer lives in its own virtual environment (it pins other FastAPI and pandas versions than
constraints.txt). The script builds a repository with a promoted model (as benchmarks/serve.py),
dumps that model with joblib for MLServer's runtime, and posts the same rows to both: to
`retrain serve` as CSV, to MLServer as an Open Inference Protocol (V2) request of the features
*already cleaned* by prepare's code, since MLServer only scores what it is given. It checks that
both return the same probabilities, then prints p50 and p99 latency of 1-row and 1,000-row
requests. Nothing is written outside a temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serve import free_port, latencies, started  # noqa: E402

from retrain.data.schema import CleaningPolicy, Schema, validate_features  # noqa: E402
from retrain.model.modeling import predict_proba  # noqa: E402
from retrain.params import load  # noqa: E402
from retrain.registry.champion import load_champion  # noqa: E402
from tests.helpers import create_repo  # noqa: E402


def v2_request(frame: pd.DataFrame, schema: Schema, policy: CleaningPolicy) -> bytes:
    clean = validate_features(frame, "rows", schema, policy)
    inputs = []
    for name in schema.features:
        column = clean[name]
        if name in schema.numeric:
            data = [None if np.isnan(v) else float(v) for v in column.to_numpy(dtype=float)]
            inputs.append({"name": name, "shape": [len(column)], "datatype": "FP64", "data": data})
        else:
            data = [str(v) for v in column]
            inputs.append({"name": name, "shape": [len(column)], "datatype": "BYTES", "data": data})
    body = {"parameters": {"content_type": "pd"}, "inputs": inputs, "outputs": [{"name": "predict_proba"}]}
    return json.dumps(body).encode()


def main() -> int:
    mlserver = os.environ.get("MLSERVER")
    if not mlserver or not Path(mlserver).exists():
        raise SystemExit(
            "set MLSERVER to the mlserver command of its own virtual environment (see the docstring)"
        )
    work = Path(tempfile.mkdtemp(prefix="retrain-mlserver-bench-"))
    procs = []
    try:
        repo = create_repo(work / "repo")
        repo.first_run()
        params = load(repo.path / "params.yaml")
        schema = Schema.from_params(params["schema"])
        policy = CleaningPolicy.from_params(params["prepare"]["cleaning"])
        model = load_champion(repo.path).model
        (work / "mlserver").mkdir()
        joblib.dump(model, work / "mlserver/model.joblib")
        http, grpc, metrics = free_port(), free_port(), free_port()
        (work / "mlserver/model-settings.json").write_text(
            json.dumps(
                {
                    "name": "churn",
                    "implementation": "mlserver_sklearn.SKLearnModel",
                    "parameters": {"uri": "./model.joblib"},
                }
            )
        )
        (work / "mlserver/settings.json").write_text(
            json.dumps(
                {
                    "host": "127.0.0.1",
                    "http_port": http,
                    "grpc_port": grpc,
                    "metrics_port": metrics,
                    "parallel_workers": 0,
                }
            )
        )
        ours = free_port()
        bin_dir = Path(sys.executable).parent
        procs.append(started([str(bin_dir / "retrain"), "serve", "--port", str(ours)], repo.path, ours))
        procs.append(started([mlserver, "start", "."], work / "mlserver", http))
        rows = pd.read_csv(repo.path / "data/raw/2025-03.csv", dtype=str, keep_default_na=False)
        one, many = rows.head(1), pd.concat([rows] * 4).head(1000)
        v2_url = f"http://127.0.0.1:{http}/v2/models/churn/infer"
        answer = httpx.post(
            v2_url,
            content=v2_request(many, schema, policy),
            headers={"Content-Type": "application/json"},
            timeout=60,
        ).json()["outputs"][0]
        theirs = np.array(answer["data"]).reshape(answer["shape"])[:, 1]
        expected = predict_proba(model, validate_features(many, "rows", schema, policy), schema)
        print(
            f"MLServer's probabilities differ from retrain's by at most {np.abs(theirs - expected).max():g}"
        )
        cases = {
            "retrain serve": (
                f"http://127.0.0.1:{ours}/predict",
                "text/csv",
                one.to_csv(index=False).encode(),
                many.to_csv(index=False).encode(),
            ),
            "MLServer": (
                v2_url,
                "application/json",
                v2_request(one, schema, policy),
                v2_request(many, schema, policy),
            ),
        }
        for url, kind, small, _ in cases.values():
            latencies(url, small, 30, kind)
        seconds: dict[str, dict[str, list[float]]] = {name: {"1": [], "1000": []} for name in cases}
        for _ in range(3):
            for name, (url, kind, small, large) in cases.items():
                seconds[name]["1"] += latencies(url, small, 100, kind)
                seconds[name]["1000"] += latencies(url, large, 20, kind)
        print("\n| measure | retrain serve | MLServer | ratio |")
        print("|---|---|---|---|")
        for size in ("1", "1000"):
            for q in (50, 99):
                a, b = (statistics.quantiles(seconds[n][size], n=100)[q - 1] * 1000 for n in cases)
                print(f"| {size}-row p{q}, ms | {a:.1f} | {b:.1f} | {a / b:.2f} |")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
