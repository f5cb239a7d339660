"""Visitor keys the server mints and signs, so that a key nobody was given owns nothing.

A key reads ``v1.<minted>.<client>.<random>.<mac>``: the mint time (Unix seconds, hex), a
keyed hash of the client's address at mint time, 192 random bits, and an HMAC-SHA256 of the
rest under the server's secret (truncated to 144 bits). Anything else a client sends (a
made-up value, one letter, a key signed with another secret, one past its lifetime) is not a
visitor key: the request is a new visitor and gets a freshly minted one.

The client part lets the library count private voices per client as well as per key
(:func:`voice_studio.housekeeping.check_room`): an address hash, never the address, keyed with
the secret so that the small IPv4 space cannot be searched. It is the address the key was
minted for; a visitor whose address changes keeps its key and its voices.

Gradio's ``session_hash`` is chosen by the page (any string), so it is never taken as a key.
A caller that keeps no cookies gets :func:`page_session_key` instead: a hash of the session
hash and the client part, in its own ``p1.`` namespace that no minted key can be and that no
cookie or ``X-Session`` value is ever accepted as. Naming another visitor this way would take
both that visitor's session hash (Gradio's own bearer secret for the page) and its address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from pathlib import Path

LOGGER = logging.getLogger("voice_studio.visitor_keys")
KEY_VERSION = "v1"
PAGE_SESSION_VERSION = "p1"
RANDOM_BYTES = 24  # 192 bits
CLIENT_BYTES = 9  # 72 bits: enough to tell clients apart, never the address itself
MAC_BYTES = 18  # 144 bits of HMAC-SHA256
MAX_CLOCK_SKEW_S = 300  # replicas sharing a secret may disagree this much about the time
SECRET_BYTES = 32
MIN_SECRET_CHARS = 32  # a secret given by flag
SECRET_FILE = "visitor-secret"

_CLIENT = r"[A-Za-z0-9_-]{12}"
_KEY = re.compile(rf"{KEY_VERSION}\.([0-9a-f]{{1,12}})\.({_CLIENT})\.[A-Za-z0-9_-]{{32}}\.[A-Za-z0-9_-]{{24}}")
_PAGE_SESSION_KEY = re.compile(rf"{PAGE_SESSION_VERSION}\.({_CLIENT})\.[0-9a-f]{{32}}")


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


class VisitorKeys:
    """Mints and checks visitor keys under one secret; keys live ``ttl_s`` (the cookie's and the
    private voices' lifetime)."""

    def __init__(self, secret: bytes, ttl_s: float) -> None:
        if len(secret) < MIN_SECRET_CHARS:
            raise ValueError(f"the visitor secret must be at least {MIN_SECRET_CHARS} bytes")
        self._secret = secret
        self.ttl_s = ttl_s

    def _digest(self, purpose: bytes, text: str, size: int) -> str:
        mac = hmac.new(self._secret, purpose + b"\0" + text.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return _text(mac.digest()[:size])

    def client_tag(self, address: str) -> str:
        """The client part of a key: a keyed hash of the client's address (12 characters)."""
        return self._digest(b"client-address", address, CLIENT_BYTES)

    def mint(self, client: str, now: float | None = None) -> str:
        """A new key for a client (``client`` as :meth:`client_tag` made it)."""
        minted = int(time.time() if now is None else now)
        body = f"{KEY_VERSION}.{minted:x}.{client}.{secrets.token_urlsafe(RANDOM_BYTES)}"
        return f"{body}.{self._digest(b'visitor-key', body, MAC_BYTES)}"

    def verify(self, key: str | None, now: float | None = None) -> str | None:
        """``key`` when this server minted it and it has not expired, else None."""
        if not isinstance(key, str) or (found := _KEY.fullmatch(key)) is None:
            return None
        body, _, mac = key.rpartition(".")
        if not hmac.compare_digest(mac, self._digest(b"visitor-key", body, MAC_BYTES)):
            return None
        age = (time.time() if now is None else now) - int(found.group(1), 16)
        return key if -MAX_CLOCK_SKEW_S <= age <= self.ttl_s else None


def client_of(key: str | None) -> str | None:
    """The client part of a minted or page-session key (who it was made for), else None.

    Read without the secret: keys stored as owners were checked when their voice was added.
    """
    if not isinstance(key, str):
        return None
    if (minted := _KEY.fullmatch(key)) is not None:
        return minted.group(2)
    page_session = _PAGE_SESSION_KEY.fullmatch(key)
    return None if page_session is None else page_session.group(1)


def page_session_key(session_hash: str, client: str) -> str:
    """The key of a caller that keeps no cookies, for one Gradio page session from one client."""
    digest = hashlib.sha256(f"{client}\0{session_hash}".encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{PAGE_SESSION_VERSION}.{client}.{digest}"


def load_or_create_secret(path: Path) -> bytes:
    """The secret kept in ``path``, created at first start (random, owner-only permissions).

    Created under a temporary name and linked into place, so that two processes starting at
    once agree on one secret and nobody ever reads a half-written file.
    """
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(SECRET_BYTES))
        try:
            os.link(staged, path)  # fails when another process was first: its secret wins
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links: two first starts at once may then disagree
            os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    if path.stat().st_mode & 0o077:
        LOGGER.warning("%s can be read by other users of this machine; chmod 600 it", path.name)
    secret = path.read_text(encoding="ascii").strip()
    if len(secret) < MIN_SECRET_CHARS:
        raise ValueError(f"{path.name} in the data folder is damaged (too short); delete it to make a new one")
    return secret.encode("ascii")
