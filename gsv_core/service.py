"""The app-facing service: one shared pipeline, the speaker library, limits, permissions, logging.

The web UI and the REST API both call this object, so every rule (size limits, who may
change the shared library, what is logged) lives in one place. The pipeline is loaded
once, in the background; until it is ready (or when weights are missing) the library and
the pronunciation preview keep working and :attr:`VoiceService.status` says what is missing.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import AudioError, load_reference_audio
from .pipeline import VoicePipeline
from .request_batcher import BatcherBusy, RequestBatcher
from .synthesis import SynthesisOptions, SynthesisRequest, SynthesisResult
from .asr import Transcriber, TranscriptionError
from .ratings import RatingStore
from .speakers import SpeakerError, SpeakerInfo, SpeakerLibrary

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
LOGGER = logging.getLogger("gsv_core.synthesis")


class ServiceError(ValueError):
    """A request that cannot be served; ``status`` is the HTTP status that fits it."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ServiceConfig:
    speakers_dir: Path
    log_file: Path | None = None
    max_chars: int = 150  # per request on a public Space; raise it for team use
    admin_token: str | None = None  # None: everything open (local or team use)
    log_text: bool = False  # log the synthesized text itself
    ratings_path: Path | None = None  # SQLite file of team ratings (Compare tab)
    max_batch: int = 4  # synthesis requests served together (1: one at a time)
    max_waiting: int = 32  # synthesis requests waiting beyond this are refused as busy


class VoiceService:
    def __init__(
        self, config: ServiceConfig, load_pipeline: Callable[[Callable[[float, str], None]], VoicePipeline] | None
    ) -> None:
        """``load_pipeline(progress)`` builds the pipeline, reporting download progress as (fraction, message)."""
        self.config = config
        self.library = SpeakerLibrary(config.speakers_dir)
        self.ratings = RatingStore(config.ratings_path) if config.ratings_path else None
        self.transcriber = Transcriber()
        self._load_pipeline = load_pipeline
        self._pipeline: VoicePipeline | None = None
        self._load_error: str | None = None if load_pipeline else "no model weights configured"
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._log_lock = threading.Lock()
        self._loading = "loading models..."
        self._loading_fraction = 0.0
        self._batcher = RequestBatcher(self._serve, max_batch=config.max_batch, max_waiting=config.max_waiting)

    # -- the shared pipeline ----------------------------------------------------------------

    def start_loading(self) -> None:
        """Load the pipeline in a background thread (idempotent)."""
        if self._load_pipeline is not None and not self._ready.is_set():
            threading.Thread(target=self._pipeline_or_error, daemon=True, name="load-pipeline").start()

    def _pipeline_or_error(self) -> VoicePipeline | None:
        with self._lock:
            if self._pipeline is None and self._load_pipeline is not None and self._load_error is None:
                try:
                    self._pipeline = self._load_pipeline(self._report_loading)
                except Exception as error:  # shown to the user as the reason synthesis is off
                    self._load_error = f"{type(error).__name__}: {error}"
                    LOGGER.error("model loading failed: %s", self._load_error)
            self._ready.set()
            return self._pipeline

    def _report_loading(self, fraction: float, message: str) -> None:
        self._loading_fraction = min(max(fraction, 0.0), 1.0)
        self._loading = f"loading models: {message} ({100 * self._loading_fraction:.0f}%)"

    @property
    def loading_fraction(self) -> float | None:
        """How far model loading (downloads included) has come, 0-1; None once it has ended or failed."""
        return None if self._pipeline is not None or self._load_error else self._loading_fraction

    @property
    def status(self) -> str:
        if self._pipeline is not None:
            return f"ready: GPT-SoVITS {self._pipeline.version}"
        if self._load_error:
            return f"synthesis unavailable: {self._load_error}"
        return self._loading

    def pipeline(self) -> VoicePipeline:
        pipeline = self._pipeline or self._pipeline_or_error()
        if pipeline is None:
            raise ServiceError(
                f"synthesis is unavailable ({self._load_error}); start the app with --t2s/--sovits/--hubert/--bert "
                "(and --sv for v2Pro) pointing at local files, or with network access to download the weights",
                status=503,
            )
        return pipeline

    # -- permissions ------------------------------------------------------------------------

    def is_admin(self, token: str | None) -> bool:
        if self.config.admin_token is None:
            return True
        return token is not None and hmac.compare_digest(token, self.config.admin_token)

    # -- speakers ---------------------------------------------------------------------------

    def list_speakers(self, session: str | None) -> list[dict]:
        return [info.to_json(session) for info in self.library.list(session)]

    def add_speaker(self, audio: bytes | Path, transcript: str, language: str, name: str,
                    session: str | None, token: str | None = None) -> SpeakerInfo:
        """Validate and store a new voice; shared unless a token is configured and not given."""
        data = audio.read_bytes() if isinstance(audio, Path) else audio
        if not data:
            raise ServiceError("the audio file is empty")
        if len(data) > MAX_UPLOAD_BYTES:
            raise ServiceError(f"the audio file is over {MAX_UPLOAD_BYTES // 2**20} MB", status=413)
        data = trimmed_wav(data)
        try:
            load_reference_audio(data)  # 3-10 s, not silent, decodable: before anything is stored
        except AudioError as error:
            raise ServiceError(str(error)) from error
        pipeline = self.pipeline()
        shared = self.is_admin(token)
        try:
            return self.library.add(
                data, transcript, language, name, prepare=pipeline.prepare_speaker, weights_key=pipeline.weights_key,
                shared=shared, owner_session=None if shared else session,
            )
        except (SpeakerError, ValueError) as error:
            raise ServiceError(str(error)) from error

    def _changeable(self, speaker_id: str, session: str | None, token: str | None) -> SpeakerInfo:
        """A speaker the caller may change: their own private voice, or any voice for an admin."""
        info = self._visible_speaker(speaker_id, session)
        if not (info.owned_by(session) or self.is_admin(token)):
            raise ServiceError("changing a shared voice needs the admin token", status=403)
        return info

    def rename_speaker(self, speaker_id: str, name: str, session: str | None, token: str | None = None) -> SpeakerInfo:
        self._changeable(speaker_id, session, token)
        try:
            return self.library.rename(speaker_id, name)
        except (SpeakerError, ValueError) as error:
            raise ServiceError(str(error)) from error

    def delete_speaker(self, speaker_id: str, session: str | None, token: str | None = None) -> None:
        self._changeable(speaker_id, session, token)
        self.library.delete(speaker_id)

    def export_speaker(self, speaker_id: str, session: str | None) -> bytes:
        """One zip with the speaker's audio, metadata and embeddings."""
        return self.library.export_zip(self._visible_speaker(speaker_id, session).id)

    def import_speaker(self, archive: bytes, session: str | None, token: str | None = None) -> SpeakerInfo:
        if len(archive) > MAX_UPLOAD_BYTES:
            raise ServiceError(f"the archive is over {MAX_UPLOAD_BYTES // 2**20} MB", status=413)
        shared = self.is_admin(token)
        try:
            return self.library.import_zip(archive, shared=shared, owner_session=None if shared else session)
        except (SpeakerError, ValueError) as error:
            raise ServiceError(str(error)) from error

    def transcribe(self, audio: bytes | Path, language: str | None) -> str:
        """What the reference clip says, by the speech recognizer (loaded on first use)."""
        try:
            samples, rate = load_reference_audio(audio)
            return self.transcriber.transcribe(samples, rate, language)
        except AudioError as error:
            raise ServiceError(str(error)) from error
        except TranscriptionError as error:
            raise ServiceError(str(error), status=503) from error

    def _visible_speaker(self, speaker_id: str, session: str | None) -> SpeakerInfo:
        try:
            info = self.library.get(speaker_id)
        except SpeakerError as error:
            raise ServiceError(f"unknown speaker id {speaker_id!r}", status=404) from error
        if not info.visible_to(session):
            raise ServiceError(f"unknown speaker id {speaker_id!r}", status=404)
        return info

    # -- synthesis --------------------------------------------------------------------------

    def synthesize(self, text: str, speaker_id: str, language: str, options: SynthesisOptions,
                   session: str | None, progress: Callable[[float, str], None] | None = None) -> SynthesisResult:
        """Speak ``text``; every call is logged as one JSON line, successful or not.

        Requests from concurrent callers are served together (see :class:`RequestBatcher`).
        """
        return self.synthesize_each(text, [speaker_id], language, options, session, progress)[0]

    def synthesize_each(self, text: str, speaker_ids: list[str], language: str, options: SynthesisOptions,
                        session: str | None, progress: Callable[[float, str], None] | None = None) -> list[SynthesisResult]:
        """One text in several voices, queued at once so that they can share a batch (Compare tab).

        Raises the first failure after every request has finished and been logged.
        """
        started = time.perf_counter()
        records = [self._record(text, speaker_id, language) for speaker_id in speaker_ids]
        pending: list = []
        for record, speaker_id in zip(records, speaker_ids):
            try:
                pending.append(self._request(text, speaker_id, language, options, session, progress))
            except ServiceError as error:
                pending.append(error)
        requests = [r for r in pending if isinstance(r, SynthesisRequest)]
        try:
            futures = iter(self._batcher.submit_many(requests))
        except BatcherBusy as error:
            futures, busy = iter(()), ServiceError(str(error), status=503)
            pending = [r if isinstance(r, ServiceError) else busy for r in pending]
        results, failure = [], None
        for record, item in zip(records, pending):
            try:
                if isinstance(item, ServiceError):
                    raise item
                try:
                    result = next(futures).result()
                except ValueError as error:
                    raise ServiceError(str(error)) from error
            except ServiceError as error:
                self._log(record, started, outcome="error", error=str(error))
                failure = failure or error
                continue
            wall = time.perf_counter() - started
            self._log(record, started, outcome="ok", audio_s=round(result.duration_s, 3),
                      rtf=round(wall / max(result.duration_s, 1e-6), 3), batch=result.timings.get("requests_in_batch", 1))
            results.append(result)
        if failure is not None:
            raise failure
        return results

    def _record(self, text: str, speaker_id: str, language: str) -> dict:
        record = {"speaker_id": speaker_id, "language": language, "text_chars": len(text or "")}
        if self.config.log_text:
            record["text"] = text
        return record

    def _request(self, text: str, speaker_id: str, language: str, options: SynthesisOptions, session: str | None,
                 progress: Callable[[float, str], None] | None) -> SynthesisRequest:
        """A checked request: text within limits, a speaker the caller may use, its conditioning ready."""
        if not text or not text.strip():
            raise ServiceError("the text is empty")
        if len(text) > self.config.max_chars:
            raise ServiceError(f"the text has {len(text)} characters; the limit is {self.config.max_chars}")
        self._visible_speaker(speaker_id, session)
        pipeline = self.pipeline()
        speaker = self.library.conditioning(speaker_id, prepare=pipeline.prepare_speaker, weights_key=pipeline.weights_key)
        return SynthesisRequest(text, language, speaker, options, progress)

    def _serve(self, requests: list[SynthesisRequest]) -> list[SynthesisResult | Exception]:
        return self.pipeline().synthesize_many(requests)

    def _log(self, record: dict, started: float, **fields) -> None:
        line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **record,
                           "wall_s": round(time.perf_counter() - started, 3), **fields}, ensure_ascii=False)
        print(line, flush=True)
        if self.config.log_file is not None:
            with self._log_lock, open(self.config.log_file, "a", encoding="utf-8") as log:
                log.write(line + "\n")


def trimmed_wav(data: bytes, top_db: float = 40.0) -> bytes:
    """The upload as 16-bit WAV without its leading and trailing silence (quieter than ``top_db`` below peak).

    Undecodable data is returned unchanged, so the reference check reports it.
    """
    import io

    import librosa
    import soundfile as sf

    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError):
        return data
    mono = samples.mean(axis=1)
    if not np.isfinite(mono).all() or not np.abs(mono).max() > 0:
        return data
    _, (start, end) = librosa.effects.trim(mono, top_db=top_db)
    buffer = io.BytesIO()
    sf.write(buffer, samples[start:end], rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def wav_bytes(result: SynthesisResult) -> bytes:
    """16-bit PCM WAV of a synthesis result."""
    import io

    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.clip(result.audio, -1, 1), result.sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
