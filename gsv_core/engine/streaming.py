"""Streaming synthesis, ``chunks`` mode: one text segment voiced piece by piece while the GPT
stage is still generating its tokens (the official ``streaming_mode``).

The GPT stage calls :meth:`SegmentStream.on_step` after every step of the segment's row;
:class:`~gsv_core.engine.token_chunks.TokenChunker` decides when a chunk of tokens is ready; the
chunk is decoded with all tokens so far as context (``decode``, the SoVITS streaming
decode), and the joins of :mod:`gsv_core.engine.streaming_audio` turn the decoded chunks into
pieces that play back to back.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..models.sovits.model import StreamingChunk
from .streaming_audio import chunk_overlap, join_chunk, overlap_size, stream_tail, trim_decoded
from .token_chunks import TokenChunk, TokenChunker

# decode(codes (T,), result_tokens or None, overlap_frames (1, hidden, L) or None) -> StreamingChunk
ChunkDecoder = Callable[[torch.Tensor, "int | None", "torch.Tensor | None"], StreamingChunk]


class SegmentStream:
    """The streaming state of one segment: its chunker, the previous latent and audio, what was emitted."""

    def __init__(self, chunker: TokenChunker, decode: ChunkDecoder, overlap_tokens: int, token_samples: float,
                 emit: Callable[[torch.Tensor], None]) -> None:
        """``token_samples``: output samples per token; ``emit((samples,))`` receives each piece to play."""
        self.chunker = chunker
        self.decode = decode
        self.overlap_tokens = overlap_tokens
        self.token_samples = token_samples
        self.overlap_size = overlap_size(overlap_tokens, token_samples)
        self.emit = emit
        self.chunks: list[TokenChunk] = []  # every chunk handed over so far, in order
        self._tokens: list[torch.Tensor] = []  # their tokens (overlaps included)
        self._latent: torch.Tensor | None = None
        self._carry: torch.Tensor | None = None

    def on_step(self, token: int | None, finished: bool) -> None:
        """After each GPT step: the new token, or ``finished`` once the segment's decoding stopped."""
        for chunk in [self.chunker.finish()] if finished else self.chunker.push(token):
            self._voice(chunk)

    def _voice(self, chunk: TokenChunk) -> None:
        self.chunks.append(chunk)
        if chunk.tokens is None:  # the stream ended right after a chunk: play what was held back
            if self._carry is not None:
                self.emit(stream_tail(self._carry, self.overlap_size))
            return
        length = len(chunk.tokens)
        is_first = self._latent is None
        overlap = chunk_overlap(length, self.overlap_tokens, is_first)
        self._tokens.append(chunk.tokens)
        frames = None if is_first else self._latent[..., -2 * overlap:]
        decoded = self.decode(torch.cat(self._tokens), None if is_first else length + overlap, frames)
        audio = trim_decoded(decoded.audio[0, 0], length, self.overlap_tokens, overlap, self.token_samples)
        joined = join_chunk(audio, self._carry, chunk.is_final, self.overlap_size)
        self._latent, self._carry = decoded.latent, joined.carry
        self.emit(joined.audio)
