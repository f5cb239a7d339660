"""What the UI and REST share: the speaker library, transcripts, ratings, and synthesis.

The web UI and the REST API both call this object, so every rule lives in one place: the
models in :class:`ModelHost`, who may do what in :class:`AccessPolicy`, every bound in
:class:`Limits`, synthesis requests (admission, checks, the queue, the log) in
:class:`SynthesisDesk`; this class adds the voices, transcripts and ratings.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from gsv_core.audio import AudioError, check_header_duration, load_reference_audio, trimmed_wav
from gsv_core.pipeline import VoicePipeline
from gsv_core.speakers import SpeakerInfo, SpeakerLibrary, SpeakerNotFound

from .access import AccessPolicy
from .errors import ServiceError, scrub_paths, unexpected
from .housekeeping import Sweeper, all_speakers, check_room, private_speaker_id
from .limits import Limits
from .model_host import ModelHost, PipelineLoader
from .ratings import RatingStore
from .synthesis_log import SynthesisLog
from .synthesis_desk import SynthesisDesk
from .quality_check import QualityCheck
from .transcriber import Transcriber, TranscriptionError
from .voice_similarity import SimilarityScorer

MAX_UPLOAD_BYTES = Limits().max_upload_bytes


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
    limits: Limits = field(default_factory=Limits)
    # ZeroGPU: serve in the calling thread (inside the GPU call), never through the queue's worker
    serve_directly: bool = False
    # requests that do not say whether to run the quality check (voice_studio.quality_check) get this
    quality_check_default: bool = False
    # a speaker-verification checkpoint for scoring similarity when the pipeline has none (v2)
    sv_checkpoint: Path | None = None
    transcriber_device: str = "cpu"  # Whisper's device: reference transcripts and the quality check


class VoiceService:
    def __init__(self, config: ServiceConfig, load_pipeline: PipelineLoader | None) -> None:
        """``load_pipeline(progress)`` builds the pipeline, reporting download progress as (fraction, message)."""
        self.config = config
        self.limits = config.limits
        self.models = ModelHost(load_pipeline)
        self.access = AccessPolicy(config.admin_token)
        self.library = SpeakerLibrary(config.speakers_dir)
        self.ratings = RatingStore(config.ratings_path) if config.ratings_path else None
        self.transcriber = Transcriber(device=config.transcriber_device)
        self.log = SynthesisLog(config.log_file, config.log_text)
        self.sweeper = Sweeper(self.library, self.limits.private_voice_ttl_s)
        self.synthesis = SynthesisDesk(self.models, self.access, self.library, self.log, self.limits, config.max_chars,
                                       config.max_batch, config.max_waiting, config.serve_directly,
                                       SimilarityScorer(self.library, config.sv_checkpoint),
                                       QualityCheck(self.transcriber, self.limits), config.quality_check_default)
        # speaking is the desk's: these are its entry points, named as the UI and REST call them
        self.admission = self.synthesis.admission
        self.admit, self.log_refusal = self.synthesis.admit, self.synthesis.log_refusal
        self.synthesize, self.synthesize_each = self.synthesis.synthesize, self.synthesis.synthesize_each
        self.synthesize_stream = self.synthesis.synthesize_stream

    def start_loading(self) -> None:
        """At server start: load the models in the background and delete expired private voices."""
        self.models.start_loading()
        self.sweeper.sweep()

    @property
    def status(self) -> str:
        return self.models.status

    @property
    def loading_fraction(self) -> float | None:
        return self.models.loading_fraction

    def pipeline(self) -> VoicePipeline:
        return self.models.pipeline()

    # -- speakers ---------------------------------------------------------------------------

    def list_speakers(self, session: str | None, token: str | None = None, everything: bool = False) -> list[dict]:
        """The voices the caller may use; with ``everything``, every voice (admin only)."""
        self.sweeper.maybe_sweep()
        if everything:
            self.access.require_admin(token, "listing every voice")
            return [info.to_json(session) for info in all_speakers(self.library)]
        return [info.to_json(session) for info in self.library.list(session)]

    def add_speaker(self, audio: bytes | Path, transcript: str, language: str, name: str,
                    session: str | None, token: str | None = None) -> SpeakerInfo:
        """Validate and store a new voice; shared unless a token is configured and not given."""
        shared = self.access.is_admin(token)  # a wrong token is a 401, never a private add
        if not shared and not session:
            raise ServiceError("a private voice needs a visitor key: keep the cookie the server sets, "
                               "or send an X-Session header")
        data = self._checked_audio(audio)
        self.sweeper.maybe_sweep()
        check_room(self.library, self.limits, session, shared)
        pipeline = self.pipeline()
        with self._library_errors("adding a voice"):
            return self.library.add(
                data, transcript, language, name, prepare=pipeline.prepare_speaker, weights_key=pipeline.weights_key,
                shared=shared, owner_session=None if shared else session,
                speaker_id=None if shared else private_speaker_id(name if isinstance(name, str) else ""),
            )

    def rename_speaker(self, speaker_id: str, name: str, session: str | None, token: str | None = None) -> SpeakerInfo:
        self.access.changeable(self.library, speaker_id, session, token)
        with self._library_errors("renaming a voice"):
            return self.library.rename(speaker_id, name)

    def delete_speaker(self, speaker_id: str, session: str | None, token: str | None = None) -> None:
        self.access.changeable(self.library, speaker_id, session, token)
        with self._library_errors("deleting a voice"):
            self.library.delete(speaker_id)

    def export_speaker(self, speaker_id: str, session: str | None, token: str | None = None) -> bytes:
        """One zip with the speaker's audio, metadata and embeddings."""
        info = self.access.visible(self.library, speaker_id, session, token)
        with self._library_errors("exporting a voice"):
            return self.library.export_zip(info.id)

    def import_speaker(self, archive: bytes, session: str | None, token: str | None = None) -> SpeakerInfo:
        shared = self.access.is_admin(token)
        if len(archive) > self.limits.max_upload_bytes:
            raise ServiceError(f"the archive is over {self.limits.max_upload_bytes // 2**20} MB", status=413)
        check_room(self.library, self.limits, session, shared)
        with self._library_errors("importing a voice"):
            return self.library.import_zip(archive, shared=shared, owner_session=None if shared else session)

    def reference_path(self, speaker_id: str, session: str | None, token: str | None = None) -> Path:
        """The stored reference clip of a speaker the caller may see."""
        return self.library.reference_path(self.access.visible(self.library, speaker_id, session, token).id)

    def ratings_csv(self, token: str | None) -> str:
        """Every rating as CSV; needs the admin token when one is set (notes can be private)."""
        if self.ratings is None:
            raise ServiceError("ratings are not stored on this server", status=404)
        self.access.require_admin(token, "exporting ratings")
        return self.ratings.to_csv()

    def transcribe(self, audio: bytes | Path, language: str | None) -> str:
        """What the reference clip says, by the speech recognizer (loaded on first use)."""
        try:
            samples, rate = load_reference_audio(self._checked_audio(audio, trim=False))
            return self.transcriber.transcribe(samples, rate, language)
        except AudioError as error:
            raise ServiceError(str(error)) from error
        except TranscriptionError as error:
            raise ServiceError(str(error), status=503) from error

    def transcribe_detecting(self, audio: bytes | Path) -> tuple[str, str | None]:
        """What the clip says and the language Whisper heard (an app code such as "zh", or None)."""
        try:
            samples, rate = load_reference_audio(self._checked_audio(audio, trim=False))
            heard = self.transcriber.transcribe_segments(samples, rate, None)
        except AudioError as error:
            raise ServiceError(str(error)) from error
        except TranscriptionError as error:
            raise ServiceError(str(error), status=503) from error
        return heard.text, heard.language

    def _checked_audio(self, audio: bytes | Path, trim: bool = True) -> bytes:
        """The upload's bytes, refused by size before reading and by its header before decoding."""
        limit = self.limits.max_upload_bytes
        size = audio.stat().st_size if isinstance(audio, Path) else len(audio)
        if size > limit:
            raise ServiceError(f"the audio file is over {limit // 2**20} MB", status=413)
        data = audio.read_bytes() if isinstance(audio, Path) else audio
        if not data:
            raise ServiceError("the audio file is empty")
        try:
            check_header_duration(data, self.limits.max_decoded_audio_s, "the uploaded audio")
            data = trimmed_wav(data) if trim else data
            load_reference_audio(data)  # 3-10 s, not silent, decodable: before anything is stored
        except AudioError as error:
            raise ServiceError(str(error)) from error
        return data

    @contextmanager
    def _library_errors(self, what: str) -> Iterator[None]:
        """The library's refusals become 4xx ServiceErrors; anything else a 500 with an error id (or 507)."""
        try:
            yield
        except ServiceError:
            raise
        except ValueError as error:  # SpeakerError, AudioError: plain English, paths removed
            status = 404 if isinstance(error, SpeakerNotFound) else 400
            raise ServiceError(scrub_paths(str(error)), status=status) from error
        except Exception as error:
            raise unexpected(error, what) from error
