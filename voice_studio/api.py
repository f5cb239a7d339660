"""REST endpoints on the app's own server: speakers (list, add, rename, delete, export, import), long recordings
(plan), synthesis, ratings.

Errors come back as 4xx/5xx with JSON ``{"error": "..."}``: handlers raise
:class:`ServiceError` and one exception handler (:func:`add_error_handlers`) answers;
anything unexpected is a 500 ``{"error": ..., "error_id": ...}`` whose id is in the server
log with the traceback. The admin token, when the service has one, is read from
``Authorization: Bearer <token>`` (a wrong one is a 401). The caller's visitor key (who
owns a private voice) is the ``X-Session`` header, else the ``gsv_visitor`` cookie the
server sets, when the server minted it (:mod:`voice_studio.visitor_keys`; anything else is a
new visitor); responses to an add carry the key in ``X-Session``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from functools import partial
from http import HTTPStatus
from typing import Any

import numpy as np

from fastapi import APIRouter, FastAPI, File, Form, Header, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from gsv_core.audio import streaming_wav_header, to_int16, wav_bytes

from .cancellation import Cancellation
from .errors import ServiceError, unexpected
from .http_guard import VISITOR_KEY_HEADER, BodyRefused
from .limits import Limits, check_options, check_quality_flag
from .readable_text import check_strings_readable
from .served import ServedResult
from .service import VoiceService
from .synthesis_stream import SynthesisStream
from .zerogpu import gpu_task, synthesis_gpu_seconds


_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]  # the unknown-route catch-all


def add_error_handlers(app: FastAPI) -> None:
    """Service refusals, FastAPI's own validation errors and unexpected errors, all as ``{"error": ...}``."""

    @app.exception_handler(ServiceError)
    async def refused(request: Request, error: ServiceError) -> JSONResponse:
        body = {"error": str(error), **({"error_id": error.error_id} if error.error_id else {})}
        return JSONResponse(body, status_code=error.status, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) or "body" for e in error.errors())
        return JSONResponse({"error": f"missing or invalid fields: {fields[:200]}"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_refusal(request: Request, error: StarletteHTTPException) -> JSONResponse:
        """Refusals of Starlette and FastAPI themselves (a form that cannot be parsed, too many fields)."""
        detail = error.detail if isinstance(error.detail, str) else HTTPStatus(error.status_code).phrase
        return JSONResponse({"error": detail[:200]}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception) -> JSONResponse:
        if isinstance(error, BodyRefused):  # too large, too slow: the RequestGuard answers in place of this response
            return JSONResponse({"error": str(error)}, status_code=error.status)
        return await refused(request, unexpected(error, f"serving {request.method} {request.url.path}"))


def _token(authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def _visitor(request: Request, x_session: str | None) -> str | None:
    """The caller's visitor key as the RequestGuard settled it: ``X-Session`` when this server minted
    it, else the cookie's key, else one minted for this request (a forged key is a new visitor).

    ``x_session`` is the header as sent, declared by the routes so that the API docs show it; it is
    never used as it is. Without the guard in front there is no key (a private add asks for one)."""
    return request.headers.get(VISITOR_KEY_HEADER.decode("ascii")) or None


def json_depth_ok(text: str, max_depth: int) -> bool:
    """Whether brackets nest at most ``max_depth`` deep (checked before parsing: no RecursionError)."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                return False
        elif char in "]}":
            depth -= 1
    return True


def _refuse_constant(name: str) -> Any:
    raise ServiceError(f"the body is not valid JSON ({name} is not a number JSON allows)")


async def _json_object(request: Request, expected: str, max_depth: int) -> dict:
    raw = await request.body()  # bounded by the RequestGuard's JSON limit
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ServiceError("the body must be UTF-8 JSON") from None
    body = _parsed_json(text, "the JSON body", max_depth)
    if not isinstance(body, dict):
        raise ServiceError(f"the body must be a JSON object: {expected}")
    return body


def _json_list(text: str, name: str, limits: Limits) -> list:
    """A form field holding a JSON list, bounded like a JSON body (size, nesting, no NaN)."""
    if len(text.encode("utf-8")) > limits.max_json_bytes:
        raise ServiceError(f"'{name}' is over {limits.max_json_bytes // 2**10} KB")
    value = _parsed_json(text, f"'{name}'", limits.max_json_depth)
    if not isinstance(value, list):
        raise ServiceError(f"'{name}' must be a JSON list")
    return value


def _parsed_json(text: str, subject: str, max_depth: int) -> Any:
    """``text`` parsed, None when it is not JSON; ServiceError when it nests deeper than
    ``max_depth`` (checked before parsing), holds NaN / Infinity or a lone surrogate."""
    if not json_depth_ok(text, max_depth):
        raise ServiceError(f"{subject} nests deeper than {max_depth} levels")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except ServiceError:
        raise
    except ValueError:
        return None
    check_strings_readable(value, subject)
    return value


def build_router(service: VoiceService) -> APIRouter:
    router = APIRouter(prefix="/api")
    limits = service.limits

    @router.get("/speakers")
    def list_speakers(request: Request, everything: bool = Query(False, alias="all"),
                      authorization: str | None = Header(default=None),
                      x_session: str | None = Header(default=None)) -> list[dict]:
        return service.list_speakers(_visitor(request, x_session), _token(authorization), everything=everything)

    @router.post("/speakers", status_code=201)
    async def add_speaker(request: Request, audio: UploadFile | None = File(None),
                          aux_audio: list[UploadFile] | None = File(None), recording: UploadFile | None = File(None),
                          utterances: str | None = Form(None), transcript: str = Form(""),
                          language: str | None = Form(None), name: str = Form(...),
                          authorization: str | None = Header(default=None),
                          x_session: str | None = Header(default=None)) -> JSONResponse:
        visitor, token = _visitor(request, x_session), _token(authorization)
        if (audio is None) == (recording is None):
            raise ServiceError("send either 'audio' (a 3-10 s reference) or 'recording' (up to "
                               f"{limits.max_recording_s:.0f} s), not both")
        if recording is None:
            if utterances is not None:
                raise ServiceError("'utterances' come with a 'recording', not with 'audio'")
            clips = [await clip.read(limits.max_upload_bytes + 1) for clip in aux_audio or []]
            data = await audio.read(limits.max_upload_bytes + 1)
            language = "zh" if language is None else language
            info = await asyncio.to_thread(service.add_speaker, data, transcript, language, name, visitor, token,
                                           aux_audio=clips)
        else:
            if aux_audio:
                raise ServiceError("a recording's auxiliary clips are cut from it: send no 'aux_audio' with it")
            chosen = None if utterances is None else _json_list(utterances, "utterances", limits)
            data = await recording.read(limits.max_upload_bytes + 1)
            info = await asyncio.to_thread(service.add_speaker_from_recording, data, language, name, visitor, token,
                                           utterances=chosen, transcript=transcript or None)
        return JSONResponse(info.to_json(visitor), status_code=201, headers={"X-Session": visitor or ""})

    @router.post("/recordings/plan")
    async def plan_recording(recording: UploadFile = File(...), transcript: str = Form(""),
                             language: str | None = Form(None)) -> dict:
        data = await recording.read(limits.max_upload_bytes + 1)
        view = await asyncio.to_thread(service.plan_recording_upload, data, transcript or None, language or None)
        return view.to_json()

    @router.patch("/speakers/{speaker_id}")
    async def rename_speaker(speaker_id: str, request: Request, authorization: str | None = Header(default=None),
                             x_session: str | None = Header(default=None)) -> dict:
        body = await _json_object(request, '{"name": "..."}', limits.max_json_depth)
        if not isinstance(body.get("name"), str):
            raise ServiceError("the body must be JSON with a 'name' string")
        visitor = _visitor(request, x_session)
        info = await asyncio.to_thread(service.rename_speaker, speaker_id, body["name"], visitor, _token(authorization))
        return info.to_json(visitor)

    @router.delete("/speakers/{speaker_id}", status_code=204)
    def delete_speaker(speaker_id: str, request: Request, authorization: str | None = Header(default=None),
                       x_session: str | None = Header(default=None)) -> Response:
        service.delete_speaker(speaker_id, _visitor(request, x_session), _token(authorization))
        return Response(status_code=204)

    @router.get("/speakers/{speaker_id}/export")
    def export_speaker(speaker_id: str, request: Request, authorization: str | None = Header(default=None),
                       x_session: str | None = Header(default=None)) -> Response:
        data = service.export_speaker(speaker_id, _visitor(request, x_session), _token(authorization))
        return Response(data, media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{speaker_id}.zip"'})

    @router.post("/speakers/import", status_code=201)
    async def import_speaker(request: Request, archive: UploadFile = File(...),
                             authorization: str | None = Header(default=None),
                             x_session: str | None = Header(default=None)) -> JSONResponse:
        visitor = _visitor(request, x_session)
        data = await archive.read(limits.max_upload_bytes + 1)
        info = await asyncio.to_thread(service.import_speaker, data, visitor, _token(authorization))
        return JSONResponse(info.to_json(visitor), status_code=201)

    @router.get("/ratings.csv")
    def export_ratings(authorization: str | None = Header(default=None)) -> Response:
        return Response(service.ratings_csv(_token(authorization)), media_type="text/csv")

    _add_tts_route(router, service)
    _add_unknown_route(router)
    return router


def _add_unknown_route(router: APIRouter) -> None:
    """Every other method and path under /api: a 405 naming the methods the path takes, else a 404, both
    ``{"error": ...}`` (without this they would reach the Gradio app mounted at /, which answers ``{"detail": ...}``).
    Added last, after the real routes."""
    routes = list(router.routes)

    async def unknown(request: Request) -> Response:
        allowed = sorted({method for route in routes if route.matches(request.scope)[0] != Match.NONE
                          for method in getattr(route, "methods", ())})
        if allowed:
            raise ServiceError(f"{request.method} is not allowed here; this path takes {', '.join(allowed)}",
                               status=405, headers={"Allow": ", ".join(allowed)})
        raise ServiceError("no such API route; the README lists them", status=404)

    for path in ("", "/{rest:path}"):
        router.add_api_route(path, unknown, methods=_ALL_METHODS, include_in_schema=False)


def _add_tts_route(router: APIRouter, service: VoiceService) -> None:
    limits = service.limits
    # under ZeroGPU, REST synthesis takes the same GPU path as the page's handlers (each take of a checked one counted)
    synthesize = gpu_task(service.synthesis.synthesize, lambda text, *_, quality_check=False, **__: synthesis_gpu_seconds(
        text, checked_takes=limits.quality_max_tries if quality_check else 0)) \
        if service.config.serve_directly else service.synthesis.synthesize

    @router.post("/tts")
    async def tts(request: Request, authorization: str | None = Header(default=None),
                  x_session: str | None = Header(default=None)) -> Response:
        body: dict = {}
        try:  # a request refused before synthesis is logged too
            body = await _json_object(request, '{"text", "speaker_id", "language", "options"?, "stream"?, '
                                               '"quality_check"?}', limits.max_json_depth)
            text, speaker_id, language = body.get("text"), body.get("speaker_id"), body.get("language", "zh")
            if not isinstance(text, str) or not isinstance(speaker_id, str):
                raise ServiceError("'text' and 'speaker_id' are required strings")
            if not isinstance(language, str):
                raise ServiceError("'language' must be a string such as 'zh' or 'en'")
            options = check_options(body.get("options"), limits)
            stream = _stream_mode(body.get("stream", False))
            quality_check = check_quality_flag(body.get("quality_check"))
            if stream is not None and quality_check:
                raise ServiceError("a streamed answer cannot be quality-checked (audio already sent cannot be "
                                   'taken back): send "stream": false, or leave out "quality_check"')
        except ServiceError as error:
            service.synthesis.log_refusal(body.get("text"), body.get("speaker_id"), body.get("language"), error)
            raise
        ticket = service.synthesis.admit(text, [speaker_id], language)  # before any thread is taken: 503 at once when full
        visitor, token = _visitor(request, x_session), _token(authorization)
        if stream is not None:
            return await _streamed(service, text, speaker_id, language, options, visitor, stream, ticket, token)
        cancellation = Cancellation()
        # under ZeroGPU the synthesis runs in another process, where a cancellation (a lock) cannot follow it
        cancelled_by = {} if service.config.serve_directly else {"cancellation": cancellation}
        job = partial(synthesize, text, speaker_id, language, options, visitor, ticket=ticket, token=token,
                      quality_check=service.synthesis.quality_wanted(quality_check), **cancelled_by)
        # the pool has a thread per admission slot: the job starts at once, and closes the ticket when done
        work = asyncio.get_running_loop().run_in_executor(service.synthesis.admission.executor, job)
        result = await _unless_the_client_leaves(request, work, cancellation)
        return Response(wav_bytes(result.audio, result.sample_rate), media_type="audio/wav", headers=result_headers(result))


async def _unless_the_client_leaves(request: Request, work: asyncio.Future, cancellation: Cancellation) -> Any:
    """``work``'s result; a client that disconnects first cancels the request, and ``work`` then ends
    with RequestCancelled (a 499 that nobody receives)."""
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not work.done():
        cancellation.cancel()
    return await work


async def _disconnected(request: Request) -> None:
    """Returns when the client has closed its connection (the body is already read: nothing else comes)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def result_headers(result: ServedResult) -> dict[str, str]:
    """What a /tts answer reports besides the audio: ``X-Seed`` (replays the take), ``X-Voice-Similarity``
    (4 decimals, or ``n/a`` without an SV model or for audio under half a second) and, when the
    quality check ran, ``X-Quality-CER`` (``n/a`` when it could not run, ``X-Quality-Note`` says why)
    and ``X-Quality-Tries``."""
    headers = {"X-Seed": str(result.seed),
               "X-Voice-Similarity": "n/a" if result.similarity is None else f"{result.similarity:.4f}"}
    report = result.quality
    if report is not None:
        headers["X-Quality-CER"] = "n/a" if report.cer is None else f"{report.cer:.4f}"
        headers["X-Quality-Tries"] = str(report.tries)
        if report.note:
            headers["X-Quality-Note"] = report.note
    return headers


def _stream_mode(raw: Any) -> str | None:
    """``"stream"`` of a /tts body: false (one WAV), true or "chunks", or "fragments"."""
    if raw is False or raw is None:
        return None
    if raw is True:
        return "chunks"
    if raw in ("chunks", "fragments"):
        return raw
    raise ServiceError('"stream" must be true, false, "chunks" or "fragments"')


async def _streamed(service: VoiceService, text: str, speaker_id: str, language: str, options, visitor: str | None,
                    mode: str, ticket, token: str | None) -> StreamingResponse:
    """A WAV with an open length, sent piece by piece as the pieces are made.

    Checks run before the first byte, so a refused request is still a 4xx JSON answer; a
    failure after the first piece ends the stream (the log has the reason). A client that
    hangs up cancels the synthesis (:class:`_CancellingStream`).
    """
    executor, loop = service.synthesis.admission.executor, asyncio.get_running_loop()
    pieces = await loop.run_in_executor(
        executor, partial(service.synthesis.synthesize_stream, text, speaker_id, language, options, visitor, mode, ticket, token))
    sample_rate = service.pipeline().sample_rate

    async def body() -> AsyncIterator[bytes]:
        yield streaming_wav_header(sample_rate)
        try:  # each wait for a piece on the admission pool, which has a thread for every admitted request
            while (piece := await loop.run_in_executor(executor, next, pieces, None)) is not None:
                yield to_int16(np.clip(piece.audio, -1, 1 - 1 / 32768)).tobytes()
        except ServiceError:
            return  # logged by the service; the client sees the stream end

    return _CancellingStream(pieces, body(), media_type="audio/wav",
                             headers={"X-Sample-Rate": str(sample_rate), "X-Audio-Format": "pcm_s16le; channels=1"})


class _CancellingStream(StreamingResponse):
    """A streamed answer that closes its synthesis stream when it ends, which cancels the synthesis if the
    answer ended early: Starlette stops sending when the client disconnects, but a body waiting for its
    next piece would never learn of it, and the synthesis would run to its end."""

    def __init__(self, pieces: SynthesisStream, content: AsyncIterator[bytes], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._pieces = pieces

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._pieces.close()  # nothing changes once the stream has ended
