"""The speaker library: reference voices on disk, their conditioning computed once per weights.

The library never imports a model: whoever owns the weights passes ``prepare(audio_path,
transcript or None, language) -> SpeakerConditioning`` (called with ``aux_audio=[paths]`` as
well for a voice with auxiliary clips) and a ``weights_key`` naming those weights
(``gsv_core.weights_key``). Embeddings are stored per weights key, so after a
weights change they are recomputed on demand, never silently reused.

Safe to share between threads, and between processes on one root: every change takes the
root's lock file and every write is atomic. Other processes' changes show up in :meth:`get`
at once and in :meth:`list` after :meth:`reload`.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Callable

from gsv_core.conditioning import ConditioningLimits, SpeakerConditioning

from . import store
from .archive import SpeakerArchive, build_archive, read_archive
from .lookalikes import name_key
from .records import (
    MAX_AUX_CLIPS, MAX_ID_CHARS, MAX_NAME_CHARS, ClipInfo, SpeakerError, SpeakerInfo, SpeakerNotFound, SpeakerProblem,
    check_visibility, clean_name, clean_source, clean_transcript, id_from_name, numbered, utc_now,
    validate_language, validate_session, validate_speaker_id, validate_weights_key,
)
from .store import AUDIO_FILE, EMBEDDINGS_DIR, METADATA_FILE, write_lock

log = logging.getLogger(__name__)

PrepareFn = Callable[..., SpeakerConditioning]
"""prepare(reference_wav_path, transcript or None when empty, language) -> SpeakerConditioning;
for a voice with auxiliary clips also ``aux_audio=[aux_wav_path, ...]`` (a keyword, in order),
as :meth:`gsv_core.engine.pipeline.VoicePipeline.prepare_speaker` takes it."""

_COMPUTE_STRIPES = 16


class SpeakerLibrary:
    """All speakers under ``root``, loaded at construction; damaged entries land in :attr:`problems`.

    ``cache_size`` conditionings stay in memory (least recently used go first); ``limits``
    bound the conditioning of every stored, imported or prepared voice.
    """

    def __init__(self, root: str | os.PathLike, cache_size: int = 16,
                 limits: ConditioningLimits = ConditioningLimits()) -> None:
        if not isinstance(cache_size, int) or cache_size < 0:
            raise SpeakerError(f"cache_size must be a non-negative integer, got {cache_size!r}")
        self.root, self.limits, self._cache_size = Path(root), limits, cache_size
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()  # guards the three fields below
        self._speakers: dict[str, SpeakerInfo] = {}
        self._problems: list[SpeakerProblem] = []
        self._cache: OrderedDict[tuple[str, str], SpeakerConditioning] = OrderedDict()
        # One lock per stripe of (id, key): two threads never prepare the same speaker twice.
        self._compute_locks = tuple(threading.Lock() for _ in range(_COMPUTE_STRIPES))
        self.reload()

    # -- reading ---------------------------------------------------------------------------

    @property
    def problems(self) -> list[SpeakerProblem]:
        """Entries skipped at the last (re)load or set aside since, with reasons. Never deleted."""
        with self._lock:
            return list(self._problems)

    def reload(self) -> None:
        """Rescan the root: picks up other processes' changes and reports damaged entries."""
        with write_lock(self.root):
            store.clean_leftovers(self.root)
            speakers, problems = self._scan()
            for speaker_id in speakers:
                problems.extend(store.embedding_problems(self.root / speaker_id))
        for problem in problems:
            log.warning("speaker library: %s: %s", problem.path, problem.reason)
        with self._lock:
            self._speakers, self._problems = speakers, problems

    def list(self, session: str | None = None) -> list[SpeakerInfo]:
        """Shared speakers plus those owned by ``session``, oldest first."""
        with self._lock:
            speakers = [s for s in self._speakers.values() if s.visible_to(session)]
        return sorted(speakers, key=lambda s: (s.created_at, s.id))

    def get(self, speaker_id: str) -> SpeakerInfo:
        """Metadata of one speaker, whoever owns it (callers check :meth:`SpeakerInfo.visible_to`)."""
        speaker_id = validate_speaker_id(speaker_id)
        with self._lock:
            if speaker_id in self._speakers:
                return self._speakers[speaker_id]
        if not (self.root / speaker_id).exists():
            raise SpeakerNotFound(f"no speaker with id {speaker_id!r}")
        try:
            info = store.read_entry(self.root / speaker_id)  # added by another process since we loaded
        except SpeakerError as error:
            raise SpeakerNotFound(f"speaker {speaker_id!r} is damaged and was skipped: {error}") from None
        with self._lock:
            return self._speakers.setdefault(speaker_id, info)

    def reference_path(self, speaker_id: str) -> Path:
        """The stored reference clip (WAV), e.g. for playing it in the UI."""
        return self.root / self.get(speaker_id).id / AUDIO_FILE

    def aux_paths(self, speaker_id: str) -> list[Path]:
        """The stored auxiliary clips (WAV) in order; empty for a single-clip voice."""
        info = self.get(speaker_id)
        return store.aux_paths(self.root / info.id, info)

    def export_zip(self, speaker_id: str) -> bytes:
        """The speaker as one zip: metadata (without its owner), reference and auxiliary audio, intact embeddings."""
        info = self.get(speaker_id)
        return build_archive(self.root / info.id, info)

    # -- adding ----------------------------------------------------------------------------

    def add(
        self, audio: str | os.PathLike | bytes, transcript: str, language: str, name: str, *,
        prepare: PrepareFn | None, weights_key: str | None, speaker_id: str | None = None, shared: bool = True,
        owner_session: str | None = None, synthetic: bool = False, source: str | None = None,
        aux_audio: Sequence[str | os.PathLike | bytes] = (),
    ) -> SpeakerInfo:
        """Store a new speaker from an audio file path or the file's bytes; returns its metadata.

        ``aux_audio``: up to MAX_AUX_CLIPS more clips of the voice (paths or bytes), stored as
        ``aux-1.wav``...; the voice is conditioned on all clips, the prompt on ``audio`` alone.
        Everything is checked before anything is written; one bad clip refuses the whole add.
        ``prepare`` runs on the staged WAV copies, so if it raises nothing is left behind (its
        exception propagates unchanged).
        Without ``speaker_id`` the id comes from ``name``, numbered on collision (``alice``,
        ``alice-2``); a given ``speaker_id`` that is taken, or a display name already used
        (case-insensitively), is refused. ``prepare=None, weights_key=None`` stores no
        embeddings: they are computed on first use.
        """
        if (prepare is None) != (weights_key is None):
            raise SpeakerError("pass prepare and weights_key together, or neither")
        key = None if weights_key is None else validate_weights_key(weights_key)
        owner = validate_session(owner_session)
        check_visibility(shared, owner)
        if not isinstance(synthetic, bool):
            raise SpeakerError("'synthetic' must be true or false")
        fields = {"name": clean_name(name), "language": validate_language(language), "shared": shared,
                  "transcript": clean_transcript(transcript),
                  "owner_session": owner, "synthetic": synthetic, "source": clean_source(source)}
        explicit_id = None if speaker_id is None else validate_speaker_id(speaker_id)
        aux_audio = _checked_aux_audio(aux_audio)
        with self._lock:  # before the costly prepare; checked again on disk under the file lock
            self._check_name_free(fields["name"], self._speakers, owner)
        with store.staging(self.root, "add") as staging:
            rate, frames, channels, sha256 = store.store_reference_audio(audio, staging / AUDIO_FILE)
            aux_clips = tuple(
                ClipInfo(*store.store_reference_audio(clip, staging / store.aux_file(number), f"auxiliary clip {number}"))
                for number, clip in enumerate(aux_audio, 1))
            info = SpeakerInfo(id=explicit_id or id_from_name(fields["name"]), created_at=utc_now(), sample_rate=rate,
                               frames=frames, channels=channels, audio_sha256=sha256, aux_clips=aux_clips, **fields)
            conditioning = None
            if prepare is not None:
                conditioning = self._prepare(prepare, staging, info)
                conditioning.save(staging / EMBEDDINGS_DIR / key)
            info = self._commit_new(staging, info, numbered_id=explicit_id is None, numbered_name=False)
        if conditioning is not None:
            self._remember((info.id, key), conditioning)
        return info

    def import_zip(self, archive: bytes | str | os.PathLike, *, shared: bool = True,
                   owner_session: str | None = None, new_id: Callable[[str], str] | None = None) -> SpeakerInfo:
        """Add a speaker exported by :meth:`export_zip` (bytes or a path), checked strictly.

        The archive's id and name are kept when free, else numbered (``alice-2``, "Alice (2)").
        ``new_id(name)``, when given, makes the id instead (never numbered: a taken one is
        refused), so that the id does not tell whether the archive's id is taken by a voice
        the importer cannot see.
        Visibility comes from the arguments, not the archive. Every embedding set in it is
        loaded and validated; one bad set refuses the whole import and nothing is written.
        """
        owner = validate_session(owner_session)
        check_visibility(shared, owner)
        content = read_archive(archive)
        with store.staging(self.root, "import") as staging:
            *audio_format, sha256 = store.store_reference_audio(content.audio, staging / AUDIO_FILE)
            if tuple(audio_format) != (content.info.sample_rate, content.info.frames, content.info.channels):
                raise SpeakerError(f"{AUDIO_FILE} in the archive does not match its {METADATA_FILE}")
            aux_clips = _unpack_aux_audio(content, staging)
            for key, files in content.embeddings.items():
                directory = staging / EMBEDDINGS_DIR / key
                directory.mkdir(parents=True)
                for file_name, payload in files.items():
                    (directory / file_name).write_bytes(payload)
                try:
                    store.check_reference_count(store.load_embeddings(directory, self.limits), 1 + len(aux_clips))
                except SpeakerError as error:
                    raise SpeakerError(f"embeddings {key!r} in the archive are damaged: {error}") from None
            info = replace(content.info, id=new_id(content.info.name) if new_id else content.info.id, shared=shared,
                           owner_session=owner, audio_sha256=sha256, aux_clips=aux_clips)
            return self._commit_new(staging, info, numbered_id=new_id is None, numbered_name=True)

    # -- conditioning ----------------------------------------------------------------------

    def conditioning(self, speaker_id: str, *, prepare: PrepareFn, weights_key: str) -> SpeakerConditioning:
        """The speaker's conditioning for these weights: from memory, else from disk, else
        computed with ``prepare`` and saved (atomically) for next time."""
        info = self.get(speaker_id)
        cache_key = (info.id, validate_weights_key(weights_key))
        cached = self._cached(cache_key)
        if cached is not None:
            return cached
        with self._compute_locks[hash(cache_key) % _COMPUTE_STRIPES]:
            conditioning = self._cached(cache_key) or self._load_stored(info, cache_key[1])
            if conditioning is None:
                conditioning = self._compute(info, cache_key[1], prepare)
            self._remember(cache_key, conditioning)
            return conditioning

    # -- changing --------------------------------------------------------------------------

    def rename(self, speaker_id: str, name: str) -> SpeakerInfo:
        """Change the display name (refused if another speaker uses it); the id and folder stay."""
        name, speaker_id = clean_name(name), self.get(speaker_id).id
        folder = self.root / speaker_id
        with write_lock(self.root):
            try:
                current = store.read_entry(folder)  # fresh: another process may have changed it
            except SpeakerError as error:
                if not folder.exists():
                    self._forget(speaker_id)
                raise SpeakerNotFound(f"speaker {speaker_id!r} cannot be renamed: {error}") from None
            others = {i: s for i, s in self._scan()[0].items() if i != speaker_id}
            self._check_name_free(name, others, current.owner_session)
            info = replace(current, name=name)
            store.atomic_write_bytes(folder / METADATA_FILE, store.metadata_bytes(info))
        with self._lock:
            self._speakers[speaker_id] = info
        return info

    def delete(self, speaker_id: str) -> None:
        """Remove a speaker and its embeddings (moved out of sight atomically, then erased)."""
        speaker_id = self.get(speaker_id).id
        trash = self.root / store.TRASH_DIR / f"{speaker_id}-{uuid.uuid4().hex}"
        with write_lock(self.root):
            present = (self.root / speaker_id).is_dir()
            if present:
                trash.parent.mkdir(exist_ok=True)
                os.rename(self.root / speaker_id, trash)
                store.fsync_dir(self.root)
        self._forget(speaker_id)
        if not present:
            raise SpeakerNotFound(f"no speaker with id {speaker_id!r} (deleted meanwhile?)")
        store.discard_tree(trash)

    # -- internals -------------------------------------------------------------------------

    def _scan(self) -> tuple[dict[str, SpeakerInfo], list[SpeakerProblem]]:
        """Every readable entry on disk now, and why the others were skipped."""
        speakers: dict[str, SpeakerInfo] = {}
        problems: list[SpeakerProblem] = []
        for folder in sorted(self.root.iterdir()):
            if folder.name.startswith(".") or not (folder.is_dir() or folder.is_symlink()):
                continue  # the lock file, work folders, and files such as scripts
            try:
                speakers[validate_speaker_id(folder.name)] = store.read_entry(folder)
            except SpeakerError as error:
                problems.append(SpeakerProblem(str(folder), f"skipped: {error}"))
        return speakers, problems

    @staticmethod
    def _check_name_free(name: str, speakers: dict[str, SpeakerInfo], owner: str | None) -> None:
        """Names are unique among the voices whoever sees this one also sees (``owner``: None for a shared
        voice); a look-alike of a name (``name_key``: Cyrillic or full-width letters, case) is that name."""
        key = name_key(name)
        same = next((s for s in speakers.values() if _shares_audience(s, owner) and name_key(s.name) == key), None)
        if same is not None:
            looks = "" if same.name == name else f" ({name!r} looks the same)"
            raise SpeakerError(f"a speaker named {same.name!r} already exists{looks}; choose another name")

    def _commit_new(self, staging: Path, info: SpeakerInfo, numbered_id: bool, numbered_name: bool) -> SpeakerInfo:
        """Under the lock, against what is on disk now: choose the final id (numbered, or refused
        when taken) and name (numbered, or refused when taken), write speaker.json, rename into place."""
        with write_lock(self.root):
            taken = self._scan()[0]
            if not numbered_name:
                self._check_name_free(info.name, taken, info.owner_session)
            names = {name_key(s.name) for s in taken.values() if _shares_audience(s, info.owner_session)}
            number = next(n for n in itertools.count(1)
                          if name_key(numbered(info.name, n, MAX_NAME_CHARS, " ({})")) not in names)
            info = replace(info, id=self._free_id(info.id, numbered_id),
                           name=numbered(info.name, number, MAX_NAME_CHARS, " ({})"))
            (staging / METADATA_FILE).write_bytes(store.metadata_bytes(info))
            store.commit_dir(staging, self.root / info.id)
        with self._lock:
            self._speakers[info.id] = info
        return info

    def _free_id(self, base: str, numbered_id: bool) -> str:
        """``base`` if no folder has it, else (``numbered_id``) the first free ``base-2``, ``base-3``..."""
        number = 1
        while os.path.lexists(self.root / numbered(base, number, MAX_ID_CHARS, "-{}")):
            if not numbered_id:
                raise SpeakerError(f"a speaker with id {base!r} already exists")
            number += 1
        return validate_speaker_id(numbered(base, number, MAX_ID_CHARS, "-{}"))

    def _cached(self, key: tuple[str, str]) -> SpeakerConditioning | None:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
            return self._cache.get(key)

    def _remember(self, key: tuple[str, str], conditioning: SpeakerConditioning) -> None:
        with self._lock:
            self._cache[key] = conditioning
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _forget(self, speaker_id: str) -> None:
        with self._lock:
            self._speakers.pop(speaker_id, None)
            for key in [key for key in self._cache if key[0] == speaker_id]:
                del self._cache[key]

    def _prepare(self, prepare: PrepareFn, folder: Path, info: SpeakerInfo) -> SpeakerConditioning:
        """``prepare`` on the clips in ``folder`` (aux paths only for a voice that has some), checked."""
        aux = {"aux_audio": store.aux_paths(folder, info)} if info.aux_clips else {}
        conditioning = prepare(folder / AUDIO_FILE, info.transcript or None, info.language, **aux)
        if not isinstance(conditioning, SpeakerConditioning):
            raise SpeakerError(f"prepare returned {type(conditioning).__name__}, expected SpeakerConditioning")
        try:
            conditioning.validate(self.limits)
            store.check_reference_count(conditioning, 1 + len(info.aux_clips))
        except ValueError as error:
            raise SpeakerError(f"the prepared voice cannot be used: {error}") from None
        return conditioning

    def _load_stored(self, info: SpeakerInfo, key: str) -> SpeakerConditioning | None:
        """Saved embeddings, or None. A damaged set is renamed aside (never deleted) and reported."""
        directory = self.root / info.id / EMBEDDINGS_DIR / key
        if not directory.exists():
            return None
        try:
            conditioning = store.load_embeddings(directory, self.limits)
            store.check_reference_count(conditioning, 1 + len(info.aux_clips))
            return conditioning
        except (SpeakerError, OSError) as error:
            with write_lock(self.root):
                aside = store.set_aside(directory)
            problem = SpeakerProblem(str(directory), f"set aside as {aside.name} and recomputed: {error}")
            log.warning("speaker library: %s: %s", problem.path, problem.reason)
            with self._lock:
                self._problems.append(problem)
            return None

    def _compute(self, info: SpeakerInfo, key: str, prepare: PrepareFn) -> SpeakerConditioning:
        folder = self.root / info.id
        conditioning = self._prepare(prepare, folder, info)
        with store.staging(self.root, "embeddings") as staging:
            conditioning.save(staging)
            with write_lock(self.root):
                if not (folder / METADATA_FILE).is_file():
                    raise SpeakerNotFound(f"speaker {info.id!r} was deleted while its embeddings were computed")
                (folder / EMBEDDINGS_DIR).mkdir(exist_ok=True)
                if not (folder / EMBEDDINGS_DIR / key).exists():  # else another process saved it first
                    store.commit_dir(staging, folder / EMBEDDINGS_DIR / key)
        return conditioning


def _shares_audience(other: SpeakerInfo, owner: str | None) -> bool:
    """Whether ``other`` is seen together with a voice owned by ``owner`` (None: a shared voice, seen by all).

    A visitor's private voice is checked against the shared voices and the visitor's own, so
    a refused name never reveals another visitor's private voice.
    """
    return owner is None or other.shared or other.owner_session == owner


def _checked_aux_audio(aux_audio: Sequence[str | os.PathLike | bytes]) -> list[str | os.PathLike | bytes]:
    """The auxiliary clips as a list; refuses a single clip passed bare and too many clips."""
    if isinstance(aux_audio, (str, os.PathLike, bytes, bytearray)) or not isinstance(aux_audio, Sequence):
        raise SpeakerError("aux_audio must be a list of audio files (paths or bytes)")
    if len(aux_audio) > MAX_AUX_CLIPS:
        raise SpeakerError(f"a voice takes at most {MAX_AUX_CLIPS} auxiliary clips, got {len(aux_audio)}")
    return list(aux_audio)


def _unpack_aux_audio(content: SpeakerArchive, staging: Path) -> tuple[ClipInfo, ...]:
    """Store an archive's auxiliary clips like the main one; each must match its speaker.json entry."""
    clips = []
    for number, (audio, expected) in enumerate(zip(content.aux_audio, content.info.aux_clips), 1):
        name = store.aux_file(number)
        clip = ClipInfo(*store.store_reference_audio(audio, staging / name, f"{name} in the archive"))
        if replace(clip, audio_sha256="") != replace(expected, audio_sha256=""):
            raise SpeakerError(f"{name} in the archive does not match its {METADATA_FILE}")
        clips.append(clip)
    return tuple(clips)
