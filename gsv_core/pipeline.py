"""The one public entry: reference speech -> speaker conditioning, text -> waveform.

``VoicePipeline`` owns every model and never mutates itself after construction: the
state of one synthesis (its random generator, its speaker) lives in local variables, so
several threads can synthesize with different speakers at once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .audio import AudioSource, join_fragments, load_reference_audio, prepare_reference_audio
from .bucketing import bucket_batches
from .conditioning import SpeakerConditioning
from .features.bert import BertFeatures
from .features.ssl import HubertFeatures
from .features.sv import SpeakerEncoder
from .hub import ModelFiles
from .models.sovits import load_sovits
from .models.t2s import load_t2s
from .spectrogram import linear_spectrogram
from .synthesis import ProgressFn, SegmentResult, SynthesisOptions, SynthesisRequest, SynthesisResult
from .text.frontend import PhoneSequence, TextFrontend
from .versions import VersionInfo
from .weights_key import weights_key as compute_weights_key


@dataclass
class _Job:
    """The running state of one request inside :meth:`VoicePipeline.synthesize_many`."""

    index: int
    request: SynthesisRequest
    seed: int
    generator: torch.Generator
    conditioning: _SpeakerTensors
    sequences: list[PhoneSequence]
    target_bert: list[torch.Tensor]
    order: list[int]  # segments in the order a solo run decodes them
    segments: dict[int, SegmentResult] = field(default_factory=dict)


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
    ) -> None:
        self.version_info = version
        self.t2s = t2s
        self.sovits = sovits
        self.hubert = hubert
        self.bert = bert
        self.speaker_encoder = speaker_encoder
        self.frontend = frontend
        self.weights_key = weights_key
        self.device = torch.device(device)

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
    ) -> "VoicePipeline":
        """Load every model of ``files`` (see :func:`gsv_core.hub.resolve_model_files`)."""
        pipeline = cls.from_paths(
            files.t2s, files.sovits, files.hubert_dir, files.bert_dir, files.sv,
            device=device, dtype=dtype, frontend=frontend, official_data=official_data,
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
    ) -> "VoicePipeline":
        """Load from explicit files; the version comes from the SoVITS file.

        A v2Pro-family pipeline without ``sv`` needs the speaker-verification features
        given to :meth:`prepare_speaker`.
        """
        sovits_model = load_sovits(sovits, device=device, dtype=dtype)
        version = sovits_model.version
        encoder = SpeakerEncoder.from_checkpoint(sv, device, dtype) if version.uses_sv and sv is not None else None
        _check_sv_fits(encoder, sovits_model, sv)
        weight_files = [t2s, sovits, hubert_dir, bert_dir] + ([sv] if sv else [])  # every model whose outputs a speaker caches
        return cls(
            version=version,
            t2s=load_t2s(t2s, device=device, dtype=dtype),
            sovits=sovits_model,
            hubert=HubertFeatures(hubert_dir, device=device, dtype=dtype),
            bert=BertFeatures(bert_dir, device=device, dtype=dtype),
            speaker_encoder=encoder,
            frontend=frontend or TextFrontend.load(official_data=official_data),
            weights_key=compute_weights_key(version.name, weight_files),
            device=device,
        )

    # -- speakers -------------------------------------------------------------------------

    def prepare_speaker(
        self, audio: AudioSource, transcript: str | None, language: str, sv_embedding: np.ndarray | None = None
    ) -> SpeakerConditioning:
        """Everything synthesis needs from 3-10 s of reference speech.

        With an empty ``transcript`` the conditioning has no prompt, and the GPT stage
        runs unprompted (the official no-reference-text mode). ``sv_embedding`` (1, 20480)
        gives the speaker-verification features instead of running that model (v2Pro family).
        Raises AudioError for unusable audio and TextError for an unusable transcript.
        """
        if self.version_info.uses_sv and sv_embedding is None and self.speaker_encoder is None:
            raise ValueError(f"{self.version} needs a speaker-verification model or precomputed sv_embedding")
        samples, sample_rate = load_reference_audio(audio)
        transcript = (transcript or "").strip()
        prompt = self.frontend.prompt_phonemes(transcript, language, self.version_info.symbols) if transcript else None
        reference = prepare_reference_audio(samples, sample_rate, self.sample_rate, with_sv=self.version_info.uses_sv)
        with torch.inference_mode():
            ref_spec = linear_spectrogram(reference.spec_audio.to(self.device), self.version_info.audio)
            if sv_embedding is not None:
                sv_embedding = torch.as_tensor(np.asarray(sv_embedding, dtype=np.float32).reshape(1, -1), device=self.device)
            elif self.version_info.uses_sv:
                sv_embedding = self.speaker_encoder.sv_embedding(reference.sv_input.to(self.device))
            global_embedding = self.sovits.global_embedding(ref_spec, sv_embedding)
            arrays: dict[str, np.ndarray | None] = {"prompt_semantic": None, "prompt_phones": None, "prompt_bert": None}
            if prompt is not None:
                content = self.hubert.content(reference.hubert_input.to(self.device))
                arrays["prompt_semantic"] = _numpy(self.sovits.extract_latent(content)[0, 0])
                arrays["prompt_phones"] = np.asarray(prompt.phone_ids, dtype=np.int64)
                arrays["prompt_bert"] = _numpy(self.bert.sequence_features(prompt.parts))
        return SpeakerConditioning(
            version=self.version,
            ref_spec=_numpy(ref_spec),
            global_embedding=_numpy(global_embedding),
            sv_embedding=_numpy(sv_embedding) if self.version_info.uses_sv else None,
            prompt_text=prompt.norm_text if prompt else "",
            prompt_language=language,
            **arrays,
        )

    # -- synthesis ------------------------------------------------------------------------

    def synthesize(
        self,
        text: str,
        language: str,
        speaker: SpeakerConditioning,
        options: SynthesisOptions = SynthesisOptions(),
        progress: ProgressFn | None = None,
        decode_noise: Sequence[torch.Tensor] | None = None,
    ) -> SynthesisResult:
        """Speak ``text`` in the voice of ``speaker``.

        ``decode_noise`` replaces the decoder's Gaussian draws, one tensor per decoder call
        (parity tests inject the official draw). Raises TextError for unusable text.
        """
        self._check_speaker(speaker)
        report = progress or (lambda fraction, message: None)
        started = time.perf_counter()
        seed, generator = self._seeded(options)
        report(0.0, "reading the text")
        sequences = self.frontend.prepare(text, language, self.version_info.symbols, options.split_method)
        with torch.inference_mode():
            target_bert = [self.bert.sequence_features(seq.parts) for seq in sequences]
            segments = self._generate_segments(sequences, target_bert, speaker, options, generator, report, decode_noise)
        report(1.0, "done")
        return self._result(segments, options, seed, started)

    def synthesize_many(self, requests: Sequence[SynthesisRequest]) -> list[SynthesisResult | Exception]:
        """Serve unrelated requests together, for throughput under concurrent use.

        The GPT stage decodes the next segment of every request as one batch (see
        :meth:`Text2Semantic.generate_independent`); each request keeps its own generator,
        drawn in the order :meth:`synthesize` draws it, so it gets the same audio as
        :meth:`synthesize` with the same seed. A request that cannot be served (bad text,
        a speaker of another version) gets its exception in its slot; the others go on.
        Requests with ``batch_size`` above 1 are served alone, in the official way.
        """
        started = time.perf_counter()
        outcomes: list[SynthesisResult | Exception | None] = [None] * len(requests)
        jobs: list[_Job] = []
        for index, request in enumerate(requests):
            try:
                if request.options.batch_size > 1:
                    outcomes[index] = self.synthesize(request.text, request.language, request.speaker, request.options,
                                                      request.progress)
                else:
                    jobs.append(self._start_job(index, request))
            except ValueError as error:  # TextError and bad speakers; anything else is a server fault
                outcomes[index] = error
        with torch.inference_mode():
            for wave in range(max((len(job.sequences) for job in jobs), default=0)):
                self._decode_wave([job for job in jobs if wave < len(job.sequences)], wave)
        for job in jobs:
            segments = [job.segments[i] for i in range(len(job.sequences))]
            _report(job.request)(1.0, "done")
            outcomes[job.index] = self._result(segments, job.request.options, job.seed, started, batched=len(requests))
        return outcomes  # type: ignore[return-value]

    def _start_job(self, index: int, request: SynthesisRequest) -> _Job:
        self._check_speaker(request.speaker)
        options = request.options
        _report(request)(0.0, "reading the text")
        sequences = self.frontend.prepare(request.text, request.language, self.version_info.symbols, options.split_method)
        with torch.inference_mode():
            target_bert = [self.bert.sequence_features(seq.parts) for seq in sequences]
        split_bucket = options.split_bucket and options.speed == 1.0
        batches = bucket_batches([len(s.norm_text) for s in sequences], 1, options.batch_threshold, split_bucket)
        seed, generator = self._seeded(options)
        return _Job(index, request, seed, generator, self._conditioning(request.speaker), sequences, target_bert,
                    order=[batch[0] for batch in batches])

    def _decode_wave(self, jobs: list[_Job], wave: int) -> None:
        """One segment of each job: GPT stage as one batch, then each job's decoder call."""
        phones, all_phones, all_bert, prompts = [], [], [], []
        for job in jobs:
            segment = job.order[wave]
            _report(job.request)(0.05 + 0.9 * wave / len(job.sequences), f"generating segment {wave + 1} of {len(job.sequences)}")
            conditioning = job.conditioning
            text = torch.tensor(job.sequences[segment].phone_ids, dtype=torch.long, device=self.device)
            bert = job.target_bert[segment].to(self.device)
            phones.append(text)
            if conditioning.prompt_phones is not None:
                text = torch.cat([conditioning.prompt_phones, text])
                bert = torch.cat([conditioning.prompt_bert, bert], dim=1)
            all_phones.append(text)
            all_bert.append(bert)
            prompts.append(conditioning.prompt_semantic)
        tokens = self.t2s.generate_independent(
            all_phones, all_bert, prompts, [job.request.options.sampling() for job in jobs], [job.generator for job in jobs]
        )
        for job, segment_phones, segment_tokens in zip(jobs, phones, tokens):
            segment = job.order[wave]
            fragment = self._decode([segment_tokens], [segment_phones], job.conditioning.global_embedding,
                                    job.request.options, job.generator, [])[0]
            job.segments[segment] = _segment_result(job.sequences[segment], segment_tokens, fragment)

    def _check_speaker(self, speaker: SpeakerConditioning) -> None:
        if speaker.version != self.version:
            raise ValueError(f"speaker was prepared for {speaker.version}, this pipeline runs {self.version}")

    def _seeded(self, options: SynthesisOptions) -> tuple[int, torch.Generator]:
        seed = options.seed if options.seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())
        return seed, torch.Generator(device=self.device).manual_seed(seed)

    def _conditioning(self, speaker: SpeakerConditioning) -> _SpeakerTensors:
        has_prompt = speaker.has_prompt
        return _SpeakerTensors(
            prompt_phones=_tensor(speaker.prompt_phones, self.device) if has_prompt else None,
            prompt_bert=_tensor(speaker.prompt_bert, self.device) if has_prompt else None,
            prompt_semantic=_tensor(speaker.prompt_semantic, self.device) if has_prompt else None,
            global_embedding=_tensor(speaker.global_embedding, self.device),
        )

    def _result(self, segments: list[SegmentResult], options: SynthesisOptions, seed: int, started: float,
                batched: int = 1) -> SynthesisResult:
        audio = join_fragments([s.audio for s in segments], self.sample_rate, options.fragment_interval)
        return SynthesisResult(
            sample_rate=self.sample_rate,
            audio=audio,
            segments=tuple(segments),
            seed=seed,
            timings={"total_s": time.perf_counter() - started, "requests_in_batch": batched},
        )

    def _generate_segments(
        self,
        sequences: list[PhoneSequence],
        target_bert: list[torch.Tensor],
        speaker: SpeakerConditioning,
        options: SynthesisOptions,
        generator: torch.Generator,
        report: ProgressFn,
        decode_noise: Sequence[torch.Tensor] | None,
    ) -> list[SegmentResult]:
        device = self.device
        conditioning = self._conditioning(speaker)
        prompt_phones, prompt_bert = conditioning.prompt_phones, conditioning.prompt_bert
        prompt_semantic, ge = conditioning.prompt_semantic, conditioning.global_embedding
        split_bucket = options.split_bucket and options.speed == 1.0
        batches = bucket_batches([len(s.norm_text) for s in sequences], options.batch_size, options.batch_threshold, split_bucket)
        results: list[SegmentResult | None] = [None] * len(sequences)
        noise_draws = list(decode_noise or [])
        for number, batch in enumerate(batches):
            report(0.05 + 0.9 * number / len(batches), f"generating segment {number + 1} of {len(batches)}")
            phones = [torch.tensor(sequences[i].phone_ids, dtype=torch.long, device=device) for i in batch]
            berts = [target_bert[i].to(device) for i in batch]
            if prompt_phones is not None:
                all_phones = [torch.cat([prompt_phones, p]) for p in phones]
                all_bert = [torch.cat([prompt_bert, b], dim=1) for b in berts]
            else:
                all_phones, all_bert = phones, berts
            tokens = self.t2s.generate(all_phones, all_bert, prompt_semantic, options.sampling(), generator=generator)
            fragments = self._decode(tokens, phones, ge, options, generator, noise_draws)
            for index, segment_tokens, fragment in zip(batch, tokens, fragments):
                results[index] = _segment_result(sequences[index], segment_tokens, fragment)
        return results  # type: ignore[return-value]

    def _decode(
        self,
        tokens: list[torch.Tensor],
        phones: list[torch.Tensor],
        ge: torch.Tensor,
        options: SynthesisOptions,
        generator: torch.Generator,
        noise_draws: list[torch.Tensor],
    ) -> list[torch.Tensor]:
        """Waveform fragments (samples,) per segment of one batch.

        At normal speed the batch is decoded in one call over the concatenated tokens and
        cut back into segments (as the official parallel decoder does); with a speed
        change each segment is decoded alone.
        """
        def decode(codes: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
            noise = noise_draws.pop(0).to(self.device) if noise_draws else None
            audio = self.sovits.decode(
                codes.view(1, 1, -1), text.view(1, -1), ge,
                speed=options.speed, noise_scale=options.noise_scale, noise=noise, generator=generator,
            )
            return audio[0, 0]

        if options.speed != 1.0:
            return [decode(t, p) for t, p in zip(tokens, phones)]
        audio = decode(torch.cat(tokens), torch.cat(phones))
        samples_per_token = self.sovits.samples_per_token
        bounds = np.cumsum([0] + [len(t) * samples_per_token for t in tokens])
        return [audio[start:end] for start, end in zip(bounds[:-1], bounds[1:])]


@dataclass(frozen=True)
class _SpeakerTensors:
    prompt_phones: torch.Tensor | None  # (P,) int64
    prompt_bert: torch.Tensor | None  # (1024, P)
    prompt_semantic: torch.Tensor | None  # (T,) int64
    global_embedding: torch.Tensor  # (1, C, 1)


def _check_sv_fits(encoder: SpeakerEncoder | None, sovits: torch.nn.Module, sv: Path | None) -> None:
    """Refuse at load, not at the first speaker, an SV checkpoint whose output the SoVITS model cannot take."""
    projection = getattr(sovits, "speaker_projection", None)
    if encoder is None or projection is None:
        return
    expected = projection.sv_proj.in_features
    if encoder.embedding_dim != expected:
        raise ValueError(
            f"the speaker-verification checkpoint {Path(sv).name} gives {encoder.embedding_dim}-wide embeddings, "
            f"but the SoVITS model takes {expected}: the two files do not belong together"
        )


def _report(request: SynthesisRequest) -> ProgressFn:
    return request.progress or (lambda fraction, message: None)


def _segment_result(sequence: PhoneSequence, tokens: torch.Tensor, fragment: torch.Tensor) -> SegmentResult:
    return SegmentResult(
        norm_text=sequence.norm_text,
        phone_ids=np.asarray(sequence.phone_ids, dtype=np.int64),
        semantic_tokens=_numpy(tokens),
        audio=_numpy(fragment),
    )


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy() if tensor.is_floating_point() else tensor.detach().cpu().numpy()


def _tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)
