"""Issue 21, point 3: forged visitor keys must not own voices or fill the library.

Each test is an attack on a public demo (admin token set): keys the server never minted
(a made-up cookie, a one-letter ``X-Session``, a key signed elsewhere, altered or expired),
Gradio session hashes chosen by the page, many keys from one client, a forged
``X-Forwarded-For``, and a library filled with private voices until the admin's adds fail.
The REST cases run the real RequestGuard and routes around a service with a stand-in
pipeline; the last test forges keys against a live server with the tiny models.
"""

import asyncio
import os
import secrets
import threading
import time
import types

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from live_server import start_live_server
from test_service import _service, _wav
from voice_studio import housekeeping
from voice_studio.api import add_error_handlers, build_router
from voice_studio.errors import ServiceError
from voice_studio.http_guard import RequestGuard, client_address
from voice_studio.limits import Limits
from voice_studio.visitor_keys import VisitorKeys, client_of, load_or_create_secret, page_session_key

TOKEN = "admin-s3cret"
SECRET = b"attack-tests-visitor-secret-0123456789"
WEEK_S = 7 * 86400


def _guard(app, keys: VisitorKeys, proxy_hops: int = 0) -> RequestGuard:
    return RequestGuard(app, max_upload_bytes=20 * 2**20, max_json_bytes=64 * 2**10, max_ui_body_bytes=64 * 2**20,
                        visitor_keys=keys, proxy_hops=proxy_hops)


def _rest(tmp_path, proxy_hops: int = 0, **limits):
    """A REST client (address "testclient") in front of the guard, the routes and a fresh library."""
    service = _service(tmp_path, admin_token=TOKEN, limits=Limits(**limits))
    app = FastAPI()
    add_error_handlers(app)
    app.include_router(build_router(service))
    keys = VisitorKeys(SECRET, WEEK_S)
    return TestClient(_guard(app, keys, proxy_hops)), service, keys


def _add(client: TestClient, name: str, **headers) -> httpx.Response:
    client.cookies.clear()  # an attacker keeps no cookie jar: every key is the one it sends
    return client.post("/api/speakers", files={"audio": ("ref.wav", _wav(), "audio/wav")},
                       data={"transcript": "你好。", "language": "zh", "name": name}, headers=headers)


def _ids(client: TestClient, **headers) -> set[str]:
    client.cookies.clear()
    return {speaker["id"] for speaker in client.get("/api/speakers", headers=headers).json()}


def as_the_app_sees(keys: VisitorKeys, headers: dict[str, str], peer: str = "203.0.113.7",
                    proxy_hops: int = 0) -> dict[str, str]:
    """The headers of one request from ``peer`` once the RequestGuard has settled who is asking."""
    seen: dict[str, str] = {}

    async def app(scope, receive, send):
        seen.update({name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]})
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def call():
        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            pass

        scope = {"type": "http", "path": "/", "method": "POST", "client": (peer, 50000),
                 "headers": [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]}
        await _guard(app, keys, proxy_hops)(scope, receive, send)

    asyncio.run(call())
    return seen


# -- keys the server never minted ----------------------------------------------------------------

def test_forged_cookie_key_is_a_new_visitor(tmp_path):
    client, _, keys = _rest(tmp_path)
    forged = "k" * 32  # the shape of a key the server used to take as it was
    added = _add(client, "Mine", Cookie=f"gsv_visitor={forged}")
    assert added.status_code == 201, added.text
    owner = added.headers["X-Session"]
    assert owner != forged and keys.verify(owner) == owner
    assert added.headers["set-cookie"].startswith(f"gsv_visitor={owner};")  # the new visitor's own key
    private_id = added.json()["id"]
    assert private_id not in _ids(client, Cookie=f"gsv_visitor={forged}")
    assert private_id in _ids(client, Cookie=f"gsv_visitor={owner}")


def test_one_letter_x_session_is_refused_as_owner(tmp_path):
    client, _, _ = _rest(tmp_path)
    added = _add(client, "Mine", **{"X-Session": "a"})
    assert added.status_code == 201, added.text
    private_id, owner = added.json()["id"], added.headers["X-Session"]
    assert owner != "a"
    assert private_id not in _ids(client, **{"X-Session": "a"})
    client.cookies.clear()
    assert client.patch(f"/api/speakers/{private_id}", json={"name": "Taken"}, headers={"X-Session": "a"}).status_code == 404
    assert client.delete(f"/api/speakers/{private_id}", headers={"X-Session": "a"}).status_code == 404
    assert client.get(f"/api/speakers/{private_id}/export", headers={"X-Session": "a"}).status_code == 404
    assert private_id in _ids(client, **{"X-Session": owner})


def test_keys_signed_elsewhere_altered_or_expired_own_nothing(tmp_path):
    client, _, keys = _rest(tmp_path)
    added = _add(client, "Mine")
    private_id, owner = added.json()["id"], added.headers["X-Session"]
    version, minted, client_part, random_part, mac = owner.split(".")
    other_client = keys.client_tag("198.51.100.1")
    forgeries = {
        "signed by another server": VisitorKeys(b"another-server-secret-0123456789ab", WEEK_S).mint(client_part),
        "another client part": ".".join((version, minted, other_client, random_part, mac)),
        "another random part": ".".join((version, minted, client_part, secrets.token_urlsafe(24), mac)),
        "longer": owner + "x",
        "upper case": owner.upper(),
        "a page-session key": page_session_key("page", client_part),
    }
    for what, forged in forgeries.items():
        assert keys.verify(forged) is None, what
        assert private_id not in _ids(client, **{"X-Session": forged}), what
    expired = keys.mint(client_part, now=time.time() - WEEK_S - 60)
    from_the_future = keys.mint(client_part, now=time.time() + 3600)
    assert keys.verify(expired) is None and keys.verify(from_the_future) is None
    assert private_id in _ids(client, **{"X-Session": owner})


def test_a_page_session_hash_cannot_name_another_visitor():
    from voice_studio.ui.common import session_of

    keys = VisitorKeys(SECRET, WEEK_S)
    victim = keys.mint(keys.client_tag("198.51.100.20"))

    def page_request(session_hash, peer="203.0.113.7", **headers):
        return types.SimpleNamespace(headers=as_the_app_sees(keys, headers, peer), session_hash=session_hash)

    assert session_of(page_request("load-1", Cookie=f"gsv_visitor={victim}")) == victim  # the cookie, not the page
    as_victim = session_of(page_request(victim))  # a caller without cookies names its page session the victim's key
    assert as_victim != victim and as_victim.startswith("p1.") and keys.verify(as_victim) is None
    one_letter = session_of(page_request("a"))
    assert one_letter != "a" and one_letter == session_of(page_request("a"))  # the same page session, the same key
    assert session_of(page_request("a", peer="198.51.100.20")) != one_letter  # from elsewhere, someone else
    assert client_of(one_letter) == keys.client_tag("203.0.113.7")  # counted against its client


# -- filling the library -------------------------------------------------------------------------

def test_forged_keys_cannot_fill_the_library_for_the_admin(tmp_path):
    client, service, _ = _rest(tmp_path, max_voices=6, max_voices_per_visitor=1)
    statuses = [_add(client, f"Forged {number}", **{"X-Session": secrets.token_urlsafe(24)}).status_code
                for number in range(8)]
    private_room = service.limits.max_private_voices
    assert private_room == 4 and statuses == [201] * private_room + [507] * (8 - private_room)
    refused = _add(client, "One more", **{"X-Session": secrets.token_urlsafe(24)})
    assert "no room for more private voices" in refused.json()["error"]
    admin = _add(client, "Shared voice", Authorization=f"Bearer {TOKEN}")
    assert admin.status_code == 201, admin.text
    assert admin.json()["shared"]


def test_private_voices_from_many_clients_leave_the_admins_reserve(tmp_path):
    client, service, _ = _rest(tmp_path, proxy_hops=1, max_voices=10, max_voices_per_visitor=1)
    for number in range(12):
        _add(client, f"Visitor {number}", **{"X-Forwarded-For": f"198.51.100.{number}"})
    private = [s for s in service.list_speakers(None, TOKEN, everything=True) if not s["shared"]]
    assert len(private) == service.limits.max_private_voices == 8
    for number in range(2):  # the reserve: the admin's adds pass until the library itself is full
        assert _add(client, f"Shared {number}", Authorization=f"Bearer {TOKEN}").status_code == 201
    full = _add(client, "Shared 3", Authorization=f"Bearer {TOKEN}")
    assert full.status_code == 507 and "library is full" in full.json()["error"]


def test_per_client_cap_across_many_keys(tmp_path):
    client, service, keys = _rest(tmp_path, max_voices_per_visitor=1, max_voices_per_client=3)
    added = [_add(client, f"Key {number}", Cookie=f"gsv_visitor={secrets.token_urlsafe(24)}") for number in range(5)]
    assert [response.status_code for response in added] == [201, 201, 201, 429, 429]
    assert "visitors at your address keep 3 private voices" in added[-1].json()["error"]
    assert len({response.cookies["gsv_visitor"] for response in added}) == 5  # five new visitors, one client
    elsewhere = keys.mint(keys.client_tag("198.51.100.30"))
    assert not service.add_speaker(_wav(), "你好。", "zh", "Elsewhere", session=elsewhere).shared


def test_a_forged_forwarded_for_does_not_escape_the_client_cap(tmp_path):
    client, _, _ = _rest(tmp_path, proxy_hops=1, max_voices_per_visitor=1, max_voices_per_client=2)
    statuses = [_add(client, f"Spoofed {number}", **{"X-Forwarded-For": f"203.0.113.{number}, 198.51.100.7"}).status_code
                for number in range(4)]  # the proxy appended the real address; the first hops are the client's
    assert statuses == [201, 201, 429, 429]
    headers = {b"x-forwarded-for": b"203.0.113.1, 198.51.100.7, 10.0.0.2"}
    assert client_address({"client": ("10.0.0.3", 1)}, headers, 0) == "10.0.0.3"  # no proxy trusted: the peer
    assert client_address({"client": ("10.0.0.3", 1)}, headers, 2) == "198.51.100.7"
    assert client_address({"client": ("10.0.0.3", 1)}, {}, 1) == "10.0.0.3"


# -- the sweep -----------------------------------------------------------------------------------

def test_sweep_trims_oldest_private_voices_when_space_is_short(tmp_path, monkeypatch):
    service = _service(tmp_path, admin_token=TOKEN, limits=Limits(max_voices=10, shared_voice_reserve=0.5))
    shared = service.add_speaker(_wav(), "你好。", "zh", "Shared", session=None, token=TOKEN)
    private = [service.add_speaker(_wav(), "你好。", "zh", f"Private {n}", session=f"visitor-{n}").id for n in range(5)]
    assert service.sweeper.sweep() == private[:1]  # 5 of 5 private places taken: back to 4, oldest first

    limit = service.limits.min_free_disk_for_private_bytes
    monkeypatch.setattr(housekeeping, "free_disk_bytes", lambda root: limit if len(_private(service)) <= 1 else limit - 1)
    assert service.sweeper.sweep() == private[1:4]  # the disk is short until one private voice is left
    assert [s["id"] for s in service.list_speakers(None, TOKEN, everything=True)] == [shared.id, private[4]]


def _private(service) -> list[str]:
    return [s["id"] for s in service.list_speakers(None, TOKEN, everything=True) if not s["shared"]]


def test_a_nearly_full_disk_refuses_private_adds_before_the_admins(tmp_path, monkeypatch):
    service = _service(tmp_path, admin_token=TOKEN)
    monkeypatch.setattr(housekeeping, "free_disk_bytes", lambda root: service.limits.min_free_disk_for_private_bytes - 1)
    with pytest.raises(ServiceError, match="short of disk space") as refused:
        service.add_speaker(_wav(), "你好。", "zh", "Private", session="visitor")
    assert refused.value.status == 507
    assert service.add_speaker(_wav(), "你好。", "zh", "Shared", session=None, token=TOKEN).shared


# -- the secret ----------------------------------------------------------------------------------

def test_the_visitor_secret_is_made_once_private_and_shared_by_racing_starts(tmp_path):
    path = tmp_path / "data" / "visitor-secret"
    found: list[bytes] = []
    threads = [threading.Thread(target=lambda: found.append(load_or_create_secret(path))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 1 and len(found[0]) >= 32
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_or_create_secret(path) == found[0]
    assert sorted(p.name for p in path.parent.iterdir()) == ["visitor-secret"]  # nothing staged is left
    minted = VisitorKeys(found[0], WEEK_S).mint("c" * 12)
    assert VisitorKeys(load_or_create_secret(path), WEEK_S).verify(minted) == minted  # kept across restarts


def test_visitor_secret_and_proxy_flags(monkeypatch):
    from voice_studio.server import parse_args

    assert parse_args([], environ={}).trust_proxy == 0
    assert parse_args([], environ={"SPACE_ID": "user/space"}).trust_proxy == 1  # behind the Space's proxy
    assert parse_args(["--trust-proxy", "2"], environ={"SPACE_ID": "user/space"}).trust_proxy == 2
    shared_secret = "s" * 40
    assert parse_args([], environ={"GSV_VISITOR_SECRET": shared_secret}).visitor_secret == shared_secret
    for bad in (["--trust-proxy", "-1"], ["--trust-proxy", "yes"], ["--visitor-secret", "short"],
                ["--shared-voice-reserve", "1.5"]):
        with pytest.raises(SystemExit):
            parse_args(bad, environ={})
    args = parse_args(["--max-voices-per-client", "4", "--shared-voice-reserve", "0.5"], environ={})
    assert args.limits.max_voices_per_client == 4 and args.limits.max_private_voices == 250


# -- live ----------------------------------------------------------------------------------------

def test_live_forged_keys_over_rest_neither_own_nor_fill_the_library(reference_dir, tmp_path):
    live = start_live_server(reference_dir, tmp_path, "--admin-token", TOKEN, "--max-voices", "6",
                             "--max-voices-per-visitor", "1")
    wav = (reference_dir / "cases" / "v2_zh" / "ref.wav").read_bytes()

    def add(name, **headers):
        return httpx.post(live.base + "/api/speakers", files={"audio": ("ref.wav", wav, "audio/wav")},
                          data={"transcript": "今天天气不错。", "language": "zh", "name": name}, headers=headers,
                          timeout=120)

    def listed(**headers):
        return {s["id"] for s in httpx.get(live.base + "/api/speakers", headers=headers, timeout=30).json()}

    try:
        forged_cookie = add("Cookie", Cookie="gsv_visitor=" + "k" * 32)
        assert forged_cookie.status_code == 201, forged_cookie.text
        assert forged_cookie.headers["X-Session"] != "k" * 32
        assert forged_cookie.json()["id"] not in listed(Cookie="gsv_visitor=" + "k" * 32)
        one_letter = add("Letter", **{"X-Session": "a"})
        assert one_letter.status_code == 201 and one_letter.headers["X-Session"] != "a"
        assert one_letter.json()["id"] not in listed(**{"X-Session": "a"})
        assert httpx.delete(f"{live.base}/api/speakers/{one_letter.json()['id']}", headers={"X-Session": "a"}).status_code == 404
        statuses = [add(f"Forged {n}", **{"X-Session": secrets.token_urlsafe(24)}).status_code for n in range(6)]
        assert statuses == [201, 201, 507, 507, 507, 507]  # 4 private voices at most: the rest is the admin's
        admin = add("Shared", Authorization=f"Bearer {TOKEN}")
        assert admin.status_code == 201, admin.text
        assert one_letter.json()["id"] in listed(**{"X-Session": one_letter.headers["X-Session"]})
    finally:
        live.stop()
