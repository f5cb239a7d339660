"""The speaker library on disk: layout, the lock, atomic writes, reference audio and embeddings.

Layout of a library root::

    <root>/.lock                          flock()ed by every writer, in every process
    <root>/.tmp/<purpose>-<random>/       work in progress, renamed into place when complete
    <root>/.trash/<id>-<random>/          a deleted speaker on its way out
    <root>/<id>/speaker.json              metadata (see records.info_from_metadata)
    <root>/<id>/reference.wav             the reference clip, 16-bit PCM or 32-bit float WAV
    <root>/<id>/aux-<n>.wav               auxiliary clips of the voice, n = 1, 2, ... (optional)
    <root>/<id>/embeddings/<weights_key>/ SpeakerConditioning.save() output for those weights

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
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile

from gsv_core.conditioning import ARRAY_NAMES, ConditioningLimits, SpeakerConditioning

from .records import ClipInfo, SpeakerError, SpeakerInfo, SpeakerProblem, info_from_metadata, validate_weights_key

METADATA_FILE = "speaker.json"
AUDIO_FILE = "reference.wav"
EMBEDDINGS_DIR = "embeddings"
CONDITIONING_FILE = "conditioning.json"
ARRAY_FILES = frozenset(f"{name}.npy" for name in ARRAY_NAMES)
LOCK_FILE = ".lock"
TMP_DIR = ".tmp"
TRASH_DIR = ".trash"
DAMAGED_MARK = ".damaged-"  # in the name of a set-aside embeddings folder (never a valid key)

MAX_AUDIO_BYTES = 64 << 20
MAX_AUDIO_SECONDS = 60.0
MIN_AUDIO_SECONDS = 0.5
MAX_METADATA_BYTES = 64 << 10
STALE_TMP_SECONDS = 24 * 3600
_SMALL_PCM = frozenset({"PCM_16", "PCM_S8", "PCM_U8"})  # fit 16-bit PCM without loss


def aux_file(number: int) -> str:
    """The file name of the ``number``-th auxiliary clip (1-based)."""
    return f"aux-{number}.wav"


def aux_paths(folder: Path, info: SpeakerInfo) -> list[Path]:
    """The speaker's auxiliary clips in order (empty for a single-clip speaker)."""
    return [folder / aux_file(number) for number in range(1, len(info.aux_clips) + 1)]


@contextmanager
def write_lock(root: Path) -> Iterator[None]:
    """Exclusive lock for changing the library, across threads and processes: each call opens
    its own descriptor, and ``flock`` locks belong to the open file description."""
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


@contextmanager
def staging(root: Path, purpose: str) -> Iterator[Path]:
    """A fresh private folder under ``<root>/.tmp`` (same file system as the entries), removed
    on leaving unless :func:`commit_dir` moved it into place."""
    path = root / TMP_DIR / f"{purpose}-{uuid.uuid4().hex}"
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        discard_tree(path)


def commit_dir(source: Path, target: Path) -> None:
    """Durably move a complete staging folder to ``target``, which must not exist."""
    for folder, _, files in os.walk(source):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                os.fsync(handle.fileno())
        fsync_dir(Path(folder))
    os.rename(source, target)
    fsync_dir(target.parent)


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
    for staging in (root / TMP_DIR).glob("*"):
        try:
            if time.time() - staging.lstat().st_mtime > STALE_TMP_SECONDS:
                discard_tree(staging)
        except OSError:
            pass


def store_reference_audio(
    source: str | os.PathLike | bytes, target: Path, what: str = "the reference audio"
) -> tuple[int, int, int, str]:
    """Check an uploaded clip and write it to ``target`` as WAV; returns (sample_rate, frames,
    channels, sha256 of the file). 8/16-bit PCM stays 16-bit PCM sample for sample, anything
    else becomes 32-bit float; rate and channels are kept (the pipeline converts them).
    ``what`` names the clip in error messages."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        size, opened = len(source), io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)) and Path(source).is_file():
        size, opened = Path(source).stat().st_size, Path(source)
    else:
        raise SpeakerError(f"{what} must be an existing file or bytes, got {str(source)[:80]!r}")
    if size > MAX_AUDIO_BYTES:
        raise SpeakerError(f"{what} is too large ({size >> 20} MiB, at most {MAX_AUDIO_BYTES >> 20} MiB)")
    try:
        with soundfile.SoundFile(opened) as audio:
            if audio.frames > MAX_AUDIO_SECONDS * audio.samplerate * 2:  # header says far too long: do not decode
                raise SpeakerError(f"{what} is longer than {MAX_AUDIO_SECONDS:.0f} s")
            pcm = audio.subtype in _SMALL_PCM
            samples, sample_rate = audio.read(dtype="int16" if pcm else "float32", always_2d=True), audio.samplerate
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise SpeakerError(f"{what} is not a readable audio file ({error})") from None
    if samples.shape[1] > 2:
        raise SpeakerError(f"{what} must be mono or stereo, got {samples.shape[1]} channels")
    if not MIN_AUDIO_SECONDS <= samples.shape[0] / sample_rate <= MAX_AUDIO_SECONDS:
        raise SpeakerError(f"{what} lasts {samples.shape[0] / sample_rate:.2f} s; "
                           f"it must last {MIN_AUDIO_SECONDS}-{MAX_AUDIO_SECONDS:.0f} s")
    if not pcm and not np.isfinite(samples).all():
        raise SpeakerError(f"{what} contains NaN or infinite samples")
    soundfile.write(target, samples, sample_rate, subtype="PCM_16" if pcm else "FLOAT", format="WAV")
    with open(target, "rb") as handle:
        sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
    return sample_rate, samples.shape[0], samples.shape[1], sha256


def read_entry(folder: Path) -> SpeakerInfo:
    """Read and check one speaker folder (metadata, and the audio header against it)."""
    if folder.is_symlink() or not folder.is_dir():
        raise SpeakerError("not a plain folder (symbolic links are not followed)")
    try:
        with open(folder / METADATA_FILE, "rb") as handle:
            raw = handle.read(MAX_METADATA_BYTES + 1)
    except OSError as error:
        raise SpeakerError(f"cannot read {METADATA_FILE}: {error.strerror or error}") from None
    if len(raw) > MAX_METADATA_BYTES:
        raise SpeakerError(f"{METADATA_FILE} is larger than {MAX_METADATA_BYTES} bytes")
    try:
        info = info_from_metadata(json.loads(raw.decode("utf-8")), expected_id=folder.name)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SpeakerError(f"{METADATA_FILE} is not valid JSON ({error})") from None
    _check_header(folder / AUDIO_FILE, ClipInfo(info.sample_rate, info.frames, info.channels, info.audio_sha256))
    for path, clip in zip(aux_paths(folder, info), info.aux_clips):
        _check_header(path, clip)
    return info


def _check_header(audio: Path, clip: ClipInfo) -> None:
    """The WAV file exists, is readable and has the rate, length and channels ``speaker.json`` says."""
    if audio.is_symlink() or not audio.is_file():
        raise SpeakerError(f"{audio.name} is missing")
    try:
        header = soundfile.info(audio)
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise SpeakerError(f"{audio.name} is not readable audio ({error})") from None
    expected, found = (clip.sample_rate, clip.frames, clip.channels), (header.samplerate, header.frames, header.channels)
    if found != expected:
        raise SpeakerError(f"{audio.name} does not match {METADATA_FILE} (rate, frames, channels {found} != {expected})")


def check_embeddings(directory: Path) -> None:
    """Cheap completeness check of one embeddings folder from the .npy headers (catches a
    truncated or padded file) without loading the arrays."""
    if directory.is_symlink() or not directory.is_dir():
        raise SpeakerError("not a plain folder")
    for required in (CONDITIONING_FILE, "ref_spec.npy", "global_embedding.npy"):
        if not (directory / required).is_file():
            raise SpeakerError(f"{required} is missing")
    for path in sorted(directory.iterdir()):
        if path.name not in ARRAY_FILES and path.name != CONDITIONING_FILE:
            raise SpeakerError(f"unexpected file {path.name!r}")
        if path.suffix != ".npy":
            continue
        try:
            with open(path, "rb") as handle:
                major, _ = np.lib.format.read_magic(handle)
                header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                shape, _, dtype = header(handle)
                expected = handle.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        except (OSError, ValueError) as error:
            raise SpeakerError(f"{path.name} is not a valid .npy file ({error})") from None
        if dtype.hasobject or path.stat().st_size != expected:
            raise SpeakerError(f"{path.name} is truncated, padded or holds Python objects")


def load_embeddings(directory: Path, limits: ConditioningLimits) -> SpeakerConditioning:
    """Load and validate (values and sizes) one embeddings folder."""
    check_embeddings(directory)
    try:
        return SpeakerConditioning.load(directory).validate(limits)
    except (TypeError, ValueError) as error:  # bad keys in conditioning.json, bad arrays
        raise SpeakerError(str(error)) from None


def check_reference_count(conditioning: SpeakerConditioning, references: int) -> None:
    """Embeddings made from another number of clips than the speaker has belong to another voice."""
    if conditioning.reference_count != references:
        raise SpeakerError(f"the embeddings were made from {conditioning.reference_count} clips, "
                           f"the speaker has {references}")


def embedding_problems(folder: Path) -> list[SpeakerProblem]:
    """Damaged embedding sets of one speaker: reported and left alone (recomputed on use)."""
    problems = []
    embeddings = folder / EMBEDDINGS_DIR
    for directory in sorted(embeddings.iterdir()) if embeddings.is_dir() else ():
        try:
            if DAMAGED_MARK in directory.name:
                raise SpeakerError("set aside after failing to load; kept for inspection")
            validate_weights_key(directory.name)
            check_embeddings(directory)
        except SpeakerError as error:
            problems.append(SpeakerProblem(str(directory), f"embeddings not used: {error}"))
    return problems
