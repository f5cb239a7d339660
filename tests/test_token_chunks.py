"""The GPT stage's streaming chunks: the official split points on the public streaming cases."""

import json

import numpy as np
import pytest
import torch

from gsv_core.models.t2s import load_t2s
from gsv_core.engine.token_chunks import TokenChunker, mute_similarity


@pytest.fixture(scope="module")
def t2s(reference_models_dir):
    return load_t2s(reference_models_dir / "s1-tiny.ckpt")


def test_mute_similarity_matches_the_official_table(t2s, reference_dir):
    golden = np.load(reference_dir / "cases" / "v2_streaming" / "intermediates.npz")
    ours = mute_similarity(t2s.semantic_embedding.weight).numpy()
    np.testing.assert_allclose(ours, golden["stream_mute_emb_sim"], rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", ["v2_streaming", "v2_streaming_fixed"])
def test_chunks_and_bounds_are_the_official_ones(case, t2s, reference_dir):
    case_dir = reference_dir / "cases" / case
    golden = np.load(case_dir / "intermediates.npz")
    inputs = json.loads((case_dir / "inputs.json").read_text())["inputs"]
    similarity = None if inputs["fixed_length_chunk"] else mute_similarity(t2s.semantic_embedding.weight)
    chunker = TokenChunker(inputs["min_chunk_length"], similarity, threshold=0.0)
    chunks = [chunk for token in golden["stream_generated_tokens"] for chunk in chunker.push(int(token))]
    chunks.append(chunker.finish())
    assert [c.is_final for c in chunks] == golden["stream_is_final"].astype(bool).tolist()
    assert [[c.start, c.end] for c in chunks] == golden["stream_chunk_bounds"].tolist()
    for k, chunk in enumerate(chunks):
        if chunk.tokens is None:
            assert chunk.start == chunk.end and f"stream_tokens_{k}" not in golden.files
        else:
            np.testing.assert_array_equal(chunk.tokens.numpy(), golden[f"stream_tokens_{k}"].reshape(-1))


def test_fixed_length_chunks_and_a_final_token_that_is_not_eos():
    chunker = TokenChunker(min_length=3)
    handed = [chunk for token in range(7) for chunk in chunker.push(token)]
    assert [(c.start, c.end) for c in handed] == [(0, 3), (3, 6)]
    final = chunker.finish(last_token=7)
    assert (final.start, final.end, final.tokens.tolist(), final.is_final) == (6, 8, [6, 7], True)
    with pytest.raises(ValueError):
        TokenChunker(min_length=0)


def test_the_similarity_split_waits_for_a_quiet_place_and_hands_over_the_rest_twice():
    similarity = torch.full((10,), -0.5)
    similarity[9] = 0.9  # token 9 sounds like silence
    chunker = TokenChunker(min_length=2, mute_similarity=similarity)
    assert chunker.push(1) == chunker.push(9) == chunker.push(9) == []  # fewer than min_length + 2 waiting
    (chunk,) = chunker.push(2)
    assert (chunk.start, chunk.end, chunk.tokens.tolist()) == (0, 4, [1, 9, 9, 2])  # all that waits
    assert chunker.push(3) == []
    final = chunker.finish()  # the split was after the first quiet pair, so 9, 2 come again
    assert (final.start, final.end, final.tokens.tolist()) == (2, 5, [9, 2, 3])
