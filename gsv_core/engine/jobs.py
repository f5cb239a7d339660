"""The running state of one request while :meth:`VoicePipeline.synthesize_many` serves it.

A job owns everything one request changes while it is served (its generator, its segments'
results, what it streamed), so the pipeline itself stays unchanged and several requests can
be served together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .speaker_tensors import SpeakerTensors
from .streaming import SegmentStream
from ..text.frontend import PhoneSequence
from .requests import AudioChunk, SegmentResult, SynthesisCancelled, SynthesisRequest


@dataclass
class SynthesisJob:
    """The running state of one request inside :meth:`VoicePipeline.synthesize_many`."""

    request: SynthesisRequest
    seed: int
    generator: torch.Generator
    conditioning: SpeakerTensors
    sequences: list[PhoneSequence]
    batches: list[list[int]]  # segment indices decoded together, in the order a solo run decodes them
    noise: list[torch.Tensor]  # injected decoder draws still to use
    target_bert: dict[int, torch.Tensor] = field(default_factory=dict)  # (1024, P) per segment, made when needed
    segments: dict[int, SegmentResult] = field(default_factory=dict)
    decode_calls: int = 0
    streamed: dict[int, list[np.ndarray]] = field(default_factory=dict)  # per segment, the pieces emitted
    streams: dict[int, SegmentStream] = field(default_factory=dict)  # chunks mode, per segment

    def check_cancelled(self) -> None:
        """Raise SynthesisCancelled once the request's ``should_stop`` says so (before each decoder call)."""
        if self.request.should_stop is not None and self.request.should_stop():
            raise SynthesisCancelled()

    def report(self, fraction: float, message: str) -> None:
        if self.request.progress is not None:
            self.request.progress(fraction, message)

    def inspect(self, name: str, array: np.ndarray) -> None:
        if self.request.inspect is not None:
            self.request.inspect(name, array)

    def emit(self, segment: int, audio: np.ndarray, sample_rate: int) -> None:
        """Hand one streamed piece to the caller as soon as it is made."""
        self.streamed.setdefault(segment, []).append(audio)
        if self.request.on_audio is not None:
            self.request.on_audio(AudioChunk(audio, sample_rate, segment))


def silence(sample_rate: int, seconds: float) -> np.ndarray:
    return np.zeros(int(sample_rate * seconds), dtype=np.float32)


def segment_message(batch: list[int], total: int) -> str:
    if len(batch) == 1:
        return f"generating segment {batch[0] + 1} of {total}"
    return f"generating segments {', '.join(str(i + 1) for i in batch)} of {total}"


def segment_result(sequence: PhoneSequence, tokens: torch.Tensor, fragment: torch.Tensor) -> SegmentResult:
    return SegmentResult(
        norm_text=sequence.norm_text,
        phone_ids=np.asarray(sequence.phone_ids, dtype=np.int64),
        semantic_tokens=to_numpy(tokens),
        audio=to_numpy(fragment),
    )


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy() if tensor.is_floating_point() else tensor.detach().cpu().numpy()
