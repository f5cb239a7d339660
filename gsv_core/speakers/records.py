"""What a speaker is on paper: ids, names, the ``speaker.json`` schema, and their validation.

Pure functions, no file access. Every refusal is a :class:`SpeakerError` (a ``ValueError``)
saying what was wrong and what is allowed, because these values come from web forms and zips.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from itertools import groupby
from typing import Any

from anyascii import anyascii
from pypinyin import lazy_pinyin

from gsv_core.conditioning import MAX_REFERENCES

from .lookalikes import marks_problem

METADATA_FORMAT = 1
MAX_AUX_CLIPS = MAX_REFERENCES - 1  # auxiliary clips besides the main reference
MAX_ID_CHARS = 64
MAX_NAME_CHARS = 80
MAX_TRANSCRIPT_CHARS = 1000
MAX_SOURCE_CHARS = 500

_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_WEIGHTS_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_LANGUAGE = re.compile(r"[a-z][a-z0-9_]{1,15}")
_SESSION = re.compile(r"[!-~]{1,128}")  # printable ASCII, no spaces
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Device names Windows refuses as file names, whatever the extension.
_WINDOWS_RESERVED = frozenset(["con", "prn", "aux", "nul"] + [f"{p}{n}" for p in ("com", "lpt") for n in range(10)])
# Invisible characters that are legitimate inside names (emoji sequences, Indic scripts).
_ALLOWED_FORMAT_CHARS = frozenset("\u200c\u200d")
_INVISIBLE = frozenset(("Cc", "Cs", "Co", "Cn", "Zl", "Zp", "Cf"))


class SpeakerError(ValueError):
    """Bad input to the speaker library, or a stored speaker that cannot be used."""


class SpeakerNotFound(SpeakerError):
    """No (readable) speaker has this id."""


@dataclass(frozen=True)
class SpeakerProblem:
    """A stored entry that was skipped or set aside, and why. Its files are never deleted."""

    path: str
    reason: str


@dataclass(frozen=True)
class ClipInfo:
    """One stored auxiliary clip: what its WAV header and bytes must match."""

    sample_rate: int
    frames: int  # samples per channel
    channels: int
    audio_sha256: str  # of the WAV file bytes

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


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
    source: str | None  # where the voice comes from / licence note
    sample_rate: int  # of reference.wav
    frames: int  # samples per channel in reference.wav
    channels: int
    audio_sha256: str  # of the reference.wav file bytes
    aux_clips: tuple[ClipInfo, ...] = ()  # aux-1.wav, aux-2.wav, ...: more clips of the voice (none for most)

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    def visible_to(self, session: str | None) -> bool:
        """Shared speakers are visible to everybody, private ones only to their owner session."""
        return self.shared or self.owned_by(session)

    def owned_by(self, session: str | None) -> bool:
        return session is not None and self.owner_session == session

    def to_json(self, session: str | None = None) -> dict[str, Any]:
        """The public view for the REST API: never reveals ``owner_session``; ``own`` says
        whether ``session`` owns the speaker."""
        public = ("id", "name", "language", "transcript", "created_at", "shared", "synthetic", "source", "sample_rate")
        return {**{key: getattr(self, key) for key in public}, "own": self.owned_by(session),
                "duration_s": round(self.duration_s, 3),
                "aux_clips": [{"duration_s": round(clip.duration_s, 3)} for clip in self.aux_clips]}

    def to_metadata(self) -> dict[str, Any]:
        """The ``speaker.json`` document (inverse of :func:`info_from_metadata`); ``aux_clips``
        only when there are some, so a single-clip speaker's file is what it always was."""
        data = {"format": METADATA_FORMAT, **asdict(self)}
        if not self.aux_clips:
            del data["aux_clips"]
        return data


def info_from_metadata(data: Any, expected_id: str | None = None) -> SpeakerInfo:
    """Validate a parsed ``speaker.json`` strictly: no missing, unknown or mistyped key."""
    if not isinstance(data, dict):
        raise SpeakerError("speaker.json must hold a JSON object")
    types = {name: str for name in ("id", "name", "language", "transcript", "created_at", "audio_sha256")}
    types |= {"format": int, "sample_rate": int, "frames": int, "channels": int, "shared": bool, "synthetic": bool,
              "owner_session": str | None, "source": str | None}
    missing, unknown = sorted(set(types) - set(data)), sorted(set(data) - set(types) - {"aux_clips"})
    if missing or unknown:
        raise SpeakerError(f"speaker.json has missing keys {missing} / unknown keys {unknown}")
    for key, allowed in types.items():
        # bool is an int subclass: refuse true/false where a number belongs.
        if not isinstance(data[key], allowed) or (isinstance(data[key], bool) and allowed is not bool):
            raise SpeakerError(f"speaker.json key {key!r} has the wrong type ({type(data[key]).__name__})")
    if data["format"] != METADATA_FORMAT:
        raise SpeakerError(f"speaker.json format is not supported (expected {METADATA_FORMAT})")
    if expected_id is not None and data["id"] != expected_id:
        raise SpeakerError(f"speaker.json says id {data['id']!r} but its folder is {expected_id!r}")
    _check_audio_fields(data, "speaker.json")
    check_visibility(data["shared"], validate_session(data["owner_session"]))
    fields = {key: value for key, value in data.items() if key not in ("format", "aux_clips")}
    return SpeakerInfo(**{**fields, "id": validate_speaker_id(data["id"]), "name": clean_name(data["name"]),
                          "language": validate_language(data["language"]), "transcript": clean_transcript(
                              data["transcript"]), "created_at": validate_timestamp(data["created_at"]),
                          "source": clean_source(data["source"]), "aux_clips": _aux_clips(data.get("aux_clips", []))})


def _aux_clips(value: Any) -> tuple[ClipInfo, ...]:
    """The ``aux_clips`` list of ``speaker.json``: at most MAX_AUX_CLIPS objects, each exactly a ClipInfo."""
    if not isinstance(value, list) or len(value) > MAX_AUX_CLIPS:
        raise SpeakerError(f"speaker.json aux_clips must be a list of at most {MAX_AUX_CLIPS} clips")
    types = {"sample_rate": int, "frames": int, "channels": int, "audio_sha256": str}
    for index, clip in enumerate(value, 1):
        what = f"speaker.json aux_clips[{index}]"
        if not isinstance(clip, dict) or set(clip) != set(types):
            raise SpeakerError(f"{what} must hold exactly the keys {sorted(types)}")
        if any(not isinstance(clip[k], t) or isinstance(clip[k], bool) for k, t in types.items()):
            raise SpeakerError(f"{what} has a value of the wrong type")
        _check_audio_fields(clip, what)
    return tuple(ClipInfo(**clip) for clip in value)


def _check_audio_fields(data: dict[str, Any], what: str) -> None:
    """Plausible sample_rate, frames, channels and audio_sha256 of a stored WAV file."""
    if not (1 <= data["sample_rate"] <= 384_000 and data["frames"] > 0 and 1 <= data["channels"] <= 2):
        raise SpeakerError(f"{what} has an impossible sample_rate, frames or channels value")
    if not _SHA256.fullmatch(data["audio_sha256"]):
        raise SpeakerError(f"{what} audio_sha256 is not a lowercase sha256 hex digest")


def validate_speaker_id(value: Any) -> str:
    """Return ``value`` if it is a speaker id: 1-64 of ``a-z 0-9 - _``, starting with a letter or
    digit. Such an id is one plain path component on every OS; anything else (paths, ``..``,
    NUL, non-ASCII look-alikes, Windows device names) is refused."""
    _matching(value, _ID, "speaker id", "use 1-64 characters from a-z, 0-9, '-', '_', starting with a letter or digit")
    if value in _WINDOWS_RESERVED:
        raise SpeakerError(f"invalid speaker id {value!r}: it is a reserved device name on Windows")
    return value


def id_from_name(name: str) -> str:
    """A readable id from a display name in any script: Chinese characters by their pinyin
    ("你好" -> "ni-hao"), other letters and digits transliterated ("аlice" with a Cyrillic а ->
    "alice"); symbols and emoji separate words. "speaker" when nothing is left."""
    words = []
    for is_han, run in groupby(unicodedata.normalize("NFC", name), key=_is_han):
        text = "".join(run)
        words.extend(lazy_pinyin(text) if is_han else [_ascii(text)])
    slug = re.sub(r"[^a-z0-9]+", "-", " ".join(words).lower()).strip("-")[:MAX_ID_CHARS].rstrip("-")
    if not slug:
        return "speaker"
    return f"speaker-{slug}" if slug in _WINDOWS_RESERVED else slug


def _is_han(char: str) -> bool:
    return unicodedata.name(char, "").startswith(("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH"))


def _ascii(text: str) -> str:
    """Letters and digits transliterated (a letter without one keeps its code point, so none
    is dropped); everything else becomes a space."""
    out = []
    for char in text:
        if unicodedata.category(char)[0] in "LN":
            out.append(anyascii(char) or f"u{ord(char):x}")
        elif unicodedata.category(char)[0] != "M":  # combining marks: part of the letter before
            out.append(" ")
    return "".join(out)


def numbered(base: str, number: int, limit: int, template: str) -> str:
    """``base`` for 1, else ``template`` filled in, ``base`` shortened to stay within ``limit``."""
    if number == 1:
        return base
    suffix = template.format(number)
    return base[: limit - len(suffix)].rstrip() + suffix


def clean_name(value: Any) -> str:
    """A display name as stored: NFC, stripped, 1-80 characters, no control characters
    (a line break inside is refused), no flood of combining marks. Not escaped here: the UI
    escapes it wherever it is shown. Names are compared by :func:`name_key` (look-alikes match)."""
    name = _checked(_nfc(value, "a speaker name").strip(), "a speaker name", MAX_NAME_CHARS)
    if not name:
        raise SpeakerError("a speaker name must not be empty")
    problem = marks_problem(name)
    if problem:
        raise SpeakerError(f"a speaker name {problem}")
    return name


def clean_text(value: Any, what: str, limit: int) -> str:
    """NFC, tabs and line breaks become spaces, stripped; no control or invisible characters."""
    return _checked(re.sub(r"[\t\r\n]+", " ", _nfc(value, what)).strip(), what, limit)


def _nfc(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise SpeakerError(f"{what} must be a string, got {type(value).__name__}")
    return unicodedata.normalize("NFC", value)


def _checked(text: str, what: str, limit: int) -> str:
    if len(text) > limit:
        raise SpeakerError(f"{what} must be at most {limit} characters, got {len(text)}")
    for char in text:
        if unicodedata.category(char) == "Cs":  # from a JSON "\\ud800" escape: no text at all
            raise SpeakerError(f"{what} is not valid text: it holds U+{ord(char):04X}, half of a UTF-16 surrogate "
                               "pair; send UTF-8 text")
        if unicodedata.category(char) in _INVISIBLE and char not in _ALLOWED_FORMAT_CHARS:
            raise SpeakerError(f"{what} must not contain control or invisible characters (found U+{ord(char):04X})")
    return text


def clean_transcript(value: Any) -> str:
    """The reference transcript: may be empty (no-prompt mode); line breaks become spaces."""
    return clean_text(value, "the transcript", MAX_TRANSCRIPT_CHARS)


def clean_source(value: Any) -> str | None:
    """Optional provenance / licence note; empty becomes None."""
    return None if value is None else clean_text(value, "the source note", MAX_SOURCE_CHARS) or None


def validate_language(value: Any) -> str:
    """A language code as the pipeline spells it ("en", "zh", "all_zh", ...)."""
    return _matching(value, _LANGUAGE, "language", "expected a code such as 'en', 'zh' or 'all_zh'")


def validate_session(value: Any) -> str | None:
    """An owner session id, or None for no owner."""
    return None if value is None else _matching(value, _SESSION, "owner session", "use 1-128 printable ASCII")


def validate_weights_key(value: Any) -> str:
    """A weights key (``gsv_core.weights_key``) is one path component."""
    return _matching(value, _WEIGHTS_KEY, "weights key", "use 1-128 characters from A-Z, a-z, 0-9, '_', '-'")


def _matching(value: Any, pattern: re.Pattern[str], what: str, rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise SpeakerError(f"invalid {what} {str(value)[:80]!r}: {rule}")
    return value


def check_visibility(shared: Any, owner_session: str | None) -> None:
    if not isinstance(shared, bool):
        raise SpeakerError(f"'shared' must be true or false, got {type(shared).__name__}")
    if not shared and owner_session is None:
        raise SpeakerError("a private speaker (shared=False) needs an owner_session, or nobody could see it")


def utc_now() -> str:
    """The current time as stored in ``created_at``."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def validate_timestamp(value: str) -> str:
    """An ISO-8601 timestamp in UTC (``Z`` or ``+00:00``)."""
    try:
        offset = datetime.fromisoformat(value).utcoffset()
    except ValueError:
        raise SpeakerError(f"created_at {value[:40]!r} is not an ISO-8601 timestamp") from None
    if offset is None or offset.total_seconds() != 0:
        raise SpeakerError(f"created_at {value!r} must be in UTC")
    return value
