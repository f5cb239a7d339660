"""The one public entry: reference speech -> speaker conditioning, text -> waveform.

``VoicePipeline`` owns every model and never changes them after construction: the state
of one synthesis (its random generator, its speaker) lives in a job object, so several
threads can synthesize with different speakers at once (the only shared state, a small
cache of hot speakers' tensors on the device, has its own lock). There is one synthesis
path: :meth:`VoicePipeline.synthesize` is :meth:`VoicePipeline.synthesize_many` of one
request.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from ..audio import AudioSource, join_fragments
from .bucketing import bucket_batches
from ..conditioning import SpeakerConditioning
from ..features.bert import BertFeatures
from ..features.similarity import output_similarity
from ..features.ssl import HubertFeatures
from ..features.sv import SpeakerEncoder, check_sv_fits
from ..hub import ModelFiles
from .jobs import SynthesisJob
from ..memory import release_free_memory
from ..models.sovits import load_sovits
from ..models.t2s import load_t2s
from .references import ReferenceEncoder
from .decoder_stage import decoder_stage_for
from .fast_cpu import FastCpuMode
from .gpt_stage import GptStage
from .speaker_tensors import DeviceSpeakers, SpeakerTensors
from .requests import (
    AudioChunk, AudioFn, InspectFn, PreparedText, ProgressFn, SynthesisCancelled, SynthesisOptions,
    SynthesisRequest, SynthesisResult,
)
from ..text.frontend import TextFrontend
from .token_chunks import mute_similarity
from ..versions import VersionInfo
from ..weights_key import weights_key as compute_weights_key


class VoicePipeline:
    """GPT-SoVITS inference for one model version; thread-safe after construction."""

    def __init__(
        self,
        *,
        version: VersionInfo,
        t2s: torch.nn.Module,
        sovits: torch.nn.Module,
        hubert: HubertFeatures,
        bert: BertFeatures,
        speaker_encoder: SpeakerEncoder | None,
        frontend: TextFrontend,
        weights_key: str = "",
        device: torch.device | str = "cpu",
        batch_decoder: bool | None = None,
    ) -> None:
        """``batch_decoder``: decode the calls of all requests of a wave as one padded SoVITS batch
        (each gets what it gets alone, up to float reassociation); None: on CUDA only, where it
        pays (on a 2-core CPU it does not)."""
        self.version_info = version
        self.t2s = t2s
        self.sovits = sovits
        self.hubert = hubert
        self.bert = bert
        self.speaker_encoder = speaker_encoder
        self.frontend = frontend
        self.weights_key = weights_key
        self.device = torch.device(device)
        self._device_speakers = DeviceSpeakers(self.device, capacity=16)
        self._references = ReferenceEncoder(version, sovits, hubert, bert, speaker_encoder, frontend, self.device)
        batched = self.device.type == "cuda" if batch_decoder is None else batch_decoder
        self._decoder = decoder_stage_for(version, sovits, self.sample_rate, self.device, batched,
                                          mute_similarity(t2s.semantic_embedding.weight))  # where chunks may be cut
        self._gpt = GptStage(t2s, bert, self._decoder, self.device)

    @property
    def batch_decoder(self) -> bool:
        """Whether a wave's decoder calls of all requests go through SoVITS as one batch."""
        return self._decoder.batched

    def with_batch_decoder(self, batch_decoder: bool | None) -> "VoicePipeline":
        """A pipeline over these same models (nothing is copied) with another ``batch_decoder`` setting."""
        return VoicePipeline(
            version=self.version_info, t2s=self.t2s, sovits=self.sovits, hubert=self.hubert, bert=self.bert,
            speaker_encoder=self.speaker_encoder, frontend=self.frontend, weights_key=self.weights_key,
            device=self.device, batch_decoder=batch_decoder,
        )

    @property
    def version(self) -> str:
        return self.version_info.name

    @property
    def sample_rate(self) -> int:
        return self.version_info.audio.sampling_rate

    @classmethod
    def from_files(
        cls,
        files: ModelFiles,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        frontend: TextFrontend | None = None,
        official_data: Path | None = None,
        batch_decoder: bool | None = None,
        fast_cpu: FastCpuMode | None = None,
    ) -> "VoicePipeline":
        """Load every model of ``files`` (see :func:`gsv_core.hub.resolve_model_files`)."""
        pipeline = cls.from_paths(
            files.t2s, files.sovits, files.hubert_dir, files.bert_dir, files.sv, device=device, dtype=dtype,
            frontend=frontend, official_data=official_data, batch_decoder=batch_decoder, fast_cpu=fast_cpu,
        )
        if pipeline.version != files.version:
            raise ValueError(f"{files.sovits} is a {pipeline.version} SoVITS file, but {files.version} was asked for")
        return pipeline

    @classmethod
    def from_paths(
        cls,
        t2s: Path,
        sovits: Path,
        hubert_dir: Path,
        bert_dir: Path,
        sv: Path | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        frontend: TextFrontend | None = None,
        official_data: Path | None = None,
        batch_decoder: bool | None = None,
        keep_hubert: bool | None = None,
        fast_cpu: FastCpuMode | None = None,
    ) -> "VoicePipeline":
        """Load from explicit files; the version comes from the SoVITS file.

        A v2Pro-family pipeline without ``sv`` needs the speaker-verification features
        given to :meth:`prepare_speaker`. ``keep_hubert``: HuBERT (~0.4 GB in float32) runs only
        when a speaker is prepared; on the CPU (None) it is loaded for each preparation and freed
        after it (:mod:`gsv_core.features.on_demand`), so synthesis runs without its weights in
        memory; on a GPU it stays loaded (memory is plentiful there, and under ZeroGPU models must
        be placed at start, not loaded inside a GPU call). The SV network stays loaded: besides
        preparing speakers it scores every synthesis's similarity to its reference. ``fast_cpu``:
        the fast CPU mode (:mod:`gsv_core.engine.fast_cpu`), applied to the float32 CPU models before
        the pipeline is built around them.
        """
        sovits_model = load_sovits(sovits, device=device, dtype=dtype)
        version = sovits_model.version
        keep_hubert = torch.device(device).type != "cpu" if keep_hubert is None else keep_hubert
        # v2 takes no SV features, but a given SV model still gives each speaker its verification
        # embedding, so that outputs can be scored for similarity
        encoder = SpeakerEncoder.from_checkpoint(sv, device, dtype) if sv is not None else None
        check_sv_fits(encoder, sovits_model, sv)  # refused at load, not at the first speaker
        weight_files = [t2s, sovits, hubert_dir, bert_dir] + ([sv] if sv else [])  # every model whose outputs a speaker caches
        t2s_model, bert = load_t2s(t2s, device=device, dtype=dtype), BertFeatures(bert_dir, device=device, dtype=dtype)
        frontend = frontend or TextFrontend.load(official_data=official_data)
        weight_files += frontend.reading_files if version.symbols == "v2" else ()  # g2pW: the prompt's phones
        key = compute_weights_key(version.name, weight_files)
        if fast_cpu is not None:
            fast_cpu.apply(t2s_model, bert, sovits_model)
            key += FastCpuMode.KEY_SUFFIX
        pipeline = cls(
            version=version,
            t2s=t2s_model,
            sovits=sovits_model,
            hubert=HubertFeatures(hubert_dir, device=device, dtype=dtype, keep_loaded=keep_hubert),
            bert=bert,
            speaker_encoder=encoder,
            frontend=frontend,
            weights_key=key,
            device=device,
            batch_decoder=batch_decoder,
        )
        release_free_memory()  # the checkpoints' float16 copies and read buffers
        return pipeline

    # -- speakers -------------------------------------------------------------------------

    def prepare_speaker(
        self, audio: AudioSource, transcript: str | None, language: str, sv_embedding: np.ndarray | None = None,
        aux_audio: Sequence[AudioSource] = (), aux_sv_embeddings: Sequence[np.ndarray] | None = None,
    ) -> SpeakerConditioning:
        """Everything synthesis needs from 3-10 s of reference speech (and optional extra clips).

        With an empty ``transcript`` the conditioning has no prompt, and the GPT stage
        runs unprompted (the official no-reference-text mode). ``aux_audio``: up to 7
        auxiliary clips (1-10 s each) of the same voice; the decoder is conditioned on the
        mean of every clip's global embedding (upstream's ``aux_ref_audio_paths``), the
        prompt still comes from ``audio`` alone. v2Pro family: ``sv_embedding`` (1, 20480)
        and, with auxiliary clips, ``aux_sv_embeddings`` (one (1, 20480) per clip) give the
        speaker-verification features instead of running that model.
        Raises AudioError for unusable audio, TextError for an unusable transcript and
        ValueError for inconsistent arguments.
        """
        return self._references.prepare(audio, transcript, language, sv_embedding, aux_audio, aux_sv_embeddings)

    def similarity(self, speaker: SpeakerConditioning, audio: np.ndarray, sample_rate: int) -> float | None:
        """Speaker-verification cosine similarity in [-1, 1] of ``audio`` (n,) to ``speaker``'s reference,
        from its stored ``verification_embedding``; None without an SV model or that embedding, or for
        output shorter than :data:`~gsv_core.features.similarity.MIN_SECONDS`."""
        if self.speaker_encoder is None or speaker.verification_embedding is None:
            return None
        return output_similarity(self.speaker_encoder, speaker.verification_embedding, audio, sample_rate)

    # -- synthesis ------------------------------------------------------------------------

    def prepare_text(self, text: str, language: str, options: SynthesisOptions = SynthesisOptions()) -> PreparedText:
        """``text`` cut into segments (``options.split_method``) and read into phones, once.

        Raises TextError for text with nothing to speak, an unsupported language or split
        method. Segments longer than BERT's positions are not refused here (a service checks
        its limits on the result and words its own refusal); synthesis refuses them.
        """
        symbols = self.version_info.symbols
        sequences = tuple(self.frontend.prepare(text, language, symbols, options.split_method))
        bert_chars = tuple(max((len(part.norm_text) for part in sequence.parts if self.bert.reads(part)), default=0)
                           for sequence in sequences)
        return PreparedText(text, language, options.split_method, symbols, sequences, bert_chars, self.bert.max_chars)

    def synthesize(
        self,
        text: str,
        language: str,
        speaker: SpeakerConditioning,
        options: SynthesisOptions = SynthesisOptions(),
        progress: ProgressFn | None = None,
        decode_noise: Sequence[np.ndarray] | None = None,
        inspect: InspectFn | None = None,
        on_audio: AudioFn | None = None,
    ) -> SynthesisResult:
        """Speak ``text`` in the voice of ``speaker`` (see :class:`SynthesisRequest` for the rest).

        The one-request case of :meth:`synthesize_many`. Raises TextError for unusable text,
        ValueError for a speaker of another version.
        """
        request = SynthesisRequest(text, language, speaker, options, progress, decode_noise, inspect, on_audio)
        outcome = self.synthesize_many([request])[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def synthesize_stream(self, request: SynthesisRequest) -> Iterator[AudioChunk]:
        """The pieces of one streamed request (``request.options.stream`` set) as they are made.

        Synthesis runs in a worker thread; an error is raised here, after the pieces made before it.
        Closing the iterator early stops the synthesis at its next step or chunk.
        """
        if request.options.stream is None:
            raise ValueError("synthesize_stream needs options.stream ('fragments' or 'chunks')")
        pieces: queue.Queue = queue.Queue()
        closed = threading.Event()
        asked = request.should_stop
        request = dataclasses.replace(request, on_audio=pieces.put,
                                      should_stop=lambda: closed.is_set() or (asked is not None and asked()))
        worker = threading.Thread(target=lambda: pieces.put(self.synthesize_many([request])[0]), daemon=True,
                                  name="synthesis-stream")
        worker.start()
        try:
            while not isinstance(item := pieces.get(), (SynthesisResult, Exception)):
                yield item
        finally:
            closed.set()  # a no-op once synthesis ended; else the worker stops at its next step
        if isinstance(item, Exception):
            raise item

    def synthesize_many(self, requests: Sequence[SynthesisRequest]) -> list[SynthesisResult | Exception]:
        """Serve requests together: one request, or unrelated ones for throughput under concurrent use.

        Wave by wave, the GPT stage decodes the next batch of segments of every request as
        one batch (:meth:`Text2Semantic.generate`); each request keeps its own generator,
        drawn in the order a request served alone draws it, so it gets the same audio as
        alone with the same seed. Whatever one request raises (bad text, a speaker of
        another version, a fault while decoding it) lands in its own slot; the others go on.
        A request whose ``should_stop`` says so is dropped at its next step (outcome
        :class:`SynthesisCancelled`); the others get what they would get without it.
        """
        started = time.perf_counter()
        outcomes: list[SynthesisResult | Exception | None] = [None] * len(requests)
        jobs: dict[int, SynthesisJob] = {}
        with torch.inference_mode():
            for index, request in enumerate(requests):
                try:
                    jobs[index] = self._start_job(request)
                except Exception as error:  # noqa: BLE001 - the request's own failure, returned in its slot
                    outcomes[index] = error
            wave = 0
            while active := _still_running(jobs, outcomes, wave):
                for index, error in self._run_wave(active, wave).items():
                    outcomes[index] = error
                wave += 1
        for index, job in jobs.items():
            if outcomes[index] is None:
                job.report(1.0, "done")
                outcomes[index] = self._result(job, started, batched=len(requests))
        return outcomes  # type: ignore[return-value]

    def _start_job(self, request: SynthesisRequest) -> SynthesisJob:
        self._check_speaker(request.speaker)
        options = request.options
        report = request.progress or (lambda fraction, message: None)
        report(0.0, "reading the text")
        prepared = request.prepared_text or self.prepare_text(request.text, request.language, options)
        if not prepared.fits(request.text, request.language, options.split_method, self.version_info.symbols):
            raise ValueError("the request's prepared text was read from another text, language, split method or model")
        prepared.check_positions()
        sequences = list(prepared.sequences)
        split_bucket = options.split_bucket and options.speed == 1.0 and options.stream is None  # as upstream
        batch_size = 1 if options.stream == "chunks" else options.batch_size
        batches = bucket_batches([len(s.norm_text) for s in sequences], batch_size, options.batch_threshold, split_bucket)
        seed, generator = self._seeded(options)
        noise = [torch.as_tensor(np.asarray(draw), device=self.device) for draw in request.decode_noise or ()]
        return SynthesisJob(request, seed, generator, self._conditioning(request.speaker), sequences, batches, noise)

    def _run_wave(self, jobs: dict[int, SynthesisJob], wave: int) -> dict[int, Exception]:
        """The ``wave``-th batch of segments of every job: GPT stage as one batch, then the jobs' decoder calls
        (:mod:`.decoder_stage`: one by one, or as one batch on a GPU).

        Returns the jobs that failed. When the shared GPT batch itself fails, each job is
        retried alone from its generator's state before the wave, so only the culprit fails.
        """
        states = {index: job.generator.get_state() for index, job in jobs.items()}
        try:
            tokens = self._gpt.generate_wave(list(jobs.values()), wave)
        except Exception as error:  # noqa: BLE001 - find out which request it was
            if len(jobs) == 1:
                return {next(iter(jobs)): error}
            tokens = None
        failures: dict[int, Exception] = {}
        wave_tokens: dict[int, list[torch.Tensor]] = {}
        for position, (index, job) in enumerate(jobs.items()):
            try:
                if tokens is None:
                    job.generator.set_state(states[index])
                    wave_tokens[index] = self._gpt.generate_wave([job], wave)[0]
                else:
                    wave_tokens[index] = tokens[position]
            except Exception as error:  # noqa: BLE001 - this request's failure only
                failures[index] = error
        for index in [index for index, job_tokens in wave_tokens.items() if any(t is None for t in job_tokens)]:
            failures[index] = SynthesisCancelled()  # its GPT rows stopped on should_stop: nothing to decode
            del wave_tokens[index]
        decoded = {index: jobs[index] for index in wave_tokens}
        return failures | self._decoder.decode_wave(decoded, wave, wave_tokens)

    def _check_speaker(self, speaker: SpeakerConditioning) -> None:
        if speaker.version != self.version:
            raise ValueError(f"speaker was prepared for {speaker.version}, this pipeline runs {self.version}")

    def _seeded(self, options: SynthesisOptions) -> tuple[int, torch.Generator]:
        seed = options.seed if options.seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())
        return seed, torch.Generator(device=self.device).manual_seed(seed)

    def _conditioning(self, speaker: SpeakerConditioning) -> SpeakerTensors:
        """The speaker's arrays on the device, moved once while the speaker stays hot."""
        return self._device_speakers.get(speaker)

    def _result(self, job: SynthesisJob, started: float, batched: int) -> SynthesisResult:
        segments = [job.segments[i] for i in range(len(job.sequences))]
        if job.request.options.stream is None:
            audio = join_fragments([s.audio for s in segments], self.sample_rate, job.request.options.fragment_interval)
        else:  # exactly what was streamed, in order
            audio = np.concatenate([piece for i in sorted(job.streamed) for piece in job.streamed[i]])
        return SynthesisResult(
            sample_rate=self.sample_rate,
            audio=audio,
            segments=tuple(segments),
            seed=job.seed,
            timings={"total_s": time.perf_counter() - started, "requests_in_batch": batched},
        )


def _still_running(jobs: dict[int, SynthesisJob], outcomes: list, wave: int) -> dict[int, SynthesisJob]:
    """The jobs with a ``wave``-th batch to run and no outcome yet; one whose request says stop gets
    SynthesisCancelled here, before its wave starts."""
    running = {}
    for index, job in jobs.items():
        if wave >= len(job.batches) or outcomes[index] is not None:
            continue
        try:
            job.check_cancelled()
        except SynthesisCancelled as cancelled:
            outcomes[index] = cancelled
            continue
        running[index] = job
    return running
