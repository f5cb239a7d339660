"""What the UI and REST share: the speaker library, synthesis requests, limits and logging.

The web UI and the REST API both call this object, so every rule lives in one place: the
models in :class:`ModelHost`, who may do what in :class:`AccessPolicy`, concurrent requests
in :class:`SynthesisQueue`, the log in :class:`SynthesisLog`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gsv_core.audio import AudioError, load_reference_audio, trimmed_wav
from gsv_core.pipeline import VoicePipeline
from gsv_core.speakers import SpeakerInfo, SpeakerLibrary
from gsv_core.synthesis import SynthesisOptions, SynthesisRequest, SynthesisResult

from .access import AccessPolicy
from .errors import ServiceError
from .model_host import ModelHost, PipelineLoader
from .ratings import RatingStore
from .synthesis_log import SynthesisLog
from .synthesis_queue import QueueBusy, SynthesisQueue
from .transcriber import Transcriber, TranscriptionError

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
ProgressFn = Callable[[float, str], None]


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
    def __init__(self, config: ServiceConfig, load_pipeline: PipelineLoader | None) -> None:
        """``load_pipeline(progress)`` builds the pipeline, reporting download progress as (fraction, message)."""
        self.config = config
        self.models = ModelHost(load_pipeline)
        self.access = AccessPolicy(config.admin_token)
        self.library = SpeakerLibrary(config.speakers_dir)
        self.ratings = RatingStore(config.ratings_path) if config.ratings_path else None
        self.transcriber = Transcriber()
        self.log = SynthesisLog(config.log_file, config.log_text)
        self._queue = SynthesisQueue(self._serve, max_batch=config.max_batch, max_waiting=config.max_waiting)

    def start_loading(self) -> None:
        self.models.start_loading()

    @property
    def status(self) -> str:
        return self.models.status

    @property
    def loading_fraction(self) -> float | None:
        return self.models.loading_fraction

    def pipeline(self) -> VoicePipeline:
        return self.models.pipeline()

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
        shared = self.access.is_admin(token)
        with _as_service_error():
            return self.library.add(
                data, transcript, language, name, prepare=pipeline.prepare_speaker, weights_key=pipeline.weights_key,
                shared=shared, owner_session=None if shared else session,
            )

    def rename_speaker(self, speaker_id: str, name: str, session: str | None, token: str | None = None) -> SpeakerInfo:
        self.access.changeable(self.library, speaker_id, session, token)
        with _as_service_error():
            return self.library.rename(speaker_id, name)

    def delete_speaker(self, speaker_id: str, session: str | None, token: str | None = None) -> None:
        self.access.changeable(self.library, speaker_id, session, token)
        self.library.delete(speaker_id)

    def export_speaker(self, speaker_id: str, session: str | None) -> bytes:
        """One zip with the speaker's audio, metadata and embeddings."""
        return self.library.export_zip(self.access.visible(self.library, speaker_id, session).id)

    def import_speaker(self, archive: bytes, session: str | None, token: str | None = None) -> SpeakerInfo:
        if len(archive) > MAX_UPLOAD_BYTES:
            raise ServiceError(f"the archive is over {MAX_UPLOAD_BYTES // 2**20} MB", status=413)
        shared = self.access.is_admin(token)
        with _as_service_error():
            return self.library.import_zip(archive, shared=shared, owner_session=None if shared else session)

    def reference_path(self, speaker_id: str, session: str | None) -> Path:
        """The stored reference clip of a speaker the caller may see."""
        return self.library.reference_path(self.access.visible(self.library, speaker_id, session).id)

    def transcribe(self, audio: bytes | Path, language: str | None) -> str:
        """What the reference clip says, by the speech recognizer (loaded on first use)."""
        try:
            samples, rate = load_reference_audio(audio)
            return self.transcriber.transcribe(samples, rate, language)
        except AudioError as error:
            raise ServiceError(str(error)) from error
        except TranscriptionError as error:
            raise ServiceError(str(error), status=503) from error

    # -- synthesis --------------------------------------------------------------------------

    def synthesize(self, text: str, speaker_id: str, language: str, options: SynthesisOptions,
                   session: str | None, progress: ProgressFn | None = None) -> SynthesisResult:
        """Speak ``text``; every call is logged as one JSON line, successful or not.

        Requests from concurrent callers are served together (see :class:`SynthesisQueue`).
        """
        return self.synthesize_each(text, [speaker_id], language, options, session, progress)[0]

    def synthesize_each(self, text: str, speaker_ids: list[str], language: str, options: SynthesisOptions,
                        session: str | None, progress: ProgressFn | None = None) -> list[SynthesisResult]:
        """One text in several voices, queued at once so that they can share a batch (Compare tab).

        Raises the first failure after every request has finished and been logged.
        """
        started = time.perf_counter()
        records = [self.log.record(text, speaker_id, language) for speaker_id in speaker_ids]
        pending: list[SynthesisRequest | ServiceError] = []
        for speaker_id in speaker_ids:
            try:
                pending.append(self._request(text, speaker_id, language, options, session, progress))
            except ServiceError as error:
                pending.append(error)
        requests = [r for r in pending if isinstance(r, SynthesisRequest)]
        try:
            futures = iter(self._queue.submit_many(requests))
        except QueueBusy as error:
            futures, busy = iter(()), ServiceError(str(error), status=503)
            pending = [r if isinstance(r, ServiceError) else busy for r in pending]
        results, failure = [], None
        for record, item in zip(records, pending):
            try:
                result = self._outcome(item, futures)
            except ServiceError as error:
                self.log.write(record, started, outcome="error", error=str(error))
                failure = failure or error
                continue
            wall = time.perf_counter() - started
            self.log.write(record, started, outcome="ok", audio_s=round(result.duration_s, 3),
                           rtf=round(wall / max(result.duration_s, 1e-6), 3),
                           batch=result.timings.get("requests_in_batch", 1))
            results.append(result)
        if failure is not None:
            raise failure
        return results

    @staticmethod
    def _outcome(item: SynthesisRequest | ServiceError, futures) -> SynthesisResult:
        if isinstance(item, ServiceError):
            raise item
        try:
            return next(futures).result()
        except ValueError as error:
            raise ServiceError(str(error)) from error

    def _request(self, text: str, speaker_id: str, language: str, options: SynthesisOptions, session: str | None,
                 progress: ProgressFn | None) -> SynthesisRequest:
        """A checked request: text within limits, a speaker the caller may use, its conditioning ready."""
        if not text or not text.strip():
            raise ServiceError("the text is empty")
        if len(text) > self.config.max_chars:
            raise ServiceError(f"the text has {len(text)} characters; the limit is {self.config.max_chars}")
        info = self.access.visible(self.library, speaker_id, session)
        pipeline = self.pipeline()
        speaker = self.library.conditioning(info.id, prepare=pipeline.prepare_speaker, weights_key=pipeline.weights_key)
        return SynthesisRequest(text, language, speaker, options, progress)

    def _serve(self, requests: list[SynthesisRequest]) -> list[SynthesisResult | Exception]:
        return self.pipeline().synthesize_many(requests)


@contextmanager
def _as_service_error() -> Iterator[None]:
    """The library's refusals (SpeakerError, ValueError) become 400 ServiceErrors."""
    try:
        yield
    except ServiceError:
        raise
    except ValueError as error:  # SpeakerError is a ValueError
        raise ServiceError(str(error)) from error
