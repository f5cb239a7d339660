"""Who may do what: one place for the admin token and voice ownership.

Without an admin token everything is open (team mode): every visitor may add, rename and
delete every voice. With one, visitors add private voices that only their visitor key (a
browser cookie, or ``X-Session`` on REST) sees; the admin (the token) sees, changes and
deletes everything. A token that is given but wrong is refused (401), never mistaken for
a visitor.
"""

from __future__ import annotations

import hmac

from gsv_core.speakers import SpeakerError, SpeakerInfo, SpeakerLibrary

from .errors import ServiceError


class AccessPolicy:
    def __init__(self, admin_token: str | None) -> None:
        self.admin_token = admin_token

    @property
    def open(self) -> bool:
        """Team mode: no token configured, everyone may change everything."""
        return self.admin_token is None

    def is_admin(self, token: str | None) -> bool:
        """True for the right token (or in team mode); False without one; 401 for a wrong one."""
        if self.admin_token is None:
            return True
        if not token:
            return False
        if not hmac.compare_digest(token.encode("utf-8", "surrogatepass"), self.admin_token.encode("utf-8")):
            raise ServiceError("the admin token is wrong", status=401)
        return True

    def require_admin(self, token: str | None, action: str) -> None:
        if not self.is_admin(token):
            raise ServiceError(f"{action} needs the admin token", status=403)

    def visible(self, library: SpeakerLibrary, speaker_id: str, session: str | None,
                token: str | None = None) -> SpeakerInfo:
        """A speaker the caller may see and use; 404 for unknown ids and other visitors' voices alike."""
        try:
            info = library.get(speaker_id)
        except SpeakerError as error:
            raise ServiceError(f"unknown speaker id {str(speaker_id)[:80]!r}", status=404) from error
        if not info.visible_to(session) and not (token and self.is_admin(token)):
            raise ServiceError(f"unknown speaker id {str(speaker_id)[:80]!r}", status=404)
        return info

    def changeable(self, library: SpeakerLibrary, speaker_id: str, session: str | None, token: str | None) -> SpeakerInfo:
        """A speaker the caller may change: their own private voice, or any voice for an admin."""
        info = self.visible(library, speaker_id, session, token)
        if not (info.owned_by(session) or self.is_admin(token)):
            raise ServiceError("changing a shared voice needs the admin token", status=403)
        return info
