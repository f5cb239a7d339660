"""End to end through the command line: every public case gives the official tokens and audio."""

import json

import numpy as np
import pytest
import soundfile as sf

from gsv_core.__main__ import main

CASES = {
    "v2_zh": "s2G-tiny-v2.pth",
    "v2_zh_en_mixed": "s2G-tiny-v2.pth",
    "v2Pro_zh": "s2G-tiny-v2Pro.pth",
    "v2ProPlus_zh": "s2G-tiny-v2ProPlus.pth",
    "v2_speed": "s2G-tiny-v2.pth",  # speed 1.25, three segments (cut1), two of them in one GPT batch
}


def _argv(case_dir, models, sovits, inputs, tmp_path, reference_dir):
    argv = [
        "synth", "--t2s", str(models / "s1-tiny.ckpt"), "--sovits", str(models / sovits),
        "--hubert", str(models / "chinese-hubert-tiny"), "--bert", str(models / "chinese-roberta-tiny"),
        "--ref-audio", str(case_dir / inputs.get("ref_audio_path", "ref.wav")), "--ref-text", inputs["prompt_text"],
        "--ref-lang", inputs["prompt_lang"], "--text", inputs["text"], "--text-lang", inputs["text_lang"],
        "--top-k", str(inputs["top_k"]), "--top-p", str(inputs["top_p"]), "--temperature", str(inputs["temperature"]),
        "--repetition-penalty", str(inputs["repetition_penalty"]), "--split", inputs["text_split_method"],
        "--seed", str(inputs["seed"]), "--speed", str(inputs.get("speed_factor", 1.0)),
        "--batch-size", str(inputs.get("batch_size", 1)), "--fragment-interval", str(inputs.get("fragment_interval", 0.3)),
        "--noise", str(tmp_path / "noise.npz"), "--official-data", str(reference_dir / "data"),
        "--out", str(tmp_path / "out.wav"), "--dump", str(tmp_path / "dump.npz"),
    ]
    if not inputs.get("split_bucket", True):
        argv.append("--no-split-bucket")
    return argv


@pytest.mark.parametrize("case", list(CASES))
def test_cli_reproduces_the_official_case(case, reference_dir, tmp_path):
    case_dir, models = reference_dir / "cases" / case, reference_dir / "models"
    golden = np.load(case_dir / "intermediates.npz")
    inputs = json.loads((case_dir / "inputs.json").read_text())["inputs"]
    calls = sorted(int(name.rsplit("_", 1)[1]) for name in golden.files if name.startswith("decode_out_"))
    per_call = bool(calls)
    if not per_call:  # a one-segment case records its single calls without a suffix
        calls = [0]
    noise = {f"decode_noise_{k}": golden[f"decode_noise_{k}" if per_call else "decode_noise"] for k in calls}
    np.savez(tmp_path / "noise.npz", **noise)
    argv = _argv(case_dir, models, CASES[case], inputs, tmp_path, reference_dir)
    if "sv_embedding" in golden:
        np.save(tmp_path / "sv.npy", golden["sv_embedding"])
        argv += ["--sv-embedding", str(tmp_path / "sv.npy")]
    assert main(argv) == 0
    dump = np.load(tmp_path / "dump.npz")
    for name in ("prompt_semantic", "prompt_phones", "target_phones_0"):
        np.testing.assert_array_equal(dump[name], golden[name], err_msg=name)
    for name in ("prompt_bert", "refer_spec"):
        np.testing.assert_allclose(dump[name], golden[name], rtol=0, atol=1e-4, err_msg=name)
    np.testing.assert_allclose(dump["flow_g"], golden["flow_g_0" if per_call else "flow_g"], rtol=0, atol=1e-4)
    segments = sorted(int(name.rsplit("_", 1)[1]) for name in golden.files if name.startswith("t2s_y_full_")) or [0]
    for k in segments:  # every segment's tokens, in the official t2s_y_full layout (prompt + generated)
        name = f"t2s_y_full_{k}" if per_call else "t2s_y_full"
        np.testing.assert_array_equal(dump[f"t2s_y_full_{k}"], golden[name], err_msg=name)
    for k in calls:  # every decoder call, with its noise injected
        name = f"decode_out_{k}" if per_call else "decode_out"
        np.testing.assert_allclose(dump[f"decode_out_{k}"], golden[name], rtol=0, atol=1e-5, err_msg=name)
    ours, rate = sf.read(tmp_path / "out.wav", dtype="int16")
    official, official_rate = sf.read(case_dir / "out.wav", dtype="int16")
    assert rate == official_rate and ours.shape == official.shape
    assert np.abs(ours.astype(np.int32) - official).max() <= 1  # float noise may flip one LSB
