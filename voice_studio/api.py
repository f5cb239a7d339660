"""REST endpoints on the app's own server: speakers (list, add, rename, delete, export, import) and synthesis.

Errors come back as 4xx/5xx with JSON ``{"error": "..."}``: handlers raise
:class:`ServiceError` and one exception handler (:func:`add_error_handlers`) answers. The
admin token, when the service has one, is read from ``Authorization: Bearer <token>``; a
caller's private voices are keyed by the ``X-Session`` header.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, FastAPI, File, Form, Header, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from gsv_core.audio import wav_bytes
from gsv_core.synthesis import SynthesisOptions

from .errors import ServiceError
from .service import MAX_UPLOAD_BYTES, VoiceService

_OPTION_FIELDS = {"top_k", "top_p", "temperature", "repetition_penalty", "split_method", "speed", "seed", "fragment_interval"}


def add_error_handlers(app: FastAPI) -> None:
    """Service refusals and FastAPI's own validation errors, both as ``{"error": ...}``."""

    @app.exception_handler(ServiceError)
    async def refused(request: Request, error: ServiceError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) or "body" for e in error.errors())
        return JSONResponse({"error": f"missing or invalid fields: {fields}"}, status_code=422)


def _token(authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def options_from(raw: Any) -> SynthesisOptions:
    """SynthesisOptions from a JSON object, refusing unknown fields and bad values."""
    if raw is None:
        return SynthesisOptions()
    if not isinstance(raw, dict):
        raise ServiceError("options must be a JSON object")
    unknown = set(raw) - _OPTION_FIELDS
    if unknown:
        raise ServiceError(f"unknown options: {', '.join(sorted(unknown))}")
    try:
        return SynthesisOptions(**raw)
    except (TypeError, ValueError) as error:
        raise ServiceError(f"bad options: {error}") from error


async def _json_object(request: Request, expected: str) -> dict:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ServiceError(f"the body must be a JSON object: {expected}")
    return body


def build_router(service: VoiceService) -> APIRouter:
    router = APIRouter(prefix="/api")

    @router.get("/speakers")
    def list_speakers(x_session: str | None = Header(default=None)) -> list[dict]:
        return service.list_speakers(x_session)

    @router.post("/speakers", status_code=201)
    async def add_speaker(audio: UploadFile = File(...), transcript: str = Form(""), language: str = Form("zh"),
                          name: str = Form(...), authorization: str | None = Header(default=None),
                          x_session: str | None = Header(default=None)) -> JSONResponse:
        data = await audio.read(MAX_UPLOAD_BYTES + 1)
        info = await asyncio.to_thread(service.add_speaker, data, transcript, language, name, x_session,
                                       _token(authorization))
        return JSONResponse(info.to_json(x_session), status_code=201)

    @router.patch("/speakers/{speaker_id}")
    async def rename_speaker(speaker_id: str, request: Request, authorization: str | None = Header(default=None),
                             x_session: str | None = Header(default=None)) -> dict:
        body = await _json_object(request, '{"name": "..."}')
        if not isinstance(body.get("name"), str):
            raise ServiceError("the body must be JSON with a 'name' string")
        return service.rename_speaker(speaker_id, body["name"], x_session, _token(authorization)).to_json(x_session)

    @router.delete("/speakers/{speaker_id}", status_code=204)
    def delete_speaker(speaker_id: str, authorization: str | None = Header(default=None),
                       x_session: str | None = Header(default=None)) -> Response:
        service.delete_speaker(speaker_id, x_session, _token(authorization))
        return Response(status_code=204)

    @router.get("/speakers/{speaker_id}/export")
    def export_speaker(speaker_id: str, x_session: str | None = Header(default=None)) -> Response:
        data = service.export_speaker(speaker_id, x_session)
        return Response(data, media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{speaker_id}.zip"'})

    @router.post("/speakers/import", status_code=201)
    async def import_speaker(archive: UploadFile = File(...), authorization: str | None = Header(default=None),
                             x_session: str | None = Header(default=None)) -> JSONResponse:
        data = await archive.read(MAX_UPLOAD_BYTES + 1)
        info = await asyncio.to_thread(service.import_speaker, data, x_session, _token(authorization))
        return JSONResponse(info.to_json(x_session), status_code=201)

    @router.post("/tts")
    async def tts(request: Request, x_session: str | None = Header(default=None)) -> Response:
        body = await _json_object(request, '{"text", "speaker_id", "language", "options"?}')
        if not isinstance(body.get("text"), str) or not isinstance(body.get("speaker_id"), str):
            raise ServiceError("'text' and 'speaker_id' are required strings")
        options = options_from(body.get("options"))
        result = await asyncio.to_thread(
            service.synthesize, body["text"], body["speaker_id"], str(body.get("language", "zh")), options, x_session
        )
        return Response(wav_bytes(result.audio, result.sample_rate), media_type="audio/wav")

    return router
