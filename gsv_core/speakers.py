"""The speaker library: reference voices on disk, their conditioning computed once per weights.

Each speaker is a folder ``<root>/<id>/`` (layout in :mod:`gsv_core.speaker_store`). The
library never imports a model: whoever owns the weights passes ``prepare(audio_path,
transcript, language) -> SpeakerConditioning`` and a ``weights_key`` naming those weights
(see :func:`weights_key`). Embeddings are stored per weights key, so after a weights change
they are recomputed on demand, never silently reused.

Safe to share between threads, and between processes on one root: every change takes the
root's lock file, and every write is atomic. Changes made by other processes show up in
:meth:`SpeakerLibrary.get` at once and in :meth:`SpeakerLibrary.list` after :meth:`reload`.

Importing an archive whose id is taken gives the speaker a numbered id (``alice-2``);
adding with an explicit ``speaker_id`` that is taken is refused instead.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from gsv_core.conditioning import SpeakerConditioning
from gsv_core.speaker_archive import SpeakerArchive, build_archive, read_archive, unpack_embeddings
from gsv_core.speaker_meta import (
    SpeakerError,
    SpeakerInfo,
    SpeakerNotFound,
    SpeakerProblem,
    check_visibility,
    clean_name,
    clean_source,
    clean_transcript,
    id_from_name,
    utc_now,
    validate_language,
    validate_session,
    validate_speaker_id,
    validate_weights_key,
    weights_key,
)
from gsv_core.speaker_store import (
    AUDIO_FILE,
    EMBEDDINGS_DIR,
    METADATA_FILE,
    TRASH_DIR,
    LruCache,
    atomic_write_bytes,
    clean_leftovers,
    commit_dir,
    decode_audio,
    discard_tree,
    embedding_problems,
    free_speaker_id,
    fsync_dir,
    load_conditioning,
    load_vector,
    metadata_bytes,
    new_staging_dir,
    read_entry,
    save_embeddings,
    set_aside,
    speaker_vector as vector_of,
    write_reference_audio,
    write_lock,
)

__all__ = [
    "PrepareFn", "SpeakerError", "SpeakerInfo", "SpeakerLibrary", "SpeakerNotFound", "SpeakerProblem",
    "validate_speaker_id", "weights_key",
]

log = logging.getLogger(__name__)

PrepareFn = Callable[[Path, "str | None", str], SpeakerConditioning]
"""prepare(reference_wav_path, transcript or None when empty, language) -> SpeakerConditioning"""

_COMPUTE_STRIPES = 16


class SpeakerLibrary:
    """All speakers under ``root``, loaded at construction; damaged entries land in :attr:`problems`."""

    def __init__(self, root: str | os.PathLike, cache_size: int = 16) -> None:
        if not isinstance(cache_size, int) or cache_size < 0:
            raise SpeakerError(f"cache_size must be a non-negative integer, got {cache_size!r}")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()  # guards _speakers and _problems
        self._speakers: dict[str, SpeakerInfo] = {}
        self._problems: list[SpeakerProblem] = []
        self._cache = LruCache(cache_size)
        # One compute lock per stripe of (id, key): two threads never prepare the same speaker twice.
        self._compute_locks = tuple(threading.Lock() for _ in range(_COMPUTE_STRIPES))
        self.reload()

    # -- reading ---------------------------------------------------------------------------

    @property
    def problems(self) -> list[SpeakerProblem]:
        """Entries skipped at the last (re)load or set aside since, with reasons. Never deleted."""
        with self._lock:
            return list(self._problems)

    @property
    def cached_count(self) -> int:
        """How many conditionings the in-memory cache holds now (at most ``cache_size``)."""
        return len(self._cache)

    def reload(self) -> None:
        """Rescan the root: picks up other processes' changes and reports damaged entries."""
        with write_lock(self.root):
            clean_leftovers(self.root)
        speakers: dict[str, SpeakerInfo] = {}
        problems: list[SpeakerProblem] = []
        for folder in sorted(self.root.iterdir()):
            if folder.name.startswith(".") or not (folder.is_dir() or folder.is_symlink()):
                continue  # the lock file, work folders, and files such as scripts
            try:
                validate_speaker_id(folder.name)
                speakers[folder.name] = read_entry(folder)
            except SpeakerError as error:
                problems.append(SpeakerProblem(str(folder), f"skipped: {error}"))
                continue
            problems.extend(embedding_problems(folder))
        for problem in problems:
            log.warning("speaker library: %s: %s", problem.path, problem.reason)
        with self._lock:
            self._speakers, self._problems = speakers, problems

    def list(self, session: str | None = None) -> list[SpeakerInfo]:
        """Shared speakers plus those owned by ``session``, oldest first."""
        with self._lock:
            speakers = list(self._speakers.values())
        return sorted((s for s in speakers if s.visible_to(session)), key=lambda s: (s.created_at, s.id))

    def get(self, speaker_id: str) -> SpeakerInfo:
        """Metadata of one speaker, whoever owns it (callers check :meth:`SpeakerInfo.visible_to`)."""
        speaker_id = validate_speaker_id(speaker_id)
        with self._lock:
            info = self._speakers.get(speaker_id)
        if info is not None:
            return info
        folder = self.root / speaker_id
        if not folder.exists():
            raise SpeakerNotFound(f"no speaker with id {speaker_id!r}")
        try:
            info = read_entry(folder)  # added by another process since we loaded
        except SpeakerError as error:
            raise SpeakerNotFound(f"speaker {speaker_id!r} is damaged and was skipped: {error}") from None
        with self._lock:
            return self._speakers.setdefault(speaker_id, info)

    def __contains__(self, speaker_id: object) -> bool:
        try:
            self.get(speaker_id)  # type: ignore[arg-type]
        except SpeakerError:
            return False
        return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._speakers)

    def reference_path(self, speaker_id: str) -> Path:
        """The stored reference clip (WAV), e.g. for playing it in the UI."""
        return self.root / self.get(speaker_id).id / AUDIO_FILE

    # -- adding ----------------------------------------------------------------------------

    def add(
        self,
        audio: str | os.PathLike | bytes,
        transcript: str,
        language: str,
        name: str,
        *,
        prepare: PrepareFn | None,
        weights_key: str | None,
        speaker_id: str | None = None,
        shared: bool = True,
        owner_session: str | None = None,
        synthetic: bool = False,
        source: str | None = None,
    ) -> SpeakerInfo:
        """Store a new speaker from an audio file path or the file's bytes; returns its metadata.

        Every argument is checked before anything is written. ``prepare`` runs on the stored
        WAV copy before the entry is committed, so if it raises nothing is left behind (its
        exception propagates unchanged). Without ``speaker_id`` the id comes from ``name``,
        numbered on collision (``alice``, ``alice-2``, ...); a given ``speaker_id`` that is
        taken is refused. ``prepare=None, weights_key=None`` stores the speaker without
        embeddings (they are computed on first use).
        """
        if (prepare is None) != (weights_key is None):
            raise SpeakerError("pass prepare and weights_key together, or neither")
        key = None if weights_key is None else validate_weights_key(weights_key)
        owner = validate_session(owner_session)
        check_visibility(shared, owner)
        if not isinstance(synthetic, bool):
            raise SpeakerError("'synthetic' must be true or false")
        fields = {
            "name": clean_name(name),
            "language": validate_language(language),
            "transcript": clean_transcript(transcript),
            "shared": shared,
            "owner_session": owner,
            "synthetic": synthetic,
            "source": clean_source(source),
        }
        explicit_id = None if speaker_id is None else validate_speaker_id(speaker_id)
        decoded = decode_audio(audio)  # bad audio is refused before anything is created
        staging = new_staging_dir(self.root, "add")
        try:
            sample_rate, frames, channels, sha256 = write_reference_audio(decoded, staging / AUDIO_FILE)
            info = SpeakerInfo(
                id=explicit_id or id_from_name(fields["name"]), created_at=utc_now(), sample_rate=sample_rate,
                frames=frames, channels=channels, audio_sha256=sha256, **fields,
            )
            conditioning = None
            if prepare is not None:
                conditioning = self._prepare(prepare, staging / AUDIO_FILE, info)
                save_embeddings(conditioning, _mkdirs(staging / EMBEDDINGS_DIR / key))
            info = self._commit_new(staging, info, numbered=explicit_id is None)
        except BaseException:
            discard_tree(staging)
            raise
        if conditioning is not None:
            self._cache.put((info.id, key), conditioning)
        return info

    def import_zip(
        self, archive: bytes | str | os.PathLike, *, shared: bool = True, owner_session: str | None = None
    ) -> SpeakerInfo:
        """Add a speaker exported by :meth:`export_zip` (bytes or a path), checked strictly.

        The archive's id is kept when free, else numbered (``alice-2``). Visibility comes from
        the arguments, not the archive. Embedding sets in the archive are loaded and checked
        (a damaged one refuses the whole import); the reference audio is re-encoded like an upload.
        """
        owner = validate_session(owner_session)
        check_visibility(shared, owner)
        content: SpeakerArchive = read_archive(archive)
        decoded = decode_audio(content.audio)
        staging = new_staging_dir(self.root, "import")
        try:
            sample_rate, frames, channels, sha256 = write_reference_audio(decoded, staging / AUDIO_FILE)
            expected = (content.info.sample_rate, content.info.frames, content.info.channels)
            if (sample_rate, frames, channels) != expected:
                raise SpeakerError(f"{AUDIO_FILE} in the archive does not match its {METADATA_FILE}")
            for key, files in content.embeddings.items():
                unpack_embeddings(staging / EMBEDDINGS_DIR / key, files)
            info = replace(content.info, shared=shared, owner_session=owner, audio_sha256=sha256)
            info = self._commit_new(staging, info, numbered=True)
        except BaseException:
            discard_tree(staging)
            raise
        return info

    # -- conditioning ----------------------------------------------------------------------

    def conditioning(self, speaker_id: str, *, prepare: PrepareFn, weights_key: str) -> SpeakerConditioning:
        """The speaker's conditioning for these weights: from the cache, else from disk, else
        computed with ``prepare`` and saved (atomically) for next time."""
        info = self.get(speaker_id)
        key = validate_weights_key(weights_key)
        cached = self._cache.get((info.id, key))
        if cached is not None:
            return cached
        with self._compute_locks[hash((info.id, key)) % _COMPUTE_STRIPES]:
            cached = self._cache.get((info.id, key))
            if cached is not None:
                return cached
            conditioning = self._load_stored(info.id, key)
            if conditioning is None:
                conditioning = self._compute(info, key, prepare)
            self._cache.put((info.id, key), conditioning)
            return conditioning

    def speaker_vector(self, speaker_id: str, *, weights_key: str, prepare: PrepareFn | None = None) -> np.ndarray:
        """(D,) L2-normalized speaker vector for these weights. Without ``prepare``, a speaker
        whose embeddings are not computed yet raises SpeakerError."""
        info = self.get(speaker_id)
        key = validate_weights_key(weights_key)
        cached = self._cache.get((info.id, key))
        if cached is not None:
            return vector_of(cached)
        directory = self.root / info.id / EMBEDDINGS_DIR / key
        try:
            return load_vector(directory)
        except (SpeakerError, OSError):
            if prepare is None:
                raise SpeakerError(
                    f"speaker {info.id!r} has no usable embeddings for weights {key!r} yet; "
                    "pass prepare= to compute them"
                ) from None
        return vector_of(self.conditioning(info.id, prepare=prepare, weights_key=key))

    def similarity(self, id_a: str, id_b: str, weights_key: str, *, prepare: PrepareFn | None = None) -> float:
        """Cosine similarity of two speakers' vectors under the same weights, in [-1, 1]."""
        vector_a = self.speaker_vector(id_a, weights_key=weights_key, prepare=prepare)
        vector_b = self.speaker_vector(id_b, weights_key=weights_key, prepare=prepare)
        if vector_a.shape != vector_b.shape:
            raise SpeakerError(f"speaker vectors differ in size ({vector_a.shape[0]} vs {vector_b.shape[0]})")
        return float(np.clip(np.dot(vector_a, vector_b), -1.0, 1.0))

    # -- changing --------------------------------------------------------------------------

    def rename(self, speaker_id: str, name: str) -> SpeakerInfo:
        """Change the display name; the id (and folder) stay."""
        name = clean_name(name)
        speaker_id = self.get(speaker_id).id
        folder = self.root / speaker_id
        with write_lock(self.root):
            try:
                current = read_entry(folder)  # fresh: another process may have changed it
            except SpeakerError as error:
                if not folder.exists():
                    self._forget(speaker_id)
                raise SpeakerNotFound(f"speaker {speaker_id!r} cannot be renamed: {error}") from None
            info = replace(current, name=name)
            atomic_write_bytes(folder / METADATA_FILE, metadata_bytes(info))
        with self._lock:
            self._speakers[speaker_id] = info
        return info

    def delete(self, speaker_id: str) -> None:
        """Remove a speaker and its embeddings (moved out of sight atomically, then erased)."""
        speaker_id = self.get(speaker_id).id
        trash = self.root / TRASH_DIR / f"{speaker_id}-{uuid.uuid4().hex}"
        with write_lock(self.root):
            present = (self.root / speaker_id).is_dir()
            if present:
                trash.parent.mkdir(exist_ok=True)
                os.rename(self.root / speaker_id, trash)
                fsync_dir(self.root)
        self._forget(speaker_id)
        if not present:
            raise SpeakerNotFound(f"no speaker with id {speaker_id!r} (deleted meanwhile?)")
        discard_tree(trash)

    def export_zip(
        self, speaker_id: str, destination: str | os.PathLike | None = None, *, include_embeddings: bool = True
    ) -> bytes:
        """The speaker as one zip (metadata, reference audio, valid embedding sets); also
        written atomically to ``destination`` when given. The owner session is left out."""
        info = self.get(speaker_id)
        data = build_archive(self.root / info.id, info, include_embeddings)
        if destination is not None:
            atomic_write_bytes(Path(destination), data)
        return data

    # -- internals -------------------------------------------------------------------------

    def _forget(self, speaker_id: str) -> None:
        with self._lock:
            self._speakers.pop(speaker_id, None)
        self._cache.discard_speaker(speaker_id)

    def _prepare(self, prepare: PrepareFn, audio_path: Path, info: SpeakerInfo) -> SpeakerConditioning:
        conditioning = prepare(audio_path, info.transcript or None, info.language)
        if not isinstance(conditioning, SpeakerConditioning):
            raise SpeakerError(f"prepare returned {type(conditioning).__name__}, expected SpeakerConditioning")
        return conditioning

    def _commit_new(self, staging: Path, info: SpeakerInfo, numbered: bool) -> SpeakerInfo:
        """Under the lock: choose the final id, write speaker.json, rename into place."""
        with write_lock(self.root):
            info = replace(info, id=free_speaker_id(self.root, info.id, numbered))
            (staging / METADATA_FILE).write_bytes(metadata_bytes(info))
            commit_dir(staging, self.root / info.id)
        with self._lock:
            self._speakers[info.id] = info
        return info

    def _load_stored(self, speaker_id: str, key: str) -> SpeakerConditioning | None:
        """Saved embeddings, or None. A damaged set is renamed aside (never deleted) and reported."""
        directory = self.root / speaker_id / EMBEDDINGS_DIR / key
        if not directory.exists():
            return None
        try:
            return load_conditioning(directory)
        except (SpeakerError, OSError) as error:
            with write_lock(self.root):
                aside = set_aside(directory)
            problem = SpeakerProblem(str(directory), f"set aside as {aside.name} and recomputed: {error}")
            log.warning("speaker library: %s: %s", problem.path, problem.reason)
            with self._lock:
                self._problems.append(problem)
            return None

    def _compute(self, info: SpeakerInfo, key: str, prepare: PrepareFn) -> SpeakerConditioning:
        folder = self.root / info.id
        conditioning = self._prepare(prepare, folder / AUDIO_FILE, info)
        staging = new_staging_dir(self.root, "embeddings")
        try:
            save_embeddings(conditioning, staging)
            with write_lock(self.root):
                if not (folder / METADATA_FILE).is_file():
                    raise SpeakerNotFound(f"speaker {info.id!r} was deleted while its embeddings were computed")
                target = _mkdirs(folder / EMBEDDINGS_DIR) / key
                if not target.exists():  # else another process saved the same weights' set first
                    commit_dir(staging, target)
        finally:
            discard_tree(staging)
        return conditioning


def _mkdirs(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
