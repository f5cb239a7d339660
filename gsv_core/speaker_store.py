"""The speaker library on disk: layout, locking, atomic writes, reference audio and embeddings.

Layout of a library root::

    <root>/.lock                          flock()ed by every writer, in every process
    <root>/.tmp/<purpose>-<random>/       work in progress, renamed into place when complete
    <root>/.trash/<id>-<random>/          a deleted speaker on its way out
    <root>/<id>/speaker.json              metadata (see speaker_meta.info_from_metadata)
    <root>/<id>/reference.wav             the reference clip, 16-bit PCM or 32-bit float WAV
    <root>/<id>/embeddings/<weights_key>/ SpeakerConditioning arrays + speaker_vector.npy

A reader never sees a half-written entry: new entries and embedding sets are built under
``.tmp`` (same file system), fsynced, then renamed into place; ``speaker.json`` is replaced
with ``os.replace``. Only ``.tmp``/``.trash`` leftovers are ever removed automatically.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Hashable, Iterator

import numpy as np
import soundfile

from gsv_core.conditioning import SpeakerConditioning
from gsv_core.speaker_meta import (
    SpeakerError,
    SpeakerInfo,
    SpeakerProblem,
    info_from_metadata,
    numbered_id,
    validate_speaker_id,
    validate_weights_key,
)

METADATA_FILE = "speaker.json"
AUDIO_FILE = "reference.wav"
EMBEDDINGS_DIR = "embeddings"
VECTOR_FILE = "speaker_vector.npy"
CONDITIONING_FILE = "conditioning.json"
# The .npy files SpeakerConditioning.save may write, plus our speaker vector.
ARRAY_FILES = frozenset(
    f"{name}.npy"
    for name in (
        "prompt_semantic", "prompt_phones", "prompt_bert", "ref_spec", "global_embedding", "sv_embedding",
        "speaker_vector",
    )
)
LOCK_FILE = ".lock"
TMP_DIR = ".tmp"
TRASH_DIR = ".trash"
DAMAGED_MARK = ".damaged-"  # in the name of a set-aside embeddings folder (never a valid key)

MAX_AUDIO_BYTES = 64 << 20
MAX_AUDIO_SECONDS = 60.0
MIN_AUDIO_SECONDS = 0.5
MAX_METADATA_BYTES = 64 << 10
STALE_TMP_SECONDS = 24 * 3600
# Source encodings that fit 16-bit PCM without loss; everything else is stored as float.
_SMALL_PCM = frozenset({"PCM_16", "PCM_S8", "PCM_U8"})


@contextmanager
def write_lock(root: Path) -> Iterator[None]:
    """Exclusive lock for changing the library, across threads and processes.

    Every call opens its own descriptor, and ``flock`` locks belong to the open file
    description, so two threads of one process exclude each other too.
    """
    descriptor = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_tree(path: Path) -> None:
    """fsync every file and folder under ``path`` (a staging folder before it is renamed)."""
    for folder, _, files in os.walk(path):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                os.fsync(handle.fileno())
        fsync_dir(Path(folder))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once: readers see the old or the new file."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def metadata_bytes(info: SpeakerInfo) -> bytes:
    return json.dumps(info.to_metadata(), ensure_ascii=False, indent=1).encode("utf-8") + b"\n"


def new_staging_dir(root: Path, purpose: str) -> Path:
    """A fresh private folder under ``<root>/.tmp`` (same file system as the entries)."""
    staging = root / TMP_DIR / f"{purpose}-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    return staging


def commit_dir(staging: Path, target: Path) -> None:
    """Durably move a complete ``staging`` folder to ``target``, which must not exist."""
    fsync_tree(staging)
    os.rename(staging, target)
    fsync_dir(target.parent)


def free_speaker_id(root: Path, base: str, numbered: bool) -> str:
    """``base`` if no folder has it, else (``numbered``) the first free ``base-2``, ``base-3``...
    Call under :func:`write_lock`, and create the folder before releasing it."""
    if not numbered:
        if os.path.lexists(root / base):
            raise SpeakerError(f"a speaker with id {base!r} already exists")
        return base
    number = 1
    while os.path.lexists(root / numbered_id(base, number)):
        number += 1
    return validate_speaker_id(numbered_id(base, number))


def set_aside(directory: Path) -> Path:
    """Rename a damaged embeddings folder out of the way (kept for inspection, never deleted)."""
    aside = directory.with_name(f"{directory.name}{DAMAGED_MARK}{uuid.uuid4().hex[:8]}")
    if directory.exists():
        os.rename(directory, aside)
    return aside


def discard_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def clean_leftovers(root: Path) -> None:
    """Remove what interrupted writers left: ``.trash`` always, ``.tmp`` folders older than a day
    (younger ones may belong to a writer still at work in another process)."""
    discard_tree(root / TRASH_DIR)
    now = time.time()
    for staging in (root / TMP_DIR).glob("*"):
        try:
            if now - staging.lstat().st_mtime > STALE_TMP_SECONDS:
                discard_tree(staging)
        except OSError:
            pass


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def write_reference_audio(decoded: tuple[np.ndarray, int, str], target: Path) -> tuple[int, int, int, str]:
    """Write what :func:`decode_audio` returned to ``target`` as WAV.

    16-bit (or smaller) PCM stays 16-bit PCM, sample for sample; anything else becomes 32-bit
    float. Sample rate and channels are kept (the pipeline resamples and downmixes itself).
    Returns (sample_rate, frames, channels, sha256 of the written file).
    """
    samples, sample_rate, subtype = decoded
    target_subtype = "PCM_16" if subtype in _SMALL_PCM else "FLOAT"
    soundfile.write(target, samples, sample_rate, subtype=target_subtype, format="WAV")
    return sample_rate, samples.shape[0], samples.shape[1], file_sha256(target)


def decode_audio(source: str | os.PathLike | bytes) -> tuple[np.ndarray, int, str]:
    """Read and check an uploaded clip: (samples (frames, channels), sample_rate, subtype).

    int16 samples for 8/16-bit PCM sources (exact copy), float32 otherwise.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        size, opened = len(source), io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise SpeakerError(f"reference audio file not found: {path}")
        size, opened = path.stat().st_size, path
    else:
        raise SpeakerError(f"reference audio must be a file path or bytes, got {type(source).__name__}")
    if size > MAX_AUDIO_BYTES:
        raise SpeakerError(f"the reference audio is too large ({size >> 20} MiB, at most {MAX_AUDIO_BYTES >> 20} MiB)")
    try:
        with soundfile.SoundFile(opened) as audio:
            sample_rate, channels, subtype = audio.samplerate, audio.channels, audio.subtype
            if audio.frames > MAX_AUDIO_SECONDS * sample_rate * 2:  # header says far too long: do not decode
                raise SpeakerError(f"the reference audio is longer than {MAX_AUDIO_SECONDS:.0f} s")
            dtype = "int16" if subtype in _SMALL_PCM else "float32"
            samples = audio.read(dtype=dtype, always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise SpeakerError(f"the reference audio is not a readable audio file ({error})") from None
    if channels > 2:
        raise SpeakerError(f"the reference audio must be mono or stereo, got {channels} channels")
    duration = samples.shape[0] / sample_rate
    if not MIN_AUDIO_SECONDS <= duration <= MAX_AUDIO_SECONDS:
        raise SpeakerError(
            f"the reference audio lasts {duration:.2f} s; it must last {MIN_AUDIO_SECONDS}-{MAX_AUDIO_SECONDS:.0f} s"
        )
    if samples.dtype == np.float32 and not np.isfinite(samples).all():
        raise SpeakerError("the reference audio contains NaN or infinite samples")
    return samples, sample_rate, subtype


def read_entry(folder: Path) -> SpeakerInfo:
    """Read and check one speaker folder; raises SpeakerError naming what is wrong."""
    if folder.is_symlink() or not folder.is_dir():
        raise SpeakerError("not a plain folder (symbolic links are not followed)")
    metadata_path = folder / METADATA_FILE
    try:
        with open(metadata_path, "rb") as handle:
            raw = handle.read(MAX_METADATA_BYTES + 1)
    except OSError as error:
        raise SpeakerError(f"cannot read {METADATA_FILE}: {error.strerror or error}") from None
    if len(raw) > MAX_METADATA_BYTES:
        raise SpeakerError(f"{METADATA_FILE} is larger than {MAX_METADATA_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SpeakerError(f"{METADATA_FILE} is not valid JSON ({error})") from None
    info = info_from_metadata(data, expected_id=folder.name)
    check_reference_audio(folder / AUDIO_FILE, info)
    return info


def check_reference_audio(path: Path, info: SpeakerInfo) -> None:
    """Cheap header check that reference.wav is there and is the clip speaker.json describes."""
    if path.is_symlink() or not path.is_file():
        raise SpeakerError(f"{AUDIO_FILE} is missing")
    try:
        header = soundfile.info(path)
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise SpeakerError(f"{AUDIO_FILE} is not readable audio ({error})") from None
    expected = (info.sample_rate, info.frames, info.channels)
    found = (header.samplerate, header.frames, header.channels)
    if found != expected:
        raise SpeakerError(
            f"{AUDIO_FILE} does not match {METADATA_FILE} (rate, frames, channels {found} != {expected}): truncated?"
        )


def speaker_vector(conditioning: SpeakerConditioning) -> np.ndarray:
    """(D,) float32, L2-normalized: the speaker-verification embedding when there is one
    (v2Pro), else the decoder's global embedding. Dot products are cosine similarities."""
    source = conditioning.sv_embedding if conditioning.sv_embedding is not None else conditioning.global_embedding
    vector = np.asarray(source, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0.0:
        raise SpeakerError("the speaker embedding is zero or not finite")
    return (vector / norm).astype(np.float32)


def save_embeddings(conditioning: SpeakerConditioning, directory: Path) -> None:
    """Write the conditioning arrays and the speaker vector into a (staging) folder."""
    conditioning.save(directory)
    np.save(directory / VECTOR_FILE, speaker_vector(conditioning), allow_pickle=False)


def check_npy(path: Path) -> None:
    """Check that an .npy file is complete, reading its header only (catches truncation)."""
    try:
        with open(path, "rb") as handle:
            major, _ = np.lib.format.read_magic(handle)
            if major == 1:
                shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
            data_start = handle.tell()
    except (OSError, ValueError) as error:
        raise SpeakerError(f"{path.name} is not a valid .npy file ({error})") from None
    if dtype.hasobject:
        raise SpeakerError(f"{path.name} holds Python objects, which are never loaded")
    expected = data_start + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if path.stat().st_size != expected:
        raise SpeakerError(f"{path.name} is truncated or padded ({path.stat().st_size} bytes, expected {expected})")


def check_embeddings(directory: Path) -> None:
    """Cheap completeness check of one embeddings folder, without loading the arrays."""
    if directory.is_symlink() or not directory.is_dir():
        raise SpeakerError("not a plain folder")
    for required in (CONDITIONING_FILE, VECTOR_FILE):
        if not (directory / required).is_file():
            raise SpeakerError(f"{required} is missing")
    for path in sorted(directory.iterdir()):
        if path.name not in ARRAY_FILES and path.name != CONDITIONING_FILE:
            raise SpeakerError(f"unexpected file {path.name!r}")
        if path.suffix == ".npy":
            check_npy(path)


def load_conditioning(directory: Path) -> SpeakerConditioning:
    """Load one embeddings folder written by :func:`save_embeddings`."""
    check_embeddings(directory)
    try:
        conditioning = SpeakerConditioning.load(directory)
    except (TypeError, ValueError) as error:  # bad shapes or keys in conditioning.json
        raise SpeakerError(str(error)) from None
    check_vector(load_vector(directory), speaker_vector(conditioning))
    return conditioning


def load_vector(directory: Path) -> np.ndarray:
    path = directory / VECTOR_FILE
    check_npy(path)
    vector = np.load(path, allow_pickle=False)
    if vector.ndim != 1 or vector.dtype != np.float32 or not np.isfinite(vector).all():
        raise SpeakerError(f"{VECTOR_FILE} must be a finite 1-D float32 array, got {vector.dtype} {vector.shape}")
    return vector


def check_vector(stored: np.ndarray, derived: np.ndarray) -> None:
    if stored.shape != derived.shape or not np.allclose(stored, derived, atol=1e-5):
        raise SpeakerError(f"{VECTOR_FILE} does not match the stored conditioning")


def embedding_problems(folder: Path) -> list[SpeakerProblem]:
    """Damaged embedding sets of one speaker: reported and left alone (recomputed on use)."""
    embeddings = folder / EMBEDDINGS_DIR
    if not embeddings.is_dir():
        return []
    problems = []
    for directory in sorted(embeddings.iterdir()):
        if DAMAGED_MARK in directory.name:
            reason = "embeddings set aside after failing to load; kept for inspection"
            problems.append(SpeakerProblem(str(directory), reason))
            continue
        try:
            validate_weights_key(directory.name)
            check_embeddings(directory)
        except SpeakerError as error:
            problems.append(SpeakerProblem(str(directory), f"embeddings not used: {error}"))
    return problems


class LruCache:
    """A bounded, thread-safe least-recently-used map (capacity 0 keeps nothing)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[Hashable, SpeakerConditioning] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> SpeakerConditioning | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: SpeakerConditioning) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def discard_speaker(self, speaker_id: str) -> None:
        with self._lock:
            for key in [key for key in self._items if key[0] == speaker_id]:
                del self._items[key]

    def __len__(self) -> int:
        return len(self._items)
