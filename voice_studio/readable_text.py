"""Text that is no text: a lone surrogate in a JSON body is refused with a 400, never a 500.

JSON may carry ``"\\ud800"``, half of a UTF-16 surrogate pair, which Python decodes into a
string that no encoding can write: the language detector, the speaker library and the log
fail on it, and so does Gradio itself when it echoes such a value in an error message (its
event stream then dies with a 500). REST checks the bodies it parses
(:func:`check_strings_readable`); :class:`ReadableJsonBodies` checks the page's JSON requests
before Gradio reads them. (A form field cannot hold one: the form parser decodes bytes that are
not UTF-8 as Latin-1, and the library refuses the control characters that gives.)
"""

from __future__ import annotations

import json
from typing import Any

from gsv_core.text.errors import TextError, check_readable

from .errors import ServiceError
from .http_guard import ASGIApp, Message, Receive, Scope, Send


def check_strings_readable(value: Any, subject: str) -> None:
    """Raise a 400 ServiceError when a string, key or value, anywhere in a parsed JSON ``value`` holds a
    lone surrogate; ``subject`` names the value in the message ("the JSON body")."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending += [*item.keys(), *item.values()]
        elif isinstance(item, list):
            pending += item
        elif isinstance(item, str):
            try:
                check_readable(item, f"a string in {subject}")
            except TextError as error:
                raise ServiceError(str(error)) from None


class ReadableJsonBodies:
    """An ASGI wrapper for the page's routes: a JSON body with a lone surrogate is answered 400
    ``{"error": ...}`` before the app sees it; any other body is handed on unchanged. Paths under
    ``skip_prefix`` (REST, which checks and logs its own) are passed straight through. Sits inside
    the RequestGuard, so the bodies it reads are already bounded in size and time."""

    def __init__(self, app: ASGIApp, skip_prefix: str = "/api/") -> None:
        self.app = app
        self.skip_prefix = skip_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"").split(b";")[0].strip().lower()
        if (scope["type"] != "http" or content_type != b"application/json"
                or scope.get("path", "").startswith(self.skip_prefix)):
            await self.app(scope, receive, send)
            return
        chunks, message = [], await receive()
        while message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
            message = await receive()
        else:
            return  # the client left before its body was complete: nobody to answer
        body = b"".join(chunks)
        problem = _surrogate_problem(body)
        if problem is not None:
            answer = json.dumps({"error": problem}).encode()
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]})
            await send({"type": "http.response.body", "body": answer})
            return
        await self.app(scope, _replayed(body, receive), send)


def _surrogate_problem(body: bytes) -> str | None:
    """What is wrong with a JSON body holding a lone surrogate, or None (also for a body that is not
    JSON at all: the app says what it makes of that). Parsed as the app parses it (``json.loads`` of the
    bytes lets the UTF-8 form of a surrogate through too); only bodies with a ``\\uD...`` escape or a
    byte that may start one (0xED) are parsed."""
    if b"\\ud" not in body.lower() and b"\xed" not in body:
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    try:
        check_strings_readable(value, "the request")
    except ServiceError as error:
        return str(error)
    return None


def _replayed(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the buffered body once, then whatever the client sends next (its hang-up)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
