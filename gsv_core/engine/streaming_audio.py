"""The audio side of streaming synthesis: which tokens each chunk re-decodes, and how chunks join.

Upstream's streaming mode (``TTS.run`` with ``streaming_mode``) decodes every token chunk
with ``SoVITS.decode_streaming`` and then joins the chunk waveforms. Per token chunk of n
tokens, with ``overlap_tokens`` (the ``overlap_length`` option, 2 by default):

1. :func:`chunk_overlap` tokens of the previous chunk are decoded again with it
   (``result_tokens = n + overlap``; the first chunk decodes everything), and the last
   2 * overlap frames of the previous latent are blended in (``overlap_frames``).
2. :func:`trim_decoded` drops the extra head that a short chunk's larger overlap produced.
3. :func:`join_chunk` yields the first chunk without its last ``overlap_size`` samples, and
   every later non-final chunk after a SOLA crossfade with the previous one
   (:func:`sola_crossfade`), again without its last ``overlap_size`` samples, which the next
   chunk will cover. A final chunk after the first is yielded as decoded, without a crossfade
   (as upstream does).
4. When the token stream ends with an empty chunk, :func:`stream_tail` yields the held-back
   ``overlap_size`` samples of the last chunk.

All waveforms here are 1-D float tensors of samples (one stream); nothing is kept between
calls: the caller passes the previous chunk's ``carry`` back in. The decoder's output is a
tanh, so samples stay within [-1, 1] and upstream's peak normalisation never applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

MIN_DECODED_TOKENS = 10  # a later chunk shorter than this re-decodes more of the previous one
SOLA_SEARCH = 320  # samples: how far into the new chunk the best alignment is searched
CORRELATION_FLOOR = 1e-8  # keeps the normalised correlation finite on silence


def chunk_overlap(chunk_tokens: int, overlap_tokens: int, is_first: bool) -> int:
    """Tokens of the previous chunk decoded again with a chunk of ``chunk_tokens`` tokens.

    ``overlap_tokens`` normally; a later chunk of fewer than 10 tokens borrows more, so
    that at least 10 tokens (plus ``overlap_tokens``) are decoded. For ``decode_streaming``:
    ``result_tokens = chunk_tokens + overlap`` (None for the first chunk) and
    ``overlap_frames = previous_latent[..., -2 * overlap:]`` (None for the first chunk).
    """
    if not is_first and chunk_tokens < MIN_DECODED_TOKENS:
        return overlap_tokens + MIN_DECODED_TOKENS - chunk_tokens
    return overlap_tokens


def samples_per_token(samples_per_frame: int = 640, speed: float = 1.0) -> float:
    """Output samples per 25 Hz token after the speed stretch (1280.0 at 32 kHz, speed 1)."""
    return samples_per_frame * 2 / speed


def overlap_size(overlap_tokens: int, token_samples: float) -> int:
    """Samples held back at the end of each chunk and crossfaded into the next: ceil(overlap * samples per token)."""
    return math.ceil(overlap_tokens * token_samples)


def trim_decoded(decoded: torch.Tensor, chunk_tokens: int, overlap_tokens: int, overlap_used: int, token_samples: float) -> torch.Tensor:
    """(samples,) chunk waveform -> the last (overlap_tokens + chunk_tokens) tokens' worth when
    :func:`chunk_overlap` borrowed more than ``overlap_tokens`` (``overlap_used``); else unchanged."""
    if overlap_used > overlap_tokens:
        return decoded[-int((overlap_tokens + chunk_tokens) * token_samples) :]
    return decoded


def sola_crossfade(
    previous: torch.Tensor, current: torch.Tensor, overlap: int, search: int = SOLA_SEARCH
) -> tuple[torch.Tensor, torch.Tensor]:
    """Join two chunk waveforms (n1,), (n2,) at the best alignment within ``search`` samples.

    The offset ``idx`` in [0, search] (fewer when ``current`` is shorter than overlap + search)
    maximises the normalised correlation of ``previous``'s last ``overlap`` samples with
    ``current[idx : idx + overlap]``; that stretch is replaced by a Hann crossfade from
    ``previous``'s tail. Returns ``(joined, blended)``: joined is
    previous[:-overlap] followed by blended[idx:] (n1 - overlap + n2 - idx samples); blended is
    ``current`` with the crossfade written in, which is what the next join and the final tail
    read (upstream writes the crossfade into the chunk in place).

    The score is computed in float64. Upstream scores in float32, but the alignment scores
    of voiced audio are nearly periodic in the offset, and float32 rounding, which differs
    between CPUs, can pick among near-ties 1e-7 apart (one of the six official joins in the
    streaming cases flipped on a float32 rerun); float64 finds the true maximum, which is
    what the official runs picked in all six.
    """
    if min(current.shape[-1], previous.shape[-1]) < overlap:
        raise ValueError(f"chunks of {previous.shape[-1]} and {current.shape[-1]} samples are too short for an overlap of {overlap}")
    tail = previous[-overlap:].double()
    head = current[: overlap + search].double()
    correlation = F.conv1d(head.view(1, 1, -1), tail.view(1, 1, -1)).view(-1)
    energy = F.conv1d(head.view(1, 1, -1) ** 2, torch.ones_like(tail).view(1, 1, -1)).view(-1) + CORRELATION_FLOOR
    idx = int((correlation / energy.sqrt()).argmax())
    window = torch.hann_window(2 * overlap, device=current.device, dtype=torch.float32)
    blended = current.float().clone()
    fade_out = previous[-overlap:].float()
    blended[idx : idx + overlap] = window[:overlap] * blended[idx : idx + overlap] + window[overlap:] * fade_out
    blended = blended.to(current.dtype)
    return torch.cat([previous[:-overlap], blended[idx:]]), blended


@dataclass(frozen=True)
class JoinedChunk:
    """What :func:`join_chunk` returns."""

    audio: torch.Tensor  # (samples,) to play now
    carry: torch.Tensor  # (samples,) the chunk as the next join sees it: pass it back as ``previous``


def join_chunk(decoded: torch.Tensor, previous: torch.Tensor | None, is_final: bool, overlap: int) -> JoinedChunk:
    """The audio to emit for one decoded (and :func:`trim_decoded`) chunk (samples,).

    ``previous`` is the last call's ``carry`` (None for the first chunk); ``overlap`` is
    :func:`overlap_size`. See the module docstring for the four cases.
    """
    if previous is None:
        return JoinedChunk(audio=decoded if is_final else decoded[:-overlap], carry=decoded)
    if is_final:  # upstream emits the last chunk as decoded, without a crossfade
        return JoinedChunk(audio=decoded, carry=decoded)
    joined, blended = sola_crossfade(previous, decoded, overlap)
    return JoinedChunk(audio=joined[previous.shape[-1] - overlap : -overlap], carry=blended)


def stream_tail(previous: torch.Tensor, overlap: int) -> torch.Tensor:
    """(overlap,) the samples held back from the last chunk, emitted when the token stream ends with an empty chunk."""
    return previous[-overlap:]
