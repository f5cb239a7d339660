"""An ASGI wrapper around the whole app: bounded request bodies and the visitor key cookie.

Bodies: a request whose ``Content-Length`` is over the limit is answered 413 before one
byte of it is read; a body without a length (chunked) is counted as it arrives and cut off
at the limit. REST JSON bodies (``/api/tts``, renames) get a much smaller limit than REST
uploads (the upload limit plus room for the multipart framing). The Gradio UI's own routes
get ``max_ui_body_bytes``: its upload route must let an over-long file through far enough
for the Add speaker tab to explain, in the page, why it is refused. A body that arrives too
slowly (a "slow loris" client holding a connection and a handler with a byte every few
seconds) is answered 408 and its connection closed: it must arrive within ``body_timeout_s``
of the request's start, plus one second per ``MIN_BODY_RATE_BYTES_S`` bytes received, so a
large upload on a slow line still gets through.

Visitor key: a key the server minted and signed (:mod:`voice_studio.visitor_keys`), in the
``gsv_visitor`` cookie (HttpOnly, SameSite=Lax), set on the first response and kept by the
browser for the private-voice lifetime; REST clients may send it as ``X-Session`` instead.
The guard alone decides who is asking: a valid ``X-Session``, else a valid cookie, else a
freshly minted key (a forged, malformed or expired one is a new visitor, never an owner). It
hands its verdict to the app in ``VISITOR_KEY_HEADER`` and the client's address hash in
``CLIENT_HEADER`` (headers a caller cannot send: the guard drops them from every request), so
that the UI and REST always know who is asking, and a page reload keeps the same key (unlike
Gradio's session hash).

Client address: the connecting address, or behind ``proxy_hops`` trusted proxies (a Space:
one) the address the outermost of them saw, which is the ``proxy_hops``-th entry of
``X-Forwarded-For`` counted from the right. Its first entry is whatever the client wrote
there (proxies append, they do not clear it), so it is never trusted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any

from .visitor_keys import VisitorKeys

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

VISITOR_COOKIE = "gsv_visitor"
NEW_VISITOR_HEADER = b"x-gsv-new-visitor"  # set by the guard on a request that came without a valid key
VISITOR_KEY_HEADER = b"x-gsv-visitor"  # the key the guard settled on (checked, or minted for this request)
CLIENT_HEADER = b"x-gsv-client"  # the client's address hash (VisitorKeys.client_tag)
_INTERNAL_HEADERS = frozenset({NEW_VISITOR_HEADER, VISITOR_KEY_HEADER, CLIENT_HEADER})
MULTIPART_SLACK_BYTES = 64 * 2**10  # boundaries, part headers and the small form fields
MIN_BODY_RATE_BYTES_S = 32 * 2**10  # each 32 KB of body received buys one more second (256 kbit/s)


class BodyRefused(Exception):
    """The guard stopped reading a request body; ``status`` and the message are its answer."""

    status = 400


class BodyTooLarge(BodyRefused):
    """A body without Content-Length went past the limit while it was being read."""

    status = 413


class BodyTimedOut(BodyRefused):
    """A body did not arrive in time (see ``MIN_BODY_RATE_BYTES_S``)."""

    status = 408


def visitor_key_of(cookie_header: str | None) -> str | None:
    """The ``gsv_visitor`` value in a Cookie header (not yet checked), or None."""
    if not cookie_header:
        return None
    try:
        morsel = SimpleCookie(cookie_header).get(VISITOR_COOKIE)
    except Exception:  # a malformed Cookie header is treated as none
        return None
    return None if morsel is None else morsel.value


def client_address(scope: Scope, headers: dict[bytes, bytes], proxy_hops: int) -> str:
    """Who is connecting: the peer, or behind ``proxy_hops`` trusted proxies the address the
    outermost one saw (counted from the right of X-Forwarded-For, which the client can prefill)."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    if proxy_hops <= 0:
        return str(peer)
    hops = [hop.strip() for hop in headers.get(b"x-forwarded-for", b"").decode("latin-1").split(",") if hop.strip()]
    return hops[max(0, len(hops) - proxy_hops)] if hops else str(peer)


class RequestGuard:
    def __init__(self, app: ASGIApp, max_upload_bytes: int, max_json_bytes: int, max_ui_body_bytes: int,
                 visitor_keys: VisitorKeys, proxy_hops: int = 0, body_timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes
        self.max_json_bytes = max_json_bytes
        self.max_ui_body_bytes = max_ui_body_bytes
        self.visitor_keys = visitor_keys
        self.proxy_hops = proxy_hops
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.lower(): value for name, value in scope.get("headers", [])}
        limit, shown = self._limit(scope.get("path", ""), headers.get(b"content-type", b""))
        length = headers.get(b"content-length")
        too_large = f"the request is over {_size(shown)}, the most this server accepts"
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _refuse(send, 413, too_large)
            return
        send = self._with_visitor_key(scope, headers, send)
        state: dict[str, Any] = {"refused": None, "started": False}  # refused: the BodyRefused raised

        async def guarded_send(message: Message) -> None:
            """Once the body was refused (too large, too slow), whatever the app answers (its parser
            may call it a 400 or a 500) is replaced by the refusal."""
            if state["refused"] is not None:
                if message["type"] == "http.response.start" and not state["started"]:
                    state["started"] = True
                    await _refuse(send, state["refused"].status, str(state["refused"]))
                return
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        if length not in (None, b"0") or b"transfer-encoding" in headers:  # a body is coming
            receive = _timed(receive, self.body_timeout_s, state)
        receive = _counted(receive, limit, too_large, state)
        try:
            await self.app(scope, receive, guarded_send)
        except BodyRefused as refused:
            if not state["started"]:
                state["started"] = True
                await _refuse(send, refused.status, str(refused))

    def _limit(self, path: str, content_type: bytes) -> tuple[int, int]:
        """(bytes allowed, bytes named in the refusal) for a request to ``path``."""
        if not path.startswith("/api/"):
            return self.max_ui_body_bytes, self.max_ui_body_bytes
        if content_type.split(b";")[0].strip() == b"application/json":
            return self.max_json_bytes, self.max_json_bytes
        return self.max_upload_bytes + MULTIPART_SLACK_BYTES, self.max_upload_bytes

    def _with_visitor_key(self, scope: Scope, headers: dict[bytes, bytes], send: Send) -> Send:
        """Settle who is asking (see the module docstring) and tell the app in ``VISITOR_KEY_HEADER``.
        A new visitor's key is marked by ``NEW_VISITOR_HEADER`` and set as the cookie on the response;
        over HTTPS the cookie is ``SameSite=None; Secure``, so that it also works inside an iframe
        (Hugging Face Spaces)."""
        keys = self.visitor_keys
        client = keys.client_tag(client_address(scope, headers, self.proxy_hops))
        key = keys.verify(headers.get(b"x-session", b"").decode("latin-1")) \
            or keys.verify(visitor_key_of(headers.get(b"cookie", b"").decode("latin-1")))
        new = key is None
        if new:
            key = keys.mint(client)
        settled = [(VISITOR_KEY_HEADER, key.encode("ascii")), (CLIENT_HEADER, client.encode("ascii"))]
        scope["headers"] = [(n, v) for n, v in scope.get("headers", []) if n.lower() not in _INTERNAL_HEADERS]
        scope["headers"] += [*settled, (NEW_VISITOR_HEADER, b"1")] if new else settled
        if not new:
            return send
        https = scope.get("scheme") == "https" or headers.get(b"x-forwarded-proto", b"").startswith(b"https")
        same_site = "SameSite=None; Secure" if https else "SameSite=Lax"
        set_cookie = f"{VISITOR_COOKIE}={key}; Max-Age={int(keys.ttl_s)}; Path=/; HttpOnly; {same_site}"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"set-cookie", set_cookie.encode("latin-1"))]
            await send(message)

        return send_with_cookie


def _counted(receive: Receive, limit: int, refusal: str, state: dict) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                state["refused"] = BodyTooLarge(refusal)
                raise state["refused"]
        return message

    return counted


def _timed(receive: Receive, timeout_s: float, state: dict) -> Receive:
    """``receive`` with a deadline for the body: ``timeout_s`` from now (the headers are in), plus a
    second per MIN_BODY_RATE_BYTES_S bytes received. Once the body is complete, waiting for the
    client to hang up (streamed answers do) has no deadline."""
    started, received, complete = time.monotonic(), 0, False

    async def timed() -> Message:
        nonlocal received, complete
        if complete:
            return await receive()
        remaining = started + timeout_s + received / MIN_BODY_RATE_BYTES_S - time.monotonic()
        try:
            # past the deadline, a piece the server already holds is still taken (a moment to hand it over)
            message = await asyncio.wait_for(receive(), timeout=max(remaining, 0.1))
        except asyncio.TimeoutError:
            state["refused"] = BodyTimedOut(f"the request body did not arrive in time (within {timeout_s:g} s, plus "
                                            f"a second per {MIN_BODY_RATE_BYTES_S // 2**10} KB received)")
            raise state["refused"] from None
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            complete = not message.get("more_body", False)
        else:
            complete = True  # http.disconnect
        return message

    return timed


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _size(limit: int) -> str:
    return f"{limit // 2**20} MB" if limit >= 2**20 else f"{limit // 2**10} KB"
