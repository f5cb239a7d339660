"""Export one speaker as a zip, and read such a zip back with strict checks.

An archive holds ``speaker.json``, ``reference.wav``, the auxiliary clips ``aux-<n>.wav`` that
``speaker.json`` lists (if any) and optionally ``embeddings/<weights_key>/<file>`` for the files
``SpeakerConditioning.save`` writes.
Uploaded archives are untrusted: every member name is checked against that list (so no
absolute path, ``..``, backslash or link slips through), sizes are limited on the
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
from datetime import datetime
from pathlib import Path

from .records import MAX_AUX_CLIPS, SpeakerError, SpeakerInfo, info_from_metadata, validate_weights_key
from .store import (
    ARRAY_FILES, AUDIO_FILE, CONDITIONING_FILE, EMBEDDINGS_DIR, MAX_AUDIO_BYTES, MAX_METADATA_BYTES, METADATA_FILE,
    aux_file, aux_paths, check_embeddings, metadata_bytes,
)

MAX_ARCHIVE_BYTES = 96 << 20
MAX_MEMBERS = 64  # metadata, up to 8 clips, and at least 6 full embedding sets of 8 files
MAX_EMBEDDING_SETS = 8
MAX_ARRAY_BYTES = 32 << 20
MAX_TOTAL_BYTES = 160 << 20
_EMBEDDING_MEMBER = re.compile(r"embeddings/([^/]+)/([^/]*)")
_AUX_MEMBERS = frozenset(aux_file(number) for number in range(1, MAX_AUX_CLIPS + 1))


@dataclass(frozen=True)
class SpeakerArchive:
    """The checked layout of an uploaded zip; audio and embedding bytes are checked on unpacking."""

    info: SpeakerInfo
    audio: bytes
    embeddings: dict[str, dict[str, bytes]]  # weights_key -> file name -> bytes
    aux_audio: tuple[bytes, ...] = ()  # aux-1.wav, aux-2.wav, ... as info.aux_clips lists them


def build_archive(folder: Path, info: SpeakerInfo) -> bytes:
    """Zip one stored speaker with its intact embedding sets (damaged ones stay behind and are
    recomputed by the importer). The owner session never leaves the server."""
    buffer = io.BytesIO()
    # dated by the voice's creation, not the export, so that exporting the same voice twice gives the same bytes
    # (a web app's download cache then holds one copy, whatever the number of exports)
    created = datetime.fromisoformat(info.created_at.replace("Z", "+00:00"))
    metadata = zipfile.ZipInfo(METADATA_FILE, date_time=max(created.timetuple()[:6], (1980, 1, 1, 0, 0, 0)))
    metadata.external_attr = 0o644 << 16  # rw-r--r--, as the other members
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(metadata, metadata_bytes(replace(info, owner_session=None, shared=True)),
                         compress_type=zipfile.ZIP_DEFLATED)
        archive.write(folder / AUDIO_FILE, AUDIO_FILE)
        for path in aux_paths(folder, info):
            archive.write(path, path.name)
        embeddings = folder / EMBEDDINGS_DIR
        for directory in sorted(embeddings.iterdir()) if embeddings.is_dir() else ():
            try:
                validate_weights_key(directory.name)
                check_embeddings(directory)
            except SpeakerError:
                continue
            for path in sorted(directory.iterdir()):
                archive.write(path, f"{EMBEDDINGS_DIR}/{directory.name}/{path.name}")
    return buffer.getvalue()


def read_archive(source: bytes | str | os.PathLike) -> SpeakerArchive:
    """Parse and check an uploaded speaker zip; raises SpeakerError saying what is wrong."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(_archive_bytes(source)))
    except (zipfile.BadZipFile, ValueError) as error:
        raise SpeakerError(f"not a valid zip archive ({error})") from None
    contents: dict[str, bytes] = {}
    with archive:
        if len(archive.infolist()) > MAX_MEMBERS:
            raise SpeakerError(f"the archive has more than {MAX_MEMBERS} entries")
        for member in archive.infolist():
            limit = _member_limit(member, contents)
            if limit:
                contents[member.filename] = _read_member(archive, member, limit)
                if sum(map(len, contents.values())) > MAX_TOTAL_BYTES:
                    raise SpeakerError(f"the archive unpacks to more than {MAX_TOTAL_BYTES >> 20} MiB")
    for required in (METADATA_FILE, AUDIO_FILE):
        if required not in contents:
            raise SpeakerError(f"the archive has no {required}")
    try:
        info = info_from_metadata(json.loads(contents.pop(METADATA_FILE).decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SpeakerError(f"{METADATA_FILE} in the archive is not valid JSON ({error})") from None
    audio = contents.pop(AUDIO_FILE)
    aux_names = [aux_file(number) for number in range(1, len(info.aux_clips) + 1)]
    if set(aux_names) != _AUX_MEMBERS & set(contents):
        raise SpeakerError(f"the archive's auxiliary clips do not match its {METADATA_FILE} "
                           f"(expected {', '.join(aux_names) or 'none'})")
    aux_audio = tuple(contents.pop(name) for name in aux_names)
    embeddings: dict[str, dict[str, bytes]] = {}
    for name, payload in contents.items():
        key, file_name = _EMBEDDING_MEMBER.fullmatch(name).groups()
        embeddings.setdefault(key, {})[file_name] = payload
    if len(embeddings) > MAX_EMBEDDING_SETS:
        raise SpeakerError(f"the archive has more than {MAX_EMBEDDING_SETS} embedding sets")
    return SpeakerArchive(info=info, audio=audio, embeddings=embeddings, aux_audio=aux_audio)


def _archive_bytes(source: bytes | str | os.PathLike) -> bytes:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise SpeakerError(f"archive not found: {path}")
        if path.stat().st_size > MAX_ARCHIVE_BYTES:
            raise SpeakerError(f"the archive is larger than {MAX_ARCHIVE_BYTES >> 20} MiB")
        source = path.read_bytes()
    if not isinstance(source, (bytes, bytearray, memoryview)):
        raise SpeakerError(f"an archive must be bytes or a file path, got {type(source).__name__}")
    if len(source) > MAX_ARCHIVE_BYTES:
        raise SpeakerError(f"the archive is larger than {MAX_ARCHIVE_BYTES >> 20} MiB")
    return bytes(source)


def _member_limit(member: zipfile.ZipInfo, seen: dict[str, bytes]) -> int:
    """Size limit of an allowed member; 0 for a harmless folder entry. Refuses everything else."""
    name, shown = member.filename, repr(member.filename[:100])
    if member.flag_bits & 0x1:
        raise SpeakerError(f"archive entry {shown} is encrypted")
    if stat.S_ISLNK(member.external_attr >> 16):
        raise SpeakerError(f"archive entry {shown} is a symbolic link")
    if name in seen:
        raise SpeakerError(f"archive entry {shown} appears twice")
    if name in (METADATA_FILE, AUDIO_FILE) or name in _AUX_MEMBERS:
        return MAX_METADATA_BYTES if name == METADATA_FILE else MAX_AUDIO_BYTES
    if name == f"{EMBEDDINGS_DIR}/":
        return 0
    match = _EMBEDDING_MEMBER.fullmatch(name)
    if match is None:
        raise SpeakerError(f"unexpected entry {shown} in the archive (allowed: {METADATA_FILE}, {AUDIO_FILE}, "
                           f"aux-<n>.wav, {EMBEDDINGS_DIR}/<weights_key>/<array>.npy)")
    validate_weights_key(match.group(1))
    if member.is_dir() and match.group(2) == "":
        return 0
    if match.group(2) == CONDITIONING_FILE:
        return MAX_METADATA_BYTES
    if match.group(2) in ARRAY_FILES:
        return MAX_ARRAY_BYTES
    raise SpeakerError(f"unexpected entry {shown} in the archive")


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, limit: int) -> bytes:
    """The member's bytes, reading at most ``limit + 1`` whatever its header claims."""
    too_large = SpeakerError(f"archive entry {member.filename!r} is larger than {limit} bytes")
    if member.file_size > limit:
        raise too_large
    try:
        with archive.open(member) as handle:
            payload = handle.read(limit + 1)
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as error:
        raise SpeakerError(f"archive entry {member.filename!r} cannot be read ({error})") from None
    if len(payload) > limit:
        raise too_large
    return payload
