"""The scoring server: a FastAPI app around one :class:`~callqa.serving.score.Scorer`.

``POST /v1/calls:score`` takes a recording and returns the record ``callqa score`` writes for it. The
``/v2`` routes are the Open Inference Protocol's health and model metadata, so a load balancer or a
KServe-style client can probe the server the way it probes any other model server.

What a client gets wrong ends in a 4xx with ``{"error": ...}`` naming the fault: an empty or oversized
upload, a file that is not audio or lies about itself, a call over the duration limit, bad metadata.
Scoring runs in worker threads, at most ``max_concurrent`` calls at once; a request beyond that is
answered 429 with ``Retry-After`` at once rather than queued, so a burst cannot pile up memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException

from callqa import __version__
from callqa.data.audio import AudioError, audio_info
from callqa.data.schema import SchemaError
from callqa.serving import oip
from callqa.serving.metrics import Metrics
from callqa.serving.score import Job, Scorer

log = logging.getLogger(__name__)

SERVER_NAME = "callqa"
#: Bytes read from an upload at a time while it is copied to disk and counted against the limit.
CHUNK = 1 << 20
#: Bytes a request body may hold beyond the upload limit: the form's framing and metadata.
FORM_SLACK = 1 << 16


@dataclass(frozen=True)
class Limits:
    """What one request may cost the server."""

    max_upload_mb: float = 200.0
    max_call_minutes: float = 120.0
    max_concurrent: int = 2
    #: Requests that may wait for a worker; one more is refused at once (429), so a burst is bounded.
    max_queue: int = 8
    timeout_s: float = 600.0
    #: What a 429 tells the client to wait, in seconds.
    retry_after_s: int = 2


class ApiError(HTTPException):
    """A request the server refuses: the status, the one-line message the client sees, and a short
    reason for the error counter (``empty``, ``not_audio``, ``busy`` ...)."""

    def __init__(self, status: int, detail: str, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, detail, headers)
        self.reason = reason


def create_app(
    scorer: Scorer,
    limits: Limits | None = None,
    api_key: str | None = None,
) -> FastAPI:
    """The app for one scorer (models loaded once, by the caller). ``api_key``: when set, every route
    but the health probes needs it in ``X-API-Key`` or ``Authorization: Bearer``."""
    limits = limits or Limits()
    app = FastAPI(title="callqa scoring server", version=__version__)
    workers = _Workers(limits)
    models, sessions = _model_metadata(scorer)
    max_elements = int(limits.max_upload_mb * 1e6 / 4)  # as many float32 values as an upload's bytes
    metrics = Metrics(scorer.model_infos(from_audio=True))
    # multipart framing and the metadata field add a little to the file: slack keeps the limit the file's
    body_limit = int(limits.max_upload_mb * 1e6) + FORM_SLACK
    app.add_middleware(
        BodyLimit,
        limit=body_limit,
        message=f"request body over the {limits.max_upload_mb:g} MB upload limit",
        refused=lambda: metrics.errors.labels("too_large").inc(),
    )

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, err: HTTPException) -> JSONResponse:
        metrics.errors.labels(getattr(err, "reason", f"http_{err.status_code}")).inc()
        return JSONResponse({"error": str(err.detail)}, err.status_code, headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        metrics.errors.labels("invalid_request").inc()
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        return JSONResponse({"error": f"invalid request: {where}"}, 422)

    @app.middleware("http")
    async def _count(request: Request, call_next: Any) -> Any:
        t0 = time.perf_counter()
        if api_key and not request.url.path.startswith("/v2/health") and not _authorised(request, api_key):
            metrics.errors.labels("unauthorised").inc()
            response = JSONResponse({"error": "missing or wrong API key"}, 401)
        else:
            response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "other")  # the template, not the raw path
        metrics.requests.labels(route, str(response.status_code)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - t0)
        return response

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v2")
    async def server_metadata() -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": __version__, "extensions": []}

    @app.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
    async def model_metadata(name: str, version: str | None = None) -> dict[str, Any]:
        return _known(models, name, version)

    @app.get("/v2/models/{name}/ready")
    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def model_ready(name: str, version: str | None = None) -> dict[str, Any]:
        _known(models, name, version)
        return {"name": name, "ready": True}

    @app.post("/v2/models/{name}/infer")
    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer(name: str, req: oip.InferRequest, version: str | None = None) -> dict[str, Any]:
        _known(models, name, version)
        session = sessions.get(name)
        if session is None:
            raise ApiError(400, f"model {name!r} is not an ONNX graph: nothing to infer on", "not_a_graph")
        async with workers.slot():
            try:
                return await _in_thread(limits, "inference", oip.run, req, session, name, max_elements)
            except oip.InferError as err:
                raise ApiError(400, f"{name}: {err}", "bad_tensor") from None

    @app.post("/v1/calls:score")
    async def score_call(
        audio: Annotated[UploadFile, File(description="The recording: stereo (agent, customer) or mono.")],
        metadata: Annotated[
            str | None,
            Form(description='JSON: {"id": ..., "channels": {"agent": 0, "customer": 1} or "mono"}'),
        ] = None,
        rubric: Annotated[str | None, Form(description="Rubric name; the server's own if left out.")] = None,
    ) -> dict[str, Any]:
        meta = _metadata(metadata)
        served = scorer.rules.rubric.name
        if rubric is not None and rubric != served:
            raise ApiError(
                404, f"rubric {rubric!r} is not served here (this server: {served!r})", "unknown_rubric"
            )
        async with workers.slot():
            metrics.in_flight.inc()
            folder = Path(tempfile.mkdtemp(prefix="callqa-upload-"))
            try:
                path = await _save(audio, folder, limits)
                job = Job(str(meta.get("id") or path.stem), path, meta.get("speakers"))
                try:
                    score = await _in_thread(limits, "scoring", scorer.score, job)
                except (AudioError, SchemaError, ValueError) as err:
                    raise ApiError(422, _without(str(err), folder), "not_a_call") from None
            finally:
                metrics.in_flight.dec()
                shutil.rmtree(folder, ignore_errors=True)
        metrics.calls.labels(str(score.judged).lower()).inc()
        if score.call is not None:
            metrics.audio.inc(score.call.duration)
            # the upload's own name: the server's temporary folder is gone, and none of the client's business
            score.call = score.call.model_copy(update={"audio": path.name})
        return score.to_json()

    return app


async def _in_thread(limits: Limits, what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a worker thread, so the event loop keeps answering; 504 past the timeout."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(fn, *args), limits.timeout_s)
    except TimeoutError:
        raise ApiError(504, f"{what} took longer than {limits.timeout_s:g} s", "timeout") from None


def _authorised(request: Request, key: str) -> bool:
    given = request.headers.get("x-api-key") or ""
    auth = request.headers.get("authorization") or ""
    if not given and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    return hmac.compare_digest(given.encode(), key.encode())  # constant time: no guessing by timing


def _known(models: Mapping[str, dict[str, Any]], name: str, version: str | None = None) -> dict[str, Any]:
    """The model's metadata; one server holds one version of each model, the one it loaded."""
    if name not in models:
        raise ApiError(
            404, f"no model {name!r} here (models: {', '.join(sorted(models)) or 'none'})", "no_model"
        )
    if version is not None and version not in models[name]["versions"]:
        have = ", ".join(models[name]["versions"]) or "unversioned"
        raise ApiError(404, f"model {name!r} has no version {version!r} here (loaded: {have})", "no_model")
    return models[name]


def _model_metadata(scorer: Scorer) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """OIP model metadata for each loaded model (its ONNX inputs and outputs where it has a session),
    and the sessions by model name."""
    parts = {"qa": scorer.model}
    if scorer.pipeline is not None:
        pipeline = scorer.pipeline
        parts |= {"asr": pipeline.asr, "ser": pipeline.ser, "vad": pipeline.vad}  # type: ignore[attr-defined]
    meta, sessions = {}, {}
    for name, info in scorer.model_infos(from_audio=True).items():
        session = getattr(parts.get(name), "session", None)
        if session is not None:
            sessions[name] = session
        meta[name] = {
            "name": name,
            "versions": [info.version] if info.version else [],
            "platform": "onnxruntime_onnx" if session is not None else info.kind,
            "inputs": oip.tensor_spec(session.get_inputs()) if session is not None else [],
            "outputs": oip.tensor_spec(session.get_outputs()) if session is not None else [],
        }
    return meta, sessions


class _Workers:
    """At most ``max_concurrent`` requests at work and ``max_queue`` waiting for a turn; one more is
    refused at once with 429, since a longer queue would only hold memory and end in timeouts."""

    def __init__(self, limits: Limits) -> None:
        self.limits, self.running, self.waiting = limits, asyncio.Semaphore(limits.max_concurrent), 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.running.locked() and self.waiting >= self.limits.max_queue:
            raise ApiError(
                429,
                f"busy: {self.limits.max_concurrent} request(s) at work and {self.waiting} waiting",
                "busy",
                {"Retry-After": str(self.limits.retry_after_s)},
            )
        self.waiting += 1
        try:
            await self.running.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self.running.release()


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware refusing a request body over ``limit`` bytes with 413 as it arrives, whether its
    length is declared or it comes chunked: without it the form parser spools a whole upload to disk,
    and the JSON parser a whole body into memory, before any route can look at the size."""

    def __init__(self, app: Any, limit: int, message: str, refused: Any = None) -> None:
        self.app, self.limit, self.message, self.refused = app, limit, message, refused

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(send)
        seen, started = 0, False

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        async def watched(message: dict) -> None:
            nonlocal started
            if seen > self.limit:  # FastAPI turns any error while parsing a body into its own 400
                if not started:
                    started = True
                    await self._refuse(send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        if self.refused is not None:
            self.refused()
        body = json.dumps({"error": self.message}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _metadata(raw: str | None) -> dict[str, Any]:
    """The optional call metadata: an id and the channel layout ("mono" or speaker -> channel)."""
    if raw is None or not raw.strip():
        return {}
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ApiError(422, f"metadata is not JSON: {err}", "bad_metadata") from None
    if not isinstance(meta, dict):
        raise ApiError(422, "metadata must be a JSON object", "bad_metadata")
    channels = meta.get("channels")
    speakers = None
    if isinstance(channels, dict):
        if set(channels) != {"agent", "customer"} or sorted(channels.values()) != [0, 1]:
            raise ApiError(
                422, f'metadata channels {channels}: want {{"agent": 0|1, "customer": 1|0}}', "bad_metadata"
            )
        speakers = dict(channels)
    elif channels not in (None, "mono", "stereo"):
        raise ApiError(
            422, f'metadata channels {channels!r}: "mono", "stereo" or a speaker mapping', "bad_metadata"
        )
    call_id = meta.get("id")
    if call_id is not None and (not isinstance(call_id, str) or not re.fullmatch(r"[\w.\-]{1,128}", call_id)):
        raise ApiError(422, "metadata id: 1 to 128 letters, digits, '.', '_' or '-'", "bad_metadata")
    return {"id": call_id, "speakers": speakers}


async def _save(upload: UploadFile, folder: Path, limits: Limits) -> Path:
    """Copy the upload into ``folder`` under its own (sanitised) name (its size was limited as it
    arrived, by :class:`BodyLimit`), then check what the decoder says it holds before decoding it."""
    name = re.sub(r"[^\w.\-]", "_", Path(upload.filename or "call.wav").name)[-100:] or "call.wav"
    path = folder / name
    size = 0
    with open(path, "wb") as fh:
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            fh.write(chunk)
    if size == 0:
        raise ApiError(400, f"{name}: empty upload", "empty")
    try:
        info = audio_info(path)
    except (AudioError, OSError) as err:
        raise ApiError(422, _without(str(err), folder), "not_audio") from None
    if info.duration > limits.max_call_minutes * 60:
        minutes, most = info.duration / 60, limits.max_call_minutes
        raise ApiError(413, f"{name}: {minutes:.1f} min of audio, over the {most:g} min limit", "too_long")
    return path


def _without(message: str, folder: Path) -> str:
    """An error message naming the upload, not the server's temporary folder."""
    return " ".join(message.replace(f"{folder}/", "").replace(str(folder), "").split())
