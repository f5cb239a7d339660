"""What goes into the pipeline and what comes out: options, requests, results.

Plain frozen dataclasses, shared by the pipeline, the service and the command line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..conditioning import SpeakerConditioning
from ..models.sampling import SamplingOptions
from ..text.errors import TextError
from ..text.frontend import DEFAULT_SPLIT_METHOD, PhoneSequence

ProgressFn = Callable[[float, str], None]
InspectFn = Callable[[str, np.ndarray], None]
StopFn = Callable[[], bool]  # True once the request's caller no longer wants it (it must then stay True)
STREAM_MODES = (None, "fragments", "chunks")


@dataclass(frozen=True)
class AudioChunk:
    """A piece of a streamed synthesis, to be played right after the previous one."""

    audio: np.ndarray  # (samples,) float32 in [-1, 1]
    sample_rate: int
    segment: int  # the text segment it belongs to


AudioFn = Callable[[AudioChunk], None]


class SynthesisCancelled(Exception):
    """The outcome of a request whose ``should_stop`` said so: it stopped before its end, nothing is returned."""

    def __init__(self) -> None:
        super().__init__("the synthesis was cancelled")


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
    # streaming: None (the whole clip at once), "fragments" (each segment as soon as it is
    # decoded) or "chunks" (the official streaming_mode: pieces of a segment while its tokens
    # are still being generated; see gsv_core/streaming.py)
    stream: str | None = None
    overlap_length: int = 2  # tokens of a chunk decoded again with the next one
    min_chunk_length: int = 16  # tokens
    fixed_length_chunk: bool = False  # cut every min_chunk_length tokens instead of at quiet places

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
        if self.stream not in STREAM_MODES:
            raise ValueError(f"stream must be one of {', '.join(map(str, STREAM_MODES))}, got {self.stream!r}")
        if not 0 <= self.overlap_length <= 8 or not 1 <= self.min_chunk_length <= 256:
            raise ValueError("overlap_length must be in [0, 8] and min_chunk_length in [1, 256] tokens")

    def sampling(self) -> SamplingOptions:
        return SamplingOptions(
            top_k=self.top_k,
            top_p=self.top_p,
            temperature=self.temperature,
            repetition_penalty=self.repetition_penalty,
        )


@dataclass(frozen=True)
class PreparedText:
    """A request's text read once (:meth:`VoicePipeline.prepare_text`): its segments' phones.

    A service checks its own limits on it (segment count, phones, expected length) and hands the
    same object to the :class:`SynthesisRequest`, so the frontend runs once per request.
    """

    text: str
    language: str
    split_method: str
    symbols: str  # the phone table it was read with ("v1" or "v2")
    sequences: tuple[PhoneSequence, ...]  # one per segment, in order
    bert_chars: tuple[int, ...]  # per segment, the characters of its longest part that BERT reads (0: none)
    max_bert_chars: int  # the BERT position limit those parts are held to

    @property
    def phone_counts(self) -> list[int]:
        return [len(sequence.phone_ids) for sequence in self.sequences]

    @property
    def segment_chars(self) -> list[int]:
        """Characters of each segment's normalized text (what BERT reads)."""
        return [len(sequence.norm_text) for sequence in self.sequences]

    def check_positions(self) -> None:
        """Raise TextError when a segment has more for BERT to read than its position table holds."""
        longest = max(self.bert_chars)
        if longest > self.max_bert_chars:
            raise TextError(f"a segment has {longest} characters once numbers and symbols are spelled out; the BERT "
                            f"model reads at most {self.max_bert_chars} at once: add punctuation to split it")

    def fits(self, text: str, language: str, split_method: str, symbols: str) -> bool:
        """Whether this was prepared from these inputs (a request must not carry another text's phones)."""
        return (self.text, self.language, self.split_method, self.symbols) == (text, language, split_method, symbols)


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


@dataclass(frozen=True)
class SynthesisRequest:
    """One request of :meth:`VoicePipeline.synthesize_many`.

    ``decode_noise`` replaces the decoder's Gaussian draws, one array per decoder call in
    order (parity tests inject the official draws); ``inspect(name, array)`` receives
    intermediate arrays under the official names (``t2s_y_full_<k>`` per segment,
    ``decode_out_<k>`` per decoder call), for parity dumps. With ``options.stream``,
    ``on_audio`` receives every piece as soon as it is made (from the synthesizing thread).
    ``should_stop()`` is asked before every GPT step, decoder call and streamed chunk (from the
    synthesizing thread, so it must be cheap); once it says True the request stops there, its
    outcome is :class:`SynthesisCancelled`, and the requests served with it go on unchanged.
    ``prepared_text``: ``text`` as :meth:`VoicePipeline.prepare_text` read it for these options
    (a service that checked it hands it on); None: the pipeline reads it.
    """

    text: str
    language: str
    speaker: SpeakerConditioning
    options: SynthesisOptions = SynthesisOptions()
    progress: ProgressFn | None = None
    decode_noise: Sequence[np.ndarray] | None = None
    inspect: InspectFn | None = None
    on_audio: AudioFn | None = None
    prepared_text: PreparedText | None = None
    should_stop: StopFn | None = None
