"""`retrain serve`: the production model over HTTP, swapped without dropping a request.

The model is loaded only through the registry's verified chain (`registry.load_champion`: the
pointer, the version tag and the stage tags agree, every file's md5 matches the tag's record).
Rows are cleaned by `schema.validate_features` and scored by `modeling.predictions`, the very
functions of `retrain predict`. A request takes the model in service when it starts and keeps it
to the end; a new version is loaded and verified beside the old one, then put in service by one
reference assignment, so requests in flight finish on the model they started with.
"""

from __future__ import annotations

import csv
import hmac
import io
import json
import logging
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from retrain.data.schema import CleaningPolicy, Schema, validate_features
from retrain.errors import DataError, RegistryError
from retrain.log import get
from retrain.model.modeling import predictions
from retrain.registry.champion import load_champion, read_pointer
from retrain.registry.tags import version_tag

log = get("serve")
access = logging.getLogger("retrain.serve.access")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class Limits:
    """`serve` in params.yaml (flags override)."""

    max_rows: int
    max_body_mb: float
    poll_seconds: float

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Limits:
        return cls(params["max_rows"], params["max_body_mb"], params["poll_seconds"])


@dataclass(frozen=True)
class Served:
    """A verified model in service."""

    name: str
    version: str
    md5: str
    tag: str
    model: Any
    schema: Schema
    policy: CleaningPolicy
    threshold: float

    def headers(self) -> dict[str, str]:
        return {"X-Model-Version": self.version, "X-Model-MD5": self.md5, "X-Model-Name": self.name}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "md5": self.md5, "tag": self.tag}


def load_production(root: Path) -> Served | None:
    """The production model of the repository at `root`, verified, with the schema, cleaning and
    threshold of that repository's params.yaml; None before any promotion."""
    from retrain.params import load, section

    params = load(root / "params.yaml")
    champion = load_champion(root)
    if champion is None:
        return None
    pointer = champion.pointer
    return Served(
        name=str(pointer["name"]),
        version=str(pointer["version"]),
        md5=str(pointer["md5"]),
        tag=version_tag(str(pointer["name"]), str(pointer["version"])),
        model=champion.model,
        schema=Schema.from_params(section(params, "schema")),
        policy=CleaningPolicy.from_params(section(params, "prepare")["cleaning"]),
        threshold=float(section(params, "metrics")["threshold"]),
    )


@dataclass
class Metrics:
    """Prometheus text exposition of requests, latency and rows scored."""

    requests: Counter = field(default_factory=Counter)
    rows: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    latency_sum: float = 0.0
    latency_count: int = 0
    swaps: int = 0
    failed_loads: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, path: str, status: int, seconds: float, rows: int) -> None:
        with self.lock:
            self.requests[(path, status)] += 1
            self.rows += rows
            self.latency_sum += seconds
            self.latency_count += 1
            for i, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    self.buckets[i] += 1

    def text(self, served: Served | None) -> str:
        with self.lock:
            lines = ["# TYPE retrain_requests_total counter"]
            for (path, status), n in sorted(self.requests.items()):
                lines.append(f'retrain_requests_total{{path="{path}",status="{status}"}} {n}')
            lines += ["# TYPE retrain_rows_scored_total counter", f"retrain_rows_scored_total {self.rows}"]
            lines.append("# TYPE retrain_request_seconds histogram")
            for bound, n in zip(LATENCY_BUCKETS, self.buckets, strict=True):
                lines.append(f'retrain_request_seconds_bucket{{le="{bound}"}} {n}')
            lines.append(f'retrain_request_seconds_bucket{{le="+Inf"}} {self.latency_count}')
            lines.append(f"retrain_request_seconds_sum {self.latency_sum:.6f}")
            lines.append(f"retrain_request_seconds_count {self.latency_count}")
            lines += ["# TYPE retrain_model_swaps_total counter", f"retrain_model_swaps_total {self.swaps}"]
            lines += [
                "# TYPE retrain_model_load_failures_total counter",
                f"retrain_model_load_failures_total {self.failed_loads}",
            ]
            if served is not None:
                lines.append(f'retrain_model_info{{version="{served.version}",md5="{served.md5}"}} 1')
            return "\n".join(lines) + "\n"


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def parse_rows(body: bytes, content_type: str, limits: Limits) -> pd.DataFrame:
    """The request's rows as a frame: JSON records (a list, or {"records": [...]}) or CSV text."""
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("text/csv", "application/csv"):
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise BadRequest(400, f"body: not UTF-8 text (byte {err.start})") from None
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if not header:
            raise BadRequest(400, "body: empty CSV, expected a header row and data rows")
        rows = []
        for number, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise BadRequest(
                    400, f"body: CSV line {number} has {len(row)} fields, expected {len(header)}"
                )
            rows.append(row)
            if len(rows) > limits.max_rows:
                raise BadRequest(413, f"body: more than {limits.max_rows} rows (serve.max_rows)")
        frame = pd.DataFrame(rows, columns=header, dtype="str")
    elif kind in ("application/json", ""):
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise BadRequest(400, f"body: not JSON ({err})") from None
        if isinstance(data, dict) and "records" in data:
            data = data["records"]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise BadRequest(400, 'body: expected a JSON list of records, or {"records": [...]}')
        if len(data) > limits.max_rows:
            raise BadRequest(413, f"body: {len(data)} rows, more than {limits.max_rows} (serve.max_rows)")
        for number, record in enumerate(data, start=1):
            odd = [k for k, v in record.items() if isinstance(v, dict | list)]
            if odd:
                raise BadRequest(422, f"record {number}: column {odd[0]!r}: expected a number or text")
        frame = pd.DataFrame.from_records(data)
    else:
        raise BadRequest(415, f"content type {kind!r}: expected application/json or text/csv")
    if frame.empty:
        raise BadRequest(422, "body: no rows to score")
    return frame


def _scoring_threads() -> None:
    """OpenMP's thread count is per calling thread: the scoring thread sets its own."""
    from threadpoolctl import threadpool_limits

    from retrain.execution import threads

    threadpool_limits(limits=threads())


class Service:
    """The model in service, and the follower that swaps it."""

    def __init__(self, *, root: Path, limits: Limits):
        self.root = root
        self.limits = limits
        self.served: Served | None = None
        self.last_error: str | None = None
        self.metrics = Metrics()
        self.wake = threading.Event()
        self.refresh_lock = threading.Lock()
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="retrain-score", initializer=_scoring_threads)

    async def scoring(self, frame: pd.DataFrame, served: Served) -> list[dict[str, Any]]:
        """Score on one worker thread, one request at a time: the event loop stays free for
        health checks and new connections, and requests do not fight over the interpreter."""
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(self.worker, self.score, frame, served)

    @staticmethod
    def score(frame: pd.DataFrame, served: Served) -> list[dict[str, Any]]:
        """Clean the rows as prepare does and score them with the model the request started on."""
        schema = served.schema
        rows = validate_features(frame, "body", schema, served.policy)
        scored = predictions(served.model, rows, schema, served.threshold)
        return [
            {schema.id: str(i), "probability": float(p), "label": str(label)}
            for i, p, label in zip(scored[schema.id], scored["probability"], scored["label"], strict=True)
        ]

    def refresh(self, update: Any = None) -> bool:
        """Bring the repository up to date (`update`), and when production names another model,
        load and verify it beside the one in service, then swap. False when nothing changed or
        the new model failed; the one in service stays."""
        with self.refresh_lock:
            try:
                if update is not None:
                    update()
                pointer = read_pointer(self.root)
                current = self.served
                if current is not None and (pointer.get("version"), pointer.get("md5")) == (
                    current.version,
                    current.md5,
                ):
                    return False
                if pointer.get("version") is None:
                    return False
                loaded = load_production(self.root)
            except Exception as err:  # whatever failed, the model in service stays
                self.last_error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else err}"
                with self.metrics.lock:
                    self.metrics.failed_loads += 1
                log.error(
                    "kept %s in service: %s",
                    self.served.version if self.served else "no model",
                    self.last_error,
                )
                return False
            if loaded is None:
                return False
            before = self.served
            self.served = loaded  # one reference assignment: requests in flight keep `before`
            self.last_error = None
            with self.metrics.lock:
                self.metrics.swaps += 1
            log.info(
                "in service: %s %s (md5 %s)%s",
                loaded.name,
                loaded.version,
                loaded.md5,
                f", was {before.version}" if before else "",
            )
            return True

    def follow(self, update: Any, poll_seconds: float) -> threading.Thread:
        """Poll (or be woken by the webhook) in a background thread."""

        def loop() -> None:
            while True:
                self.wake.wait(poll_seconds)
                self.wake.clear()
                self.refresh(update)

        thread = threading.Thread(target=loop, name="retrain-follow", daemon=True)
        thread.start()
        return thread


def app(service: Service, webhook_secret: str | None = None) -> Any:
    """The ASGI application."""
    api = FastAPI(title="retrain", docs_url=None, redoc_url=None, openapi_url=None)

    def error(status: int, message: str, served: Served | None = None) -> JSONResponse:
        return JSONResponse(
            {"error": message}, status_code=status, headers=served.headers() if served else None
        )

    @api.middleware("http")
    async def logged(request: Request, call_next: Any) -> Any:
        start = time.perf_counter()
        request.state.rows = 0
        try:
            response = await call_next(request)
        except Exception as err:  # never a traceback to the client
            log.error("%s %s failed: %s", request.method, request.url.path, err)
            response = error(500, "internal error; the service log has the details")
        served = service.served
        if served is not None and "X-Model-Version" not in response.headers:
            response.headers.update(served.headers())  # every answer names the model in service
        seconds = time.perf_counter() - start
        service.metrics.observe(request.url.path, response.status_code, seconds, request.state.rows)
        access.info(
            json.dumps(
                {
                    "method": request.method,
                    "path": request.url.path,
                    "status": response.status_code,
                    "ms": round(seconds * 1000, 2),
                    "rows": request.state.rows,
                    "model": response.headers.get("X-Model-Version"),
                }
            )
        )
        return response

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, "invalid request")

    @api.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "up"}

    @api.get("/ready")
    async def ready() -> JSONResponse:
        served = service.served
        if served is None:
            return error(503, service.last_error or "no verified model is loaded")
        return JSONResponse({"status": "ready", **served.describe()}, headers=served.headers())

    @api.get("/version")
    async def version() -> JSONResponse:
        served = service.served
        body = {"model": served.describe() if served else None, "last_error": service.last_error}
        return JSONResponse(body, headers=served.headers() if served else None)

    @api.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(service.metrics.text(service.served))

    @api.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        served = service.served  # this request's model, whatever is swapped in meanwhile
        if served is None:
            return error(503, service.last_error or "no verified model is loaded")
        limit = int(service.limits.max_body_mb * 2**20)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return error(
                413, f"body: larger than {service.limits.max_body_mb:g} MB (serve.max_body_mb)", served
            )
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return error(
                    413, f"body: larger than {service.limits.max_body_mb:g} MB (serve.max_body_mb)", served
                )
        try:
            frame = parse_rows(bytes(body), request.headers.get("content-type", ""), service.limits)
            scored = await service.scoring(frame, served)
        except BadRequest as bad:
            return error(bad.status, bad.message, served)
        except DataError as bad:
            return error(422, str(bad), served)
        request.state.rows = len(scored)
        return JSONResponse({"model": served.describe(), "predictions": scored}, headers=served.headers())

    @api.post("/hooks/registry")
    async def hook(request: Request) -> JSONResponse:
        given = request.headers.get("X-Retrain-Secret", "")
        if not webhook_secret or not hmac.compare_digest(given.encode(), webhook_secret.encode()):
            return error(403, "webhook: missing or wrong X-Retrain-Secret")
        service.wake.set()
        return JSONResponse({"status": "polling"}, status_code=202)

    return api


class Follower:
    """A clone of the git remote the service follows: fetched on each poll, reset to its branch."""

    def __init__(self, remote: str, workdir: Path):
        self.remote = remote
        self.workdir = workdir
        if not (workdir / ".git").is_dir():
            workdir.parent.mkdir(parents=True, exist_ok=True)
            self._git("clone", "--quiet", remote, str(workdir), cwd=workdir.parent)
        self.branch = self._git("symbolic-ref", "--short", "HEAD").strip()

    def _git(self, *args: str, cwd: Path | None = None) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=cwd or self.workdir, capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0:
            raise RegistryError(f"git {args[0]} of {self.remote} failed: {proc.stderr.strip()[:300]}")
        return proc.stdout

    def update(self) -> None:
        self._git("fetch", "--quiet", "--force", "--tags", "origin", self.branch)
        self._git("reset", "--quiet", "--hard", f"origin/{self.branch}")


def default_workdir(remote: str) -> Path:
    """Where the service keeps its clone of `remote` between runs."""
    import hashlib
    import os

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "retrain" / "serve" / hashlib.md5(remote.encode()).hexdigest()[:12]


def serve(
    *,
    limits: Limits,
    host: str,
    port: int,
    follow: str | None = None,
    workdir: Path | None = None,
    poll_seconds: float | None = None,
) -> None:
    """`retrain serve`: load the production model of this repository (or of a clone of `follow`,
    kept up to date in the background), then answer HTTP until stopped."""
    import gc
    import os

    import uvicorn

    from retrain.execution import THREADS

    follower = Follower(follow, workdir or default_workdir(follow)) if follow else None
    if follower is not None:
        follower.update()
    service = Service(root=follower.workdir if follower else Path("."), limits=limits)
    service.refresh()
    if service.served is None and follower is None:
        raise DataError(
            service.last_error or "no model is in production yet: run `dvc repro` and `retrain promote`"
        )
    if follower is not None:
        service.follow(follower.update, poll_seconds or limits.poll_seconds)
    log.info("serving on http://%s:%s", host, port)
    # Requests are small and many: the scoring thread uses one BLAS/OpenMP thread unless
    # RETRAIN_THREADS says otherwise (waking idle OpenMP threads cost a one-row request 10 ms),
    # and what was loaded so far is left out of garbage collection, whose full passes made the
    # tail latency.
    os.environ.setdefault(THREADS, "1")
    gc.freeze()
    uvicorn.run(
        app(service, os.environ.get("RETRAIN_SERVE_SECRET")),
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
    )
