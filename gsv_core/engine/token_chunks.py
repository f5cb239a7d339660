"""Streaming: cutting the GPT stage's semantic tokens into chunks the decoder can voice at once.

The official ``streaming_mode`` hands over tokens while decoding, in one of two ways:

* similarity split (default): once at least ``min_length + 2`` tokens wait, find the last
  place where two consecutive tokens sound most like silence (cosine similarity of their
  embedding to the mute token's, above ``threshold``) at least ``min_length`` tokens in,
  and hand over everything waiting; the next chunk starts just after that place, so the
  tokens past it are handed over twice (the decoder crossfades them);
* fixed length: every ``min_length`` tokens, exactly those tokens.

When decoding stops, whatever waits is handed over as the final chunk (None when nothing
waits). :class:`TokenChunker` reproduces those decisions token by token, as pure logic.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MUTE_TOKEN = 486  # the semantic code of silence in every v2-family model
CHECK_TOKENS = 2  # consecutive tokens scored together


@dataclass(frozen=True)
class TokenChunk:
    """Tokens [start, end) of the generated sequence; ``tokens`` None for an empty final chunk."""

    start: int
    end: int
    tokens: torch.Tensor | None  # (end - start,) int64
    is_final: bool


def mute_similarity(semantic_embedding: torch.Tensor, mute_token: int = MUTE_TOKEN) -> torch.Tensor:
    """(V,) cosine similarity of every semantic embedding row (V, D) to the mute token's row."""
    table = semantic_embedding.detach().float()
    return torch.nn.functional.cosine_similarity(table[mute_token].unsqueeze(0), table, dim=-1)


class TokenChunker:
    """Feed every generated token with :meth:`push`; it returns the chunks that became ready."""

    def __init__(self, min_length: int = 16, mute_similarity: torch.Tensor | None = None, threshold: float = 0.0) -> None:
        """``mute_similarity`` (V,) selects the similarity split; None cuts fixed-length chunks."""
        if min_length < 1:
            raise ValueError(f"min_length must be at least 1, got {min_length}")
        self.min_length = min_length
        self.similarity = None if mute_similarity is None else mute_similarity.detach().float().cpu()
        self.threshold = threshold
        self._tokens: list[int] = []
        self._start = 0  # first token not yet past a split point
        self._waiting = 0  # tokens counted towards the next chunk

    def push(self, token: int) -> list[TokenChunk]:
        """One more generated token, decoding goes on (a stopping EOS is never pushed)."""
        self._tokens.append(int(token))
        self._waiting += 1
        if self.similarity is not None:
            return self._similarity_split()
        if self._waiting >= self.min_length:
            return [self._hand_over(len(self._tokens), is_final=False, advance_to=len(self._tokens))]
        return []

    def finish(self, last_token: int | None = None) -> TokenChunk:
        """The final chunk once decoding stopped: every token past the last split point.

        ``last_token`` is the token of the stopping step when it was not EOS (a length cap).
        """
        if last_token is not None:
            self._tokens.append(int(last_token))
        return self._hand_over(len(self._tokens), is_final=True, advance_to=len(self._tokens))

    def _similarity_split(self) -> list[TokenChunk]:
        if self._waiting < self.min_length + CHECK_TOKENS:
            return []
        window = torch.tensor(self._tokens[self._start:], dtype=torch.long)
        score = self.similarity[window] - self.threshold
        score[score < 0] = -1
        score[:-1] = score[:-1] + score[1:]  # a place scores for its token and the next one
        best = int(score.argmax())  # the first of equal maxima
        if score[best] < 0 or best + 1 < self.min_length:
            return []
        chunk = self._hand_over(len(self._tokens), is_final=False, advance_to=self._start + best + 1)
        self._waiting -= best + 1
        return [chunk]

    def _hand_over(self, end: int, is_final: bool, advance_to: int) -> TokenChunk:
        start = self._start
        tokens = torch.tensor(self._tokens[start:end], dtype=torch.long) if end > start else None
        self._start = advance_to
        if self.similarity is None or is_final:
            self._waiting = 0
        return TokenChunk(start, end, tokens, is_final)
