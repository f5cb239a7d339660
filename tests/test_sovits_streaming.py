"""Streaming decode against the official streaming cases: each chunk's latent and audio, then the yields.

``v2_streaming`` splits tokens at mute-like tokens (chunks overlap by a token, the last one is
final); ``v2_streaming_fixed`` uses fixed 16-token chunks and ends with an empty chunk, so the
held-back tail is yielded on its own.
"""

import json

import numpy as np
import pytest
import torch

from gsv_core.audio import to_int16
from gsv_core.models.sovits import load_sovits
from gsv_core.models.sovits.model import blend_overlap, overlap_window
from gsv_core.engine.streaming_audio import (
    chunk_overlap, join_chunk, overlap_size, samples_per_token, sola_crossfade, stream_tail, trim_decoded,
)

CASES = ("v2_streaming", "v2_streaming_fixed")
ATOL = 1e-4  # README tolerances for the latent and the chunk audio (measured diffs are ~1e-7)
FRAMES_PER_TOKEN = 2


@pytest.fixture(scope="module")
def model(reference_models_dir):
    return load_sovits(reference_models_dir / "s2G-tiny-v2.pth")


@pytest.fixture(scope="module", params=CASES)
def case(request, reference_dir):
    folder = reference_dir / "cases" / request.param
    info = json.loads((folder / "inputs.json").read_text())
    return np.load(folder / "intermediates.npz"), info["recorded"], info["inputs"]["overlap_length"]


def _tensor(data, key: str) -> torch.Tensor:
    return torch.from_numpy(data[key])


def _close(actual: torch.Tensor, expected: np.ndarray, atol: float = ATOL) -> None:
    assert tuple(actual.shape) == expected.shape
    np.testing.assert_allclose(actual.numpy(), expected, rtol=0, atol=atol)


def _decoded_chunks(recorded: dict) -> list[dict]:
    """The chunks that reached decode_streaming (an empty final chunk does not)."""
    chunks = {c["k"]: c for c in recorded["stream_chunks"]}
    return [dict(chunks[args["k"]], **args) for args in recorded["stream_decode_args"]]


def test_decode_arguments_follow_from_the_chunk_sizes(case):
    _, recorded, overlap_tokens = case
    for chunk in _decoded_chunks(recorded):
        first = chunk["k"] == 0
        overlap = chunk_overlap(chunk["n_tokens"], overlap_tokens, first)
        assert chunk["result_length"] == (None if first else chunk["n_tokens"] + overlap)
        assert chunk["overlap_frames_len"] == (None if first else FRAMES_PER_TOKEN * overlap)


@pytest.mark.parametrize("chained", [False, True], ids=["recorded_overlap", "own_latent"])
def test_every_chunk_latent_and_audio(case, model, chained):
    """Feed each chunk's codes, phones, result length, noise and overlap frames (the recorded ones,
    or the tail of our own previous latent) and compare the returned latent and waveform."""
    data, recorded, _ = case
    with torch.inference_mode():
        ge = model.global_embedding(_tensor(data, "refer_spec"))
        previous = None
        for chunk in _decoded_chunks(recorded):
            k = chunk["k"]
            overlap = None
            if chunk["overlap_frames_len"] is not None:
                recorded_overlap = _tensor(data, f"decode_overlap_frames_{k}")
                overlap = previous[..., -chunk["overlap_frames_len"] :] if chained else recorded_overlap
                _close(overlap, data[f"decode_overlap_frames_{k}"])
            result = model.decode_streaming(
                _tensor(data, f"decode_codes_{k}"), _tensor(data, f"decode_text_{k}"), ge,
                result_tokens=chunk["result_length"], overlap_frames=overlap, noise=_tensor(data, f"decode_noise_{k}"),
            )
            _close(result.latent, data[f"decode_latent_{k}"])
            _close(result.audio, data[f"decode_out_{k}"])
            previous = result.latent


def test_every_yield_from_the_recorded_chunk_audio(case):
    """Trims, SOLA joins, the uncrossfaded final chunk and the empty-chunk tail give every
    official yield to within one LSB (the 0.3 s of silence after the segment included)."""
    data, recorded, overlap_tokens = case
    token_samples = samples_per_token()
    held_back = overlap_size(overlap_tokens, token_samples)
    decoded_by_k = {chunk["k"]: chunk for chunk in _decoded_chunks(recorded)}
    yields, carry = [], None
    for chunk in recorded["stream_chunks"]:
        k = chunk["k"]
        if chunk["n_tokens"] is None:  # the stream ended with an empty chunk
            yields.append(stream_tail(carry, held_back))
            break
        assert k in decoded_by_k
        used = chunk_overlap(chunk["n_tokens"], overlap_tokens, carry is None)
        decoded = trim_decoded(_tensor(data, f"decode_out_{k}")[0, 0], chunk["n_tokens"], overlap_tokens, used, token_samples)
        joined = join_chunk(decoded, carry, chunk["is_final"], held_back)
        yields.append(joined.audio)
        carry = joined.carry
    yields.append(torch.zeros(int(32000 * 0.3)))
    assert len(yields) == recorded["n_yields"]
    for index, audio in enumerate(yields):
        expected = data[f"yield_{index}_int16"]
        ours = to_int16(audio.numpy())
        assert ours.shape == expected.shape, index
        assert np.abs(ours.astype(np.int32) - expected).max() <= 1, index
    assert np.abs(to_int16(torch.cat(yields).numpy()).astype(np.int32) - data["out_audio_int16"]).max() <= 1


def test_short_later_chunks_borrow_overlap_and_are_trimmed():
    assert chunk_overlap(4, 2, is_first=True) == 2
    assert chunk_overlap(4, 2, is_first=False) == 8  # 4 + 8 = 12 = 10 + 2 tokens decoded
    assert chunk_overlap(10, 2, is_first=False) == 2
    decoded = torch.arange(12 * 1280, dtype=torch.float32)
    assert torch.equal(trim_decoded(decoded, 4, 2, 8, 1280.0), decoded[-6 * 1280 :])
    assert trim_decoded(decoded, 10, 2, 2, 1280.0) is decoded
    assert overlap_size(2, samples_per_token(640, 1.25)) == 2048


def test_sola_finds_a_known_shift_and_crossfades():
    """A chunk whose head repeats the previous tail 100 samples late aligns at 100, and the join
    then continues the previous signal without a seam."""
    torch.manual_seed(0)
    signal = torch.randn(8000)
    previous, current = signal[:5000], torch.cat([torch.randn(100), signal[5000 - 2560 :]])
    joined, blended = sola_crossfade(previous, current, 2560)
    assert joined.shape[-1] == 5000 - 2560 + current.shape[-1] - 100
    torch.testing.assert_close(joined, signal, rtol=0, atol=1e-6)
    assert torch.equal(blended[:100], current[:100]) and torch.equal(blended[2660:], current[2660:])
    short_joined, _ = sola_crossfade(previous, current[:2600], 2560)  # only offsets 0..40 fit
    assert 5000 - 2560 + 2600 - 40 <= short_joined.shape[-1] <= 5000 - 2560 + 2600
    with pytest.raises(ValueError, match="too short"):
        sola_crossfade(previous, current[:2000], 2560)


def test_first_and_final_chunks():
    chunk, overlap = torch.linspace(-0.5, 0.5, 6000), 2560
    first = join_chunk(chunk, None, is_final=False, overlap=overlap)
    assert torch.equal(first.audio, chunk[:-overlap]) and first.carry is chunk
    assert join_chunk(chunk, None, is_final=True, overlap=overlap).audio is chunk
    assert join_chunk(chunk, chunk, is_final=True, overlap=overlap).audio is chunk
    assert torch.equal(stream_tail(chunk, overlap), chunk[-overlap:])


def test_overlap_blend_window_and_checks():
    window = overlap_window(2)
    torch.testing.assert_close(window, torch.sin(torch.tensor([0.0, 1.0, 2.0, 3.0]) * torch.pi / 4))
    hidden, tail = torch.ones(1, 3, 5), torch.full((1, 3, 2), 3.0)
    blended = blend_overlap(hidden, tail)
    torch.testing.assert_close(blended[0, 0], torch.stack([window[0] + 3 * window[2], window[1] + 3 * window[3], *torch.ones(3)]))
    with pytest.raises(ValueError, match="overlap_frames"):
        blend_overlap(hidden, torch.zeros(1, 4, 2))


def test_streaming_argument_checks(model):
    codes, phones, ge = torch.zeros(1, 1, 6, dtype=torch.long), torch.zeros(1, 5, dtype=torch.long), torch.zeros(1, 512, 1)
    with pytest.raises(ValueError, match="result_tokens"):
        model.decode_streaming(codes, phones, ge, result_tokens=7, generator=torch.Generator())
    chunk = model.decode_streaming(codes, phones, ge, result_tokens=3, generator=torch.Generator().manual_seed(0))
    assert chunk.audio.shape == (1, 1, 3 * 1280) and chunk.latent.shape == (1, 192, 6)
    assert chunk.audio.dtype == chunk.latent.dtype == torch.float32
