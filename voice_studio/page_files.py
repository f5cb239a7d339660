"""Files the page's events may take: only those this server received as uploads from the page.

A Gradio event names its input files by path (``{"path": ..., "meta": {"_type": "gradio.FileData"}}``),
and the path is whatever the caller sent. Gradio refuses, before it copies or hashes anything,
a path outside its upload folder (``processing_utils._check_allowed``, called from
``Blocks.preprocess_data`` for every object with a "path" in any input), but only once
``Blocks.has_launched`` is true. ``Blocks.launch()`` sets it after starting its own server;
``gr.mount_gradio_app``, which serves the page beside the REST API, never does: its startup
(``run_startup_events``) sets ``is_running`` only. So in a mounted app the check returned at
once and every path was taken: ``/dev/zero`` hashed forever on the event loop (the whole server
froze), another voice's ``reference.wav`` became a copy of that voice, and the OS's errors told
missing files from folders. :func:`mount_page` mounts the page and then marks it launched, as
``launch()`` would; that turns Gradio's check back on.

Our own guard does not depend on Gradio's internals: :class:`PageFileGuard` reads the body of
every request to the page's routes before Gradio does and refuses it, with the one message
:data:`NOT_UPLOADED`, unless every "path" in it passes :func:`is_uploaded_file`; the UI's
handlers check the paths they receive once more (``voice_studio.ui.common.uploaded_path``).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

MAX_UI_BODY_BYTES = 64 * 2**20  # a request to the page's routes, hence the largest file the page can upload
NOT_UPLOADED = "only files uploaded to this page can be used; upload the file again"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_uploaded_file(path: object, upload_dir: str | os.PathLike, max_bytes: int = MAX_UI_BODY_BYTES) -> bool:
    """Whether ``path`` names a regular file (no link, device, pipe or folder) inside ``upload_dir``
    of at most ``max_bytes``.

    Only metadata is read (``lstat``, and ``realpath`` for links among the folders above it): the
    file is never opened. Gradio's uploads have absolute paths without ``..``, so a relative path
    or one with ``..`` is refused as it is, never resolved against the working folder.
    """
    if not isinstance(path, str) or not path or "\x00" in path:
        return False
    candidate = Path(path)
    if not candidate.is_absolute() or ".." in candidate.parts:
        return False
    try:
        folder = Path(os.path.realpath(upload_dir))
        real = Path(os.path.realpath(candidate))
        info = os.lstat(candidate)
    except (OSError, ValueError):
        return False
    return (real != folder and real.is_relative_to(folder) and stat.S_ISREG(info.st_mode)
            and info.st_size <= max_bytes)


class _NamesAServerFile(Exception):
    """Raised while parsing, at the first file reference that is not an upload."""


def names_only_uploads(body: bytes, upload_dir: str | os.PathLike, max_bytes: int = MAX_UI_BODY_BYTES) -> bool:
    """Whether every file ``body`` names is an upload: every JSON object in it with a "path", in
    whichever input (Gradio looks for files in all of them, a text box's included).

    The objects are checked as the parser makes them (``object_hook``), so a long list of plain
    values costs no Python code. A body that is not JSON names none: Gradio parses it the same
    way (``json.loads``) and refuses it itself.
    """
    def check(item: dict) -> dict:
        if "path" in item and not is_uploaded_file(item["path"], upload_dir, max_bytes):
            raise _NamesAServerFile
        return item

    try:
        json.loads(body, object_hook=check)
    except _NamesAServerFile:
        return False
    except (ValueError, RecursionError):
        pass
    return True


class PageFileGuard:
    """ASGI wrapper: a request to the page's routes that names a file the page did not upload is
    answered 400 ``{"error": NOT_UPLOADED}`` before the app reads any of it.

    The REST routes (``rest_prefix``) take files as uploads, never as paths, and pass untouched;
    so do multipart bodies (the page's uploads themselves) and requests without a body.
    """

    def __init__(self, app: ASGIApp, upload_dir: str | os.PathLike, max_bytes: int = MAX_UI_BODY_BYTES,
                 rest_prefix: str = "/api/") -> None:
        self.app = app
        self.upload_dir = upload_dir
        self.max_bytes = max_bytes
        self.rest_prefix = rest_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._may_name_files(scope):
            await self.app(scope, receive, send)
            return
        body = await _whole_body(receive)
        if body is None:  # the client left before it had sent the body
            return
        if not names_only_uploads(body, self.upload_dir, self.max_bytes):
            from starlette.responses import JSONResponse

            await JSONResponse({"error": NOT_UPLOADED}, status_code=400)(scope, receive, send)
            return
        await self.app(scope, _replaying(body, receive), send)

    def _may_name_files(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            return False
        if scope.get("path", "").startswith(self.rest_prefix):
            return False
        types = [value.strip().lower() for name, value in scope.get("headers") or [] if name.lower() == b"content-type"]
        return not types or not all(value.startswith(b"multipart/") for value in types)  # a second header hides nothing


async def _whole_body(receive: Receive) -> bytes | None:
    """The request's body (bounded by ``RequestGuard``, which wraps this guard), or None once the
    client disconnects."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the app: the body read already, in one message, then the client's own
    messages (a disconnect, for the app's streams)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def mount_page(app: Any, blocks: Any, path: str = "/") -> Any:
    """``gr.mount_gradio_app(app, blocks, path)``, with ``blocks`` then marked launched as
    ``Blocks.launch()`` would: without it Gradio skips its check that every file an event names
    was uploaded (see the module's docstring). There is no public switch for it."""
    import gradio as gr

    mounted = gr.mount_gradio_app(app, blocks, path=path)
    blocks.has_launched = True
    return mounted
