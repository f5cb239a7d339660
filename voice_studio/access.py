"""Who may do what: one place for the admin token and voice ownership.

Without an admin token everything is open (local or team use). With one, visitors add voices
only their own session sees, and changing a shared voice needs the token.
"""

from __future__ import annotations

import hmac

from gsv_core.speakers import SpeakerError, SpeakerInfo, SpeakerLibrary

from .errors import ServiceError


class AccessPolicy:
    def __init__(self, admin_token: str | None) -> None:
        self.admin_token = admin_token

    def is_admin(self, token: str | None) -> bool:
        if self.admin_token is None:
            return True
        return token is not None and hmac.compare_digest(token, self.admin_token)

    def visible(self, library: SpeakerLibrary, speaker_id: str, session: str | None) -> SpeakerInfo:
        """A speaker the caller may see and use; 404 for unknown ids and other visitors' voices alike."""
        try:
            info = library.get(speaker_id)
        except SpeakerError as error:
            raise ServiceError(f"unknown speaker id {speaker_id!r}", status=404) from error
        if not info.visible_to(session):
            raise ServiceError(f"unknown speaker id {speaker_id!r}", status=404)
        return info

    def changeable(self, library: SpeakerLibrary, speaker_id: str, session: str | None, token: str | None) -> SpeakerInfo:
        """A speaker the caller may change: their own private voice, or any voice for an admin."""
        info = self.visible(library, speaker_id, session)
        if not (info.owned_by(session) or self.is_admin(token)):
            raise ServiceError("changing a shared voice needs the admin token", status=403)
        return info
