"""Export one speaker as a zip, and read such a zip back with strict checks.

An archive holds ``speaker.json``, ``reference.wav`` and optionally
``embeddings/<weights_key>/<file>`` for the files :func:`speaker_store.save_embeddings` writes.
Uploaded archives are untrusted: every member name is checked against that list (so no
absolute path, ``..``, backslash or link can slip through), sizes are limited on the
decompressed bytes actually read (zip headers can lie), and nothing is written here.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from gsv_core.speaker_meta import SpeakerError, SpeakerInfo, info_from_metadata, validate_weights_key
from gsv_core.speaker_store import (
    ARRAY_FILES,
    AUDIO_FILE,
    CONDITIONING_FILE,
    EMBEDDINGS_DIR,
    MAX_AUDIO_BYTES,
    MAX_METADATA_BYTES,
    METADATA_FILE,
    check_embeddings,
    check_npy,
    load_conditioning,
    metadata_bytes,
)

MAX_ARCHIVE_BYTES = 96 << 20
MAX_MEMBERS = 64
MAX_EMBEDDING_SETS = 8
MAX_ARRAY_BYTES = 32 << 20
MAX_TOTAL_BYTES = 160 << 20
_EMBEDDING_MEMBER = re.compile(r"embeddings/([^/]+)/([^/]+)")


@dataclass(frozen=True)
class SpeakerArchive:
    """The validated content of an uploaded zip (audio and embeddings still unchecked bytes)."""

    info: SpeakerInfo
    audio: bytes
    embeddings: dict[str, dict[str, bytes]]  # weights_key -> file name -> bytes


def build_archive(folder: Path, info: SpeakerInfo, include_embeddings: bool = True) -> bytes:
    """Zip one stored speaker. ``owner_session`` is dropped: a session id never leaves the server."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(METADATA_FILE, metadata_bytes(replace(info, owner_session=None, shared=True)))
        archive.write(folder / AUDIO_FILE, AUDIO_FILE)
        embeddings = folder / EMBEDDINGS_DIR
        if include_embeddings and embeddings.is_dir():
            for directory in sorted(embeddings.iterdir()):
                try:
                    validate_weights_key(directory.name)
                    check_embeddings(directory)
                except SpeakerError:
                    continue  # damaged or foreign sets stay behind; the importer recomputes them
                for path in sorted(directory.iterdir()):
                    archive.write(path, f"{EMBEDDINGS_DIR}/{directory.name}/{path.name}")
    return buffer.getvalue()


def read_archive(source: bytes | str | os.PathLike) -> SpeakerArchive:
    """Parse and check an uploaded speaker zip; raises SpeakerError saying what is wrong."""
    data = _archive_bytes(source)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as error:
        raise SpeakerError(f"not a valid zip archive ({error})") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise SpeakerError(f"the archive has {len(members)} entries, at most {MAX_MEMBERS} are allowed")
        contents: dict[str, bytes] = {}
        total = 0
        for member in members:
            limit = _check_member(member, contents)
            if limit is None:
                continue
            payload = _read_member(archive, member, limit)
            total += len(payload)
            if total > MAX_TOTAL_BYTES:
                raise SpeakerError(f"the archive unpacks to more than {MAX_TOTAL_BYTES >> 20} MiB")
            contents[member.filename] = payload
    for required in (METADATA_FILE, AUDIO_FILE):
        if required not in contents:
            raise SpeakerError(f"the archive has no {required}")
    try:
        metadata = json.loads(contents.pop(METADATA_FILE).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SpeakerError(f"{METADATA_FILE} in the archive is not valid JSON ({error})") from None
    info = info_from_metadata(metadata)
    audio = contents.pop(AUDIO_FILE)
    embeddings: dict[str, dict[str, bytes]] = {}
    for name, payload in contents.items():
        key, file_name = _EMBEDDING_MEMBER.fullmatch(name).groups()
        embeddings.setdefault(key, {})[file_name] = payload
    if len(embeddings) > MAX_EMBEDDING_SETS:
        raise SpeakerError(f"the archive has more than {MAX_EMBEDDING_SETS} embedding sets")
    return SpeakerArchive(info=info, audio=audio, embeddings=embeddings)


def _archive_bytes(source: bytes | str | os.PathLike) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise SpeakerError(f"archive not found: {path}")
        if path.stat().st_size > MAX_ARCHIVE_BYTES:
            raise SpeakerError(f"the archive is larger than {MAX_ARCHIVE_BYTES >> 20} MiB")
        data = path.read_bytes()
    else:
        raise SpeakerError(f"an archive must be bytes or a file path, got {type(source).__name__}")
    if len(data) > MAX_ARCHIVE_BYTES:
        raise SpeakerError(f"the archive is larger than {MAX_ARCHIVE_BYTES >> 20} MiB")
    return data


def _check_member(member: zipfile.ZipInfo, seen: dict[str, bytes]) -> int | None:
    """Size limit for an allowed member; None for a harmless folder entry. Refuses the rest."""
    name = member.filename
    shown = repr(name[:100])
    if member.flag_bits & 0x1:
        raise SpeakerError(f"archive entry {shown} is encrypted")
    if stat.S_ISLNK(member.external_attr >> 16):
        raise SpeakerError(f"archive entry {shown} is a symbolic link")
    if name in seen:
        raise SpeakerError(f"archive entry {shown} appears twice")
    if member.is_dir():
        if name in (f"{EMBEDDINGS_DIR}/",) or _is_embeddings_folder(name):
            return None
        raise SpeakerError(f"unexpected folder {shown} in the archive")
    if name == METADATA_FILE:
        return MAX_METADATA_BYTES
    if name == AUDIO_FILE:
        return MAX_AUDIO_BYTES
    match = _EMBEDDING_MEMBER.fullmatch(name)
    if match is None:
        raise SpeakerError(
            f"unexpected entry {shown} in the archive (allowed: {METADATA_FILE}, {AUDIO_FILE}, "
            f"{EMBEDDINGS_DIR}/<weights_key>/<array>.npy)"
        )
    validate_weights_key(match.group(1))
    if match.group(2) == CONDITIONING_FILE:
        return MAX_METADATA_BYTES
    if match.group(2) in ARRAY_FILES:
        return MAX_ARRAY_BYTES
    raise SpeakerError(f"unexpected entry {shown} in the archive")


def _is_embeddings_folder(name: str) -> bool:
    parts = name.split("/")
    if len(parts) != 3 or parts[0] != EMBEDDINGS_DIR or parts[2] != "":
        return False
    validate_weights_key(parts[1])
    return True


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, limit: int) -> bytes:
    if member.file_size > limit:
        raise SpeakerError(f"archive entry {member.filename!r} is larger than {limit} bytes")
    try:
        with archive.open(member) as handle:
            payload = handle.read(limit + 1)
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as error:
        raise SpeakerError(f"archive entry {member.filename!r} cannot be read ({error})") from None
    if len(payload) > limit:
        raise SpeakerError(f"archive entry {member.filename!r} is larger than {limit} bytes")
    return payload


def unpack_embeddings(directory: Path, files: dict[str, bytes]) -> None:
    """Write one imported embedding set and prove it loads (shapes, vector) before committing."""
    directory.mkdir(parents=True)
    for name, payload in files.items():
        (directory / name).write_bytes(payload)
    try:
        for path in directory.glob("*.npy"):
            check_npy(path)
        load_conditioning(directory)
    except SpeakerError as error:
        raise SpeakerError(f"embeddings {directory.name!r} in the archive are damaged: {error}") from None
