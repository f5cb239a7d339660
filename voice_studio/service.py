"""What the UI and REST share: the speaker library, transcripts, ratings, and synthesis.

The web UI and the REST API both call this object, so every rule lives in one place: the
models in :class:`ModelHost`, who may do what in :class:`AccessPolicy`, every bound in
:class:`Limits`, synthesis requests (admission, checks, the queue, the log) in
:class:`SynthesisDesk`; this class adds the voices, transcripts and ratings.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gsv_core.audio import (
    AudioError, check_header_duration, load_reference_audio, trimmed_wav, wav_bytes,
)
from gsv_core.engine.pipeline import VoicePipeline
from gsv_core.speakers.recordings import RecordingError, load_recording, plan_cuts, plan_recording
from gsv_core.speakers import SpeakerInfo, SpeakerLibrary, SpeakerNotFound
from gsv_core.speakers.records import MAX_AUX_CLIPS
from gsv_core.text.languages import check_language

from .access import AccessPolicy
from .admission import RETRY_AFTER_S
from .errors import ServiceError, scrub_paths, unexpected
from .housekeeping import Sweeper, all_speakers, check_room, private_speaker_id
from .limits import Limits
from .model_host import ModelHost, PipelineLoader
from .ratings import ClipAlreadyRated, Rating, RatingStore, VoiceScore
from .recording_plan import RecordingView, chosen_cuts, plan_rows, split_sentences, spread_note
from .synthesis_log import SynthesisLog
from .synthesis_desk import DeskSettings, SynthesisDesk, Voices
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
        self._recognizer_slots = threading.BoundedSemaphore(self.limits.max_transcriptions)
        self.log = SynthesisLog(config.log_file, config.log_text)
        self.sweeper = Sweeper(self.library, self.limits)
        settings = DeskSettings(self.limits, config.max_chars, config.max_batch, config.max_waiting,
                                config.serve_directly, config.quality_check_default)
        self.synthesis = SynthesisDesk(self.models, Voices(self.library, self.access), self.log, settings,
                                       SimilarityScorer(), QualityCheck(self.transcriber, self.limits))

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
                    session: str | None, token: str | None = None, aux_audio: Sequence[bytes | Path] = ()) -> SpeakerInfo:
        """Validate and store a new voice; shared unless a token is configured and not given.

        ``aux_audio``: up to MAX_AUX_CLIPS auxiliary clips (1-10 s each, checked like the main
        one); their embeddings are fused with the main one's, the prompt is the main clip alone.
        """
        shared = self._adder(session, token)
        if len(aux_audio) > MAX_AUX_CLIPS:
            raise ServiceError(f"a voice takes at most {MAX_AUX_CLIPS} auxiliary clips, got {len(aux_audio)}")
        data = self._checked_audio(audio)
        aux = [self._checked_audio(clip, auxiliary=f"auxiliary clip {number}") for number, clip in enumerate(aux_audio, 1)]
        self.sweeper.maybe_sweep()
        check_room(self.library, self.limits, session, shared)
        pipeline = self.pipeline()
        with self._library_errors("adding a voice"):
            return self.library.add(
                data, transcript, language, name, prepare=pipeline.prepare_speaker, weights_key=pipeline.weights_key,
                shared=shared, owner_session=None if shared else session, aux_audio=aux,
                speaker_id=None if shared else private_speaker_id(name if isinstance(name, str) else ""),
            )

    def _adder(self, session: str | None, token: str | None) -> bool:
        """Whether the caller adds a shared voice (the admin) or a private one (needs a visitor key)."""
        shared = self.access.is_admin(token)  # a wrong token is a 401, never a private add
        if not shared and not session:
            raise ServiceError("a private voice needs a visitor key: keep the cookie the server sets, "
                               "or send an X-Session header")
        return shared

    # -- long recordings --------------------------------------------------------------------

    def plan_recording_upload(self, audio: bytes | Path, transcript: str | None = None,
                              language: str | None = None) -> RecordingView:
        """A recording of up to ``limits.max_recording_s`` cut into utterances, a main and auxiliaries chosen.

        Whisper transcribes it with timestamps (``language`` forced when given, else detected)
        unless ``transcript`` is given: then it is cut at silences and the transcript's
        sentences spread over the utterances (see :mod:`voice_studio.recording_plan`).
        """
        samples, rate = self._checked_recording(audio)
        return self._plan(samples, rate, transcript, self._language_or_none(language))

    def add_speaker_from_recording(self, audio: bytes | Path, language: str | None, name: str, session: str | None,
                                   token: str | None = None, utterances: list[Any] | None = None,
                                   transcript: str | None = None) -> SpeakerInfo:
        """Store a voice cut from a long recording: its main reference and auxiliary clips, in one add.

        ``utterances``: the plan's rows as the visitor edited them (parsed JSON: start_s, end_s,
        role, transcript); without them the automatic plan is used. ``language`` defaults to
        the one Whisper heard.
        """
        shared = self._adder(session, token)  # who may add and whether there is room, before transcribing
        check_room(self.library, self.limits, session, shared)
        if utterances is not None and transcript:
            raise ServiceError("send either a transcript of the whole recording or the utterances, not both")
        samples, rate = self._checked_recording(audio)
        language = self._language_or_none(language)
        if utterances is None:
            view = self._plan(samples, rate, transcript, language)
            if view.note:
                raise ServiceError(f"{view.note} (send them as utterances)")
            if view.main is None:
                raise ServiceError("no utterance of the recording can be a reference: each is too short, too long, "
                                   "silent, clipped or too quiet")
            utterances, language = [row.to_json() for row in view.utterances], language or view.language
        if language is None:
            raise ServiceError("say which language the recording is in (the speech recognizer heard none "
                               "the app reads, or did not run)")
        main, aux = chosen_cuts(utterances, samples.size / rate)
        return self.add_speaker(wav_bytes(main.samples(samples, rate), rate), main.transcript, language, name, session,
                                token, aux_audio=[wav_bytes(cut.samples(samples, rate), rate) for cut in aux])

    def recording_clip(self, audio: bytes | Path, start_s: float, end_s: float) -> tuple[int, np.ndarray]:
        """(rate, samples (n,)) of one stretch of a recording, to play an utterance."""
        samples, rate = self._checked_recording(audio)
        cut = chosen_cuts([{"start_s": start_s, "end_s": end_s, "role": "main"}], samples.size / rate)[0]
        return rate, cut.samples(samples, rate)

    def _plan(self, samples: np.ndarray, rate: int, transcript: str | None, language: str | None) -> RecordingView:
        duration = round(samples.size / rate, 3)
        try:
            if transcript and transcript.strip():
                rows = plan_rows(plan_recording(samples, rate))
                sentences = split_sentences(transcript)
                note = spread_note(len(sentences), len(rows))
                if note is None:
                    cuts = [(row.start_s, row.end_s, sentence) for row, sentence in zip(rows, sentences)]
                    rows = plan_rows(plan_cuts(samples, rate, cuts))
                return RecordingView(duration, rows, language, "visitor", note)
            with self._recognizer_slot():
                heard = self.transcriber.transcribe_segments(samples, rate, language)
            rows = plan_rows(plan_recording(samples, rate, heard.segments))
        except RecordingError as error:
            raise ServiceError(str(error)) from error
        except TranscriptionError as error:
            raise ServiceError(str(error), status=503) from error
        return RecordingView(duration, rows, language or heard.language, "whisper")

    @staticmethod
    def _language_or_none(language: str | None) -> str | None:
        """A known language mode, or None for "let Whisper say" (it is also Whisper's forced language)."""
        try:
            if language:
                check_language(language)
            return language or None
        except ValueError as error:
            raise ServiceError(str(error)) from error

    def _checked_recording(self, audio: bytes | Path) -> tuple[np.ndarray, int]:
        """Mono samples (n,) and rate of an upload, refused by size, then by its header before decoding."""
        try:
            return load_recording(self._upload_bytes(audio), self.limits.max_recording_s)
        except (AudioError, RecordingError) as error:
            raise ServiceError(str(error)) from error

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
            return self.library.import_zip(archive, shared=shared, owner_session=None if shared else session,
                                           new_id=None if shared else private_speaker_id)  # ids tell nothing

    def reference_path(self, speaker_id: str, session: str | None, token: str | None = None) -> Path:
        """The stored reference clip of a speaker the caller may see."""
        return self.library.reference_path(self.access.visible(self.library, speaker_id, session, token).id)

    # -- ratings ----------------------------------------------------------------------------

    def new_clip_ids(self, speaker_ids: Sequence[str], text: str, session: str | None) -> list[str]:
        """One clip id per voice of a Compare just made, signed for its voice, the text and the rater
        (none when ratings are not stored): the only ids :meth:`save_ratings` takes."""
        if self.ratings is None:
            return []
        return [self.ratings.mint_clip_id(speaker_id, text, session) for speaker_id in speaker_ids]

    def save_ratings(self, ratings: Sequence[Rating]) -> int:
        """Store one Compare's ratings together; returns how many.

        Each clip id must be one :meth:`new_clip_ids` made for that voice, text and rater
        (``Rating.session``), 403 otherwise; a clip rated already is a 409: one Compare,
        one rating per clip.
        """
        ratings_store = self._ratings_store()
        if not all(ratings_store.is_minted(r.clip_id, r.speaker_id, r.text, r.session) for r in ratings):
            raise ServiceError("these ratings are not for clips this server made for you: compare again", status=403)
        try:
            return len(ratings_store.add_all(ratings))
        except ClipAlreadyRated as error:
            raise ServiceError("these clips are rated already (one rating per clip): compare again to rate new "
                               "clips", status=409) from error
        except ValueError as error:
            raise ServiceError(str(error)) from error

    def voice_ranking(self, session: str | None) -> list[tuple[str, VoiceScore]]:
        """(name, score) of each rated voice the caller may use, best first. Other visitors' private
        voices and voices deleted since they were rated are left out: neither name nor id is shown."""
        if self.ratings is None:
            return []
        names = {info.id: info.name for info in self.library.list(session)}
        return [(names[score.speaker_id], score) for score in self.ratings.summary() if score.speaker_id in names]

    def ratings_csv(self, token: str | None) -> str:
        """Every rating as CSV; needs the admin token when one is set (notes can be private).
        Raters appear as keyed hashes, never their visitor keys (see :mod:`voice_studio.ratings`)."""
        ratings_store = self._ratings_store()
        self.access.require_admin(token, "exporting ratings")
        return ratings_store.to_csv()

    def _ratings_store(self) -> RatingStore:
        if self.ratings is None:
            raise ServiceError("ratings are not stored on this server", status=404)
        return self.ratings

    def transcribe(self, audio: bytes | Path, language: str | None) -> str:
        """What the reference clip says, by the speech recognizer (loaded on first use)."""
        try:
            samples, rate = load_reference_audio(self._checked_audio(audio, trim=False))
            with self._recognizer_slot():
                return self.transcriber.transcribe(samples, rate, language)
        except AudioError as error:
            raise ServiceError(str(error)) from error
        except TranscriptionError as error:
            raise ServiceError(str(error), status=503) from error

    def transcribe_detecting(self, audio: bytes | Path) -> tuple[str, str | None]:
        """What the clip says and the language Whisper heard (an app code such as "zh", or None)."""
        try:
            samples, rate = load_reference_audio(self._checked_audio(audio, trim=False))
            with self._recognizer_slot():
                heard = self.transcriber.transcribe_segments(samples, rate, None)
        except AudioError as error:
            raise ServiceError(str(error)) from error
        except TranscriptionError as error:
            raise ServiceError(str(error), status=503) from error
        return heard.text, heard.language

    def _checked_audio(self, audio: bytes | Path, trim: bool = True, auxiliary: str | None = None) -> bytes:
        """The upload's bytes, refused by size before reading and by its header before decoding.

        ``auxiliary``: the clip's name when it is an auxiliary reference (1-10 s, not 3-10 s).
        """
        data = self._upload_bytes(audio)
        try:
            check_header_duration(data, self.limits.max_decoded_audio_s, auxiliary or "the uploaded audio")
            data = trimmed_wav(data) if trim else data
            load_reference_audio(data, auxiliary=auxiliary is not None)  # length, not silent, decodable: before storing
        except AudioError as error:
            message = str(error)
            raise ServiceError(message.replace("the uploaded audio", auxiliary) if auxiliary else message) from error
        return data

    def _upload_bytes(self, audio: bytes | Path) -> bytes:
        limit = self.limits.max_upload_bytes
        size = audio.stat().st_size if isinstance(audio, Path) else len(audio)
        if size > limit:
            raise ServiceError(f"the audio file is over {limit // 2**20} MB", status=413)
        data = audio.read_bytes() if isinstance(audio, Path) else audio
        if not data:
            raise ServiceError("the audio file is empty")
        return data

    @contextmanager
    def _recognizer_slot(self) -> Iterator[None]:
        """One of ``limits.max_transcriptions`` places at Whisper, or 503 busy at once (never a queue of
        three-minute recordings behind each other)."""
        if not self._recognizer_slots.acquire(blocking=False):
            raise ServiceError(f"the speech recognizer is busy with other uploads; try again in {RETRY_AFTER_S} seconds",
                               status=503, headers={"Retry-After": str(RETRY_AFTER_S)})
        try:
            yield
        finally:
            self._recognizer_slots.release()

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
