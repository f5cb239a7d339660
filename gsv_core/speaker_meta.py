"""What a speaker is, on paper: ids, names, the ``speaker.json`` schema and the weights key.

Everything here is pure validation: no file is written. Every refusal is a :class:`SpeakerError`
(a ``ValueError``) whose message says what was wrong and what is allowed, because these
values come straight from web forms and uploaded zips.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

METADATA_FORMAT = 1
MAX_ID_CHARS = 64
MAX_NAME_CHARS = 80
MAX_TRANSCRIPT_CHARS = 1000
MAX_SOURCE_CHARS = 500
MAX_SESSION_CHARS = 128

_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_WEIGHTS_KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]{0,31}")
_LANGUAGE_PATTERN = re.compile(r"[a-z][a-z0-9_]{1,15}")
_SESSION_PATTERN = re.compile(r"[!-~]{1,128}")  # printable ASCII, no spaces
_SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
# Device names Windows refuses as file names, whatever the extension.
_WINDOWS_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"] + [f"{port}{n}" for port in ("com", "lpt") for n in range(10)]
)
# Invisible characters that are legitimate inside names (emoji sequences, Indic scripts).
_ALLOWED_FORMAT_CHARS = frozenset("\u200c\u200d")
_FINGERPRINT_EDGE_BYTES = 1 << 20


class SpeakerError(ValueError):
    """Bad input to the speaker library, or a stored speaker that cannot be used."""


class SpeakerNotFound(SpeakerError):
    """No (readable) speaker has this id."""


@dataclass(frozen=True)
class SpeakerProblem:
    """A stored entry that was skipped at load time, and why. The files are left untouched."""

    path: str
    reason: str


@dataclass(frozen=True)
class SpeakerInfo:
    """One speaker's metadata: what ``speaker.json`` holds (the embeddings live beside it)."""

    id: str
    name: str
    language: str
    transcript: str
    created_at: str  # ISO-8601 UTC, e.g. "2026-01-31T12:00:00.123456Z"
    shared: bool
    owner_session: str | None
    synthetic: bool
    source: str | None  # where the voice comes from / licence note; None when not given
    sample_rate: int  # of reference.wav
    frames: int  # samples per channel in reference.wav
    channels: int
    audio_sha256: str  # of the reference.wav file bytes

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    def visible_to(self, session: str | None) -> bool:
        """Shared speakers are visible to everybody, private ones only to their owner session."""
        return self.shared or (session is not None and self.owner_session == session)

    def owned_by(self, session: str | None) -> bool:
        return session is not None and self.owner_session == session

    def to_json(self, session: str | None = None) -> dict[str, Any]:
        """The public view for the REST API. Never reveals ``owner_session``; ``own`` says
        whether ``session`` owns the speaker."""
        return {
            "id": self.id,
            "name": self.name,
            "language": self.language,
            "transcript": self.transcript,
            "created_at": self.created_at,
            "shared": self.shared,
            "own": self.owned_by(session),
            "synthetic": self.synthetic,
            "source": self.source,
            "duration_s": round(self.duration_s, 3),
            "sample_rate": self.sample_rate,
        }

    def to_metadata(self) -> dict[str, Any]:
        """The ``speaker.json`` document (inverse of :func:`info_from_metadata`)."""
        return {"format": METADATA_FORMAT, **asdict(self)}


# key -> accepted types, for every key of speaker.json; all are required.
_SCHEMA: dict[str, tuple[type, ...]] = {
    "format": (int,),
    "id": (str,),
    "name": (str,),
    "language": (str,),
    "transcript": (str,),
    "created_at": (str,),
    "shared": (bool,),
    "owner_session": (str, type(None)),
    "synthetic": (bool,),
    "source": (str, type(None)),
    "sample_rate": (int,),
    "frames": (int,),
    "channels": (int,),
    "audio_sha256": (str,),
}


def info_from_metadata(data: Any, expected_id: str | None = None) -> SpeakerInfo:
    """Validate a parsed ``speaker.json`` strictly (no missing, unknown or mistyped key)."""
    if not isinstance(data, dict):
        raise SpeakerError("speaker.json must hold a JSON object")
    missing = sorted(set(_SCHEMA) - set(data))
    unknown = sorted(set(data) - set(_SCHEMA))
    if missing or unknown:
        raise SpeakerError(f"speaker.json has missing keys {missing} / unknown keys {unknown}")
    for key, types in _SCHEMA.items():
        value = data[key]
        # bool is an int subclass: refuse true/false where a number belongs.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise SpeakerError(f"speaker.json key {key!r} has the wrong type ({type(value).__name__})")
    if data["format"] != METADATA_FORMAT:
        raise SpeakerError(f"speaker.json format {data['format']} is not supported (expected {METADATA_FORMAT})")
    speaker_id = validate_speaker_id(data["id"])
    if expected_id is not None and speaker_id != expected_id:
        raise SpeakerError(f"speaker.json says id {speaker_id!r} but its folder is {expected_id!r}")
    if not (1 <= data["sample_rate"] <= 384_000 and data["frames"] > 0 and 1 <= data["channels"] <= 2):
        raise SpeakerError("speaker.json has an impossible sample_rate, frames or channels value")
    if not _SHA256_PATTERN.fullmatch(data["audio_sha256"]):
        raise SpeakerError("speaker.json audio_sha256 is not a lowercase sha256 hex digest")
    shared, owner = data["shared"], validate_session(data["owner_session"])
    check_visibility(shared, owner)
    return SpeakerInfo(
        id=speaker_id,
        name=clean_name(data["name"]),
        language=validate_language(data["language"]),
        transcript=clean_transcript(data["transcript"]),
        created_at=validate_timestamp(data["created_at"]),
        shared=shared,
        owner_session=owner,
        synthetic=data["synthetic"],
        source=clean_source(data["source"]),
        sample_rate=data["sample_rate"],
        frames=data["frames"],
        channels=data["channels"],
        audio_sha256=data["audio_sha256"],
    )


def validate_speaker_id(value: Any) -> str:
    """Return ``value`` if it is a speaker id: 1-64 of ``a-z 0-9 - _``, starting with a letter or
    digit. Such an id is always one plain path component on every OS; anything else (paths,
    ``..``, NUL, non-ASCII look-alikes, Windows device names) is refused."""
    if not isinstance(value, str):
        raise SpeakerError(f"a speaker id must be a string, got {type(value).__name__}")
    if not _ID_PATTERN.fullmatch(value):
        raise SpeakerError(
            f"invalid speaker id {value[:80]!r}: use 1-{MAX_ID_CHARS} characters from a-z, 0-9, '-' and '_', "
            "starting with a letter or digit"
        )
    if value in _WINDOWS_RESERVED:
        raise SpeakerError(f"invalid speaker id {value!r}: it is a reserved device name on Windows")
    return value


def id_from_name(name: str) -> str:
    """A readable id for a display name ("Ana María" -> "ana-maria"); "speaker" when nothing
    ASCII is left (e.g. a Chinese name). Collisions are resolved by the caller."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:MAX_ID_CHARS].rstrip("-")
    if not slug:
        return "speaker"
    return f"speaker-{slug}"[:MAX_ID_CHARS] if slug in _WINDOWS_RESERVED else slug


def numbered_id(base: str, number: int) -> str:
    """``base`` for 1, else ``base-<number>``, shortened so the result stays a valid id."""
    if number == 1:
        return base
    suffix = f"-{number}"
    return base[: MAX_ID_CHARS - len(suffix)] + suffix


def _refuse_invisible(text: str, what: str) -> None:
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Co", "Cn", "Zl", "Zp") or (
            category == "Cf" and char not in _ALLOWED_FORMAT_CHARS
        ):
            raise SpeakerError(f"{what} must not contain control or invisible characters (found U+{ord(char):04X})")


def clean_name(value: Any) -> str:
    """A display name as stored: NFC, stripped, 1-80 characters, no control characters.
    It is not escaped here: the UI escapes it wherever it is shown."""
    if not isinstance(value, str):
        raise SpeakerError(f"a speaker name must be a string, got {type(value).__name__}")
    name = unicodedata.normalize("NFC", value).strip()
    if not name:
        raise SpeakerError("a speaker name must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise SpeakerError(f"a speaker name must be at most {MAX_NAME_CHARS} characters, got {len(name)}")
    _refuse_invisible(name, "a speaker name")
    return name


def _clean_text(value: Any, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise SpeakerError(f"{what} must be a string, got {type(value).__name__}")
    text = re.sub(r"[\t\r\n]+", " ", unicodedata.normalize("NFC", value)).strip()
    if len(text) > limit:
        raise SpeakerError(f"{what} must be at most {limit} characters, got {len(text)}")
    _refuse_invisible(text, what)
    return text


def clean_transcript(value: Any) -> str:
    """The reference transcript: may be empty (no-prompt mode); line breaks become spaces."""
    return _clean_text(value, "the transcript", MAX_TRANSCRIPT_CHARS)


def clean_source(value: Any) -> str | None:
    """Optional provenance / licence note; empty becomes None."""
    if value is None:
        return None
    return _clean_text(value, "the source note", MAX_SOURCE_CHARS) or None


def validate_language(value: Any) -> str:
    """A language code as the pipeline spells it ("en", "zh", "all_zh", ...)."""
    if not isinstance(value, str) or not _LANGUAGE_PATTERN.fullmatch(value):
        raise SpeakerError(f"invalid language {str(value)[:40]!r}: expected a code such as 'en', 'zh' or 'all_zh'")
    return value


def validate_session(value: Any) -> str | None:
    """An owner session id (None for no owner): 1-128 printable ASCII characters."""
    if value is None:
        return None
    if not isinstance(value, str) or not _SESSION_PATTERN.fullmatch(value):
        raise SpeakerError(f"an owner session must be 1-{MAX_SESSION_CHARS} printable ASCII characters without spaces")
    return value


def check_visibility(shared: Any, owner_session: str | None) -> None:
    if not isinstance(shared, bool):
        raise SpeakerError(f"'shared' must be true or false, got {type(shared).__name__}")
    if not shared and owner_session is None:
        raise SpeakerError("a private speaker (shared=False) needs an owner_session, or nobody could see it")


def validate_weights_key(value: Any) -> str:
    """A weights key is one path component: 1-128 of ``A-Z a-z 0-9 _ -``."""
    if not isinstance(value, str) or not _WEIGHTS_KEY_PATTERN.fullmatch(value):
        raise SpeakerError(
            f"invalid weights key {str(value)[:80]!r}: use 1-128 characters from A-Z, a-z, 0-9, '_', '-'"
        )
    return value


def utc_now() -> str:
    """The current time as stored in ``created_at``."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def validate_timestamp(value: Any) -> str:
    """An ISO-8601 timestamp in UTC (``Z`` or ``+00:00``)."""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise SpeakerError(f"created_at {str(value)[:40]!r} is not an ISO-8601 timestamp") from None
    if moment.utcoffset() is None or moment.utcoffset().total_seconds() != 0:
        raise SpeakerError(f"created_at {value!r} must be in UTC")
    return value


def weights_key(version: str, files: Sequence[str | os.PathLike]) -> str:
    """Name the weights an embedding was computed with: ``"<version>-<16 hex digits>"``.

    Each file contributes its size plus the sha256 of its first and last MiB: enough to tell
    checkpoints apart without reading gigabytes at every start. A directory (a Hugging Face
    model folder) contributes all its files, by relative path. Fingerprints are cached per
    (path, mtime, size), so repeated calls cost a ``stat`` per file.
    """
    if not isinstance(version, str) or not _VERSION_PATTERN.fullmatch(version):
        raise SpeakerError(f"invalid weights version {str(version)[:40]!r}: use letters, digits and '_'")
    if not files:
        raise SpeakerError("weights_key needs at least one weights file")
    digest = hashlib.sha256(version.encode())
    for entry in files:
        path = Path(entry)
        if path.is_dir():
            members = sorted(p for p in path.rglob("*") if p.is_file())
            for member in members:
                digest.update(member.relative_to(path).as_posix().encode() + b"\0")
                digest.update(_fingerprint_of(member))
        elif path.is_file():
            digest.update(_fingerprint_of(path))
        else:
            raise SpeakerError(f"weights file not found: {path}")
    return f"{version}-{digest.hexdigest()[:16]}"


def _fingerprint_of(path: Path) -> bytes:
    stat = path.stat()
    return _fingerprint(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=512)
def _fingerprint(path: str, mtime_ns: int, size: int) -> bytes:
    """sha256 of (size, first MiB, last MiB); the stat values are part of the cache key."""
    digest = hashlib.sha256(size.to_bytes(8, "little"))
    with open(path, "rb") as handle:
        digest.update(handle.read(_FINGERPRINT_EDGE_BYTES))
        if size > _FINGERPRINT_EDGE_BYTES:
            handle.seek(max(size - _FINGERPRINT_EDGE_BYTES, _FINGERPRINT_EDGE_BYTES))
            digest.update(handle.read())
    return digest.digest()
