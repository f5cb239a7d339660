"""The one public entry: reference speech -> speaker conditioning, text -> waveform.

``VoicePipeline`` owns every model and never mutates itself after construction: the
state of one synthesis (its random generator, its speaker) lives in local variables, so
several threads can synthesize with different speakers at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .audio import AudioSource, load_reference_audio, prepare_reference_audio
from .batching import bucket_batches, join_fragments
from .conditioning import SpeakerConditioning
from .features.bert import BertFeatures
from .features.ssl import HubertFeatures
from .features.sv import SpeakerEncoder
from .hub import ModelFiles
from .models.sovits import load_sovits
from .models.t2s import SamplingOptions, load_t2s
from .speaker_meta import weights_key as compute_weights_key
from .spectrogram import linear_spectrogram
from .text.frontend import DEFAULT_SPLIT_METHOD, PhoneSequence, TextFrontend
from .versions import VersionInfo, get_version

ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class SynthesisOptions:
    """How to synthesize; defaults are those of the official ``TTS.run``."""

    # GPT stage sampling
    top_k: int = 15
    top_p: float = 1.0
    temperature: float = 1.0
    repetition_penalty: float = 1.35
    # text splitting and batching
    split_method: str = DEFAULT_SPLIT_METHOD
    batch_size: int = 1
    batch_threshold: float = 0.75
    split_bucket: bool = True
    # output
    speed: float = 1.0
    fragment_interval: float = 0.3  # seconds of silence after each segment
    noise_scale: float = 0.5
    seed: int | None = None  # None draws a fresh seed

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be positive, got {self.repetition_penalty}")
        if not 0.25 <= self.speed <= 4:
            raise ValueError(f"speed must be between 0.25 and 4, got {self.speed}")
        if self.fragment_interval < 0:
            raise ValueError(f"fragment_interval must not be negative, got {self.fragment_interval}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")

    def sampling(self) -> SamplingOptions:
        return SamplingOptions(
            top_k=self.top_k,
            top_p=self.top_p,
            temperature=self.temperature,
            repetition_penalty=self.repetition_penalty,
        )


@dataclass(frozen=True)
class SegmentResult:
    """One text segment: its phones, the semantic tokens generated for it and its raw audio."""

    norm_text: str
    phone_ids: np.ndarray  # (P,) int64
    semantic_tokens: np.ndarray  # (T,) int64, EOS removed
    audio: np.ndarray  # (T * 1280 / speed,) float32, before peak limiting


@dataclass(frozen=True)
class SynthesisResult:
    sample_rate: int
    audio: np.ndarray  # (samples,) float32 in [-1, 1]
    segments: tuple[SegmentResult, ...] = ()
    seed: int = 0
    timings: dict = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate


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
        weight_files = [t2s, sovits] + ([sv] if sv else [])
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
        if speaker.version != self.version:
            raise ValueError(f"speaker was prepared for {speaker.version}, this pipeline runs {self.version}")
        report = progress or (lambda fraction, message: None)
        started = time.perf_counter()
        seed = options.seed if options.seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())
        generator = torch.Generator(device=self.device).manual_seed(seed)
        report(0.0, "reading the text")
        sequences = self.frontend.prepare(text, language, self.version_info.symbols, options.split_method)
        with torch.inference_mode():
            target_bert = [self.bert.sequence_features(seq.parts) for seq in sequences]
            segments = self._generate_segments(sequences, target_bert, speaker, options, generator, report, decode_noise)
        audio = join_fragments([s.audio for s in segments], self.sample_rate, options.fragment_interval)
        report(1.0, "done")
        return SynthesisResult(
            sample_rate=self.sample_rate,
            audio=audio,
            segments=tuple(segments),
            seed=seed,
            timings={"total_s": time.perf_counter() - started},
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
        prompt_phones = _tensor(speaker.prompt_phones, device) if speaker.has_prompt else None
        prompt_bert = _tensor(speaker.prompt_bert, device) if speaker.has_prompt else None
        prompt_semantic = _tensor(speaker.prompt_semantic, device) if speaker.has_prompt else None
        ge = _tensor(speaker.global_embedding, device)
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
                results[index] = SegmentResult(
                    norm_text=sequences[index].norm_text,
                    phone_ids=np.asarray(sequences[index].phone_ids, dtype=np.int64),
                    semantic_tokens=_numpy(segment_tokens),
                    audio=_numpy(fragment),
                )
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


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy() if tensor.is_floating_point() else tensor.detach().cpu().numpy()


def _tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)
