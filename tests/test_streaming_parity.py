"""Streaming through the command line: the official pieces, chunk bounds and decoder calls."""

import json

import numpy as np
import pytest

from gsv_core.__main__ import main

CASES = ("v2_streaming", "v2_streaming_fixed", "v2_fragments")


def _run(case_dir, reference_dir, tmp_path, golden, inputs) -> dict:
    models = reference_dir / "models"
    calls = sorted(int(n.rsplit("_", 1)[1]) for n in golden.files if n.startswith("decode_noise_"))
    np.savez(tmp_path / "noise.npz", **{f"decode_noise_{k}": golden[f"decode_noise_{k}"] for k in calls})
    stream = "chunks" if inputs.get("streaming_mode") else "fragments"
    argv = [
        "synth", "--t2s", str(models / "s1-tiny.ckpt"), "--sovits", str(models / "s2G-tiny-v2.pth"),
        "--hubert", str(models / "chinese-hubert-tiny"), "--bert", str(models / "chinese-roberta-tiny"),
        "--ref-audio", str(case_dir / "ref.wav"), "--ref-text", inputs["prompt_text"], "--ref-lang", inputs["prompt_lang"],
        "--text", inputs["text"], "--text-lang", inputs["text_lang"], "--top-k", str(inputs["top_k"]),
        "--top-p", str(inputs["top_p"]), "--temperature", str(inputs["temperature"]),
        "--repetition-penalty", str(inputs["repetition_penalty"]), "--split", inputs["text_split_method"],
        "--seed", str(inputs["seed"]), "--fragment-interval", str(inputs["fragment_interval"]),
        "--stream", stream, "--overlap-length", str(inputs.get("overlap_length", 2)),
        "--min-chunk-length", str(inputs.get("min_chunk_length", 16)),
        "--noise", str(tmp_path / "noise.npz"), "--official-data", str(reference_dir / "data"),
        "--out", str(tmp_path / "out.wav"), "--dump", str(tmp_path / "dump.npz"),
    ]
    if inputs.get("fixed_length_chunk"):
        argv.append("--fixed-length-chunk")
    assert main(argv) == 0
    return dict(np.load(tmp_path / "dump.npz")), calls


@pytest.mark.parametrize("case", CASES)
def test_streamed_pieces_are_the_official_ones(case, reference_dir, tmp_path):
    case_dir = reference_dir / "cases" / case
    golden = np.load(case_dir / "intermediates.npz")
    document = json.loads((case_dir / "inputs.json").read_text())
    inputs, recorded = document["inputs"], document["recorded"]
    dump, calls = _run(case_dir, reference_dir, tmp_path, golden, inputs)
    if inputs.get("streaming_mode"):
        np.testing.assert_array_equal(dump["stream_generated_tokens"], golden["stream_generated_tokens"])
        np.testing.assert_array_equal(dump["stream_chunk_bounds"], golden["stream_chunk_bounds"])
    else:
        for k in range(len(recorded["target_norm_text"])):
            np.testing.assert_array_equal(dump[f"t2s_y_full_{k}"], golden[f"t2s_y_full_{k}"])
    assert sorted(int(n.rsplit("_", 1)[1]) for n in dump if n.startswith("decode_out_")) == calls
    for k in calls:  # every decoder call, its noise injected
        np.testing.assert_allclose(dump[f"decode_out_{k}"].reshape(-1), golden[f"decode_out_{k}"].reshape(-1),
                                   rtol=0, atol=1e-4, err_msg=f"decode_out_{k}")
    yields = sorted(int(n.split("_")[1]) for n in dump if n.startswith("yield_"))
    assert yields == list(range(recorded["n_yields"]))
    for i in yields:  # the same pieces, the same boundaries
        ours, official = dump[f"yield_{i}_int16"], golden[f"yield_{i}_int16"]
        assert ours.shape == official.shape, f"yield {i}: {ours.shape} vs {official.shape}"
        assert np.abs(ours.astype(np.int32) - official).max(initial=0) <= 1, f"yield {i}"
