"""The synthesis engine: prepared text and a speaker's conditioning in, audio out.

:class:`VoicePipeline` owns the models and serves requests (:class:`SynthesisRequest`, options
in :class:`SynthesisOptions`, results as :class:`SynthesisResult`); inside it a wave of requests
goes through the GPT stage, then the decoder stage (:mod:`.decoder_stage`), with streaming,
chunking, bucketing, device-side speaker tensors and the fast CPU mode beside them.
"""

from .pipeline import VoicePipeline
from .requests import AudioChunk, SegmentResult, SynthesisOptions, SynthesisRequest, SynthesisResult

__all__ = ["AudioChunk", "SegmentResult", "SynthesisOptions", "SynthesisRequest", "SynthesisResult", "VoicePipeline"]
