"""End to end through the command line: every public case gives the official tokens and audio."""

import json

import numpy as np
import pytest
import soundfile as sf

from gsv_core.__main__ import main

CASES = {"v2_zh": "s2G-tiny-v2.pth", "v2_zh_en_mixed": "s2G-tiny-v2.pth", "v2Pro_zh": "s2G-tiny-v2Pro.pth"}


@pytest.mark.parametrize("case", list(CASES))
def test_cli_reproduces_the_official_case(case, reference_dir, tmp_path):
    case_dir, models = reference_dir / "cases" / case, reference_dir / "models"
    golden = np.load(case_dir / "intermediates.npz")
    inputs = json.loads((case_dir / "inputs.json").read_text())["inputs"]
    np.save(tmp_path / "noise.npy", golden["decode_noise"])
    argv = [
        "synth", "--t2s", str(models / "s1-tiny.ckpt"), "--sovits", str(models / CASES[case]),
        "--hubert", str(models / "chinese-hubert-tiny"), "--bert", str(models / "chinese-roberta-tiny"),
        "--ref-audio", str(case_dir / "ref.wav"), "--ref-text", inputs["prompt_text"], "--ref-lang", inputs["prompt_lang"],
        "--text", inputs["text"], "--text-lang", inputs["text_lang"],
        "--top-k", str(inputs["top_k"]), "--top-p", str(inputs["top_p"]), "--temperature", str(inputs["temperature"]),
        "--repetition-penalty", str(inputs["repetition_penalty"]), "--split", inputs["text_split_method"],
        "--seed", str(inputs["seed"]), "--noise", str(tmp_path / "noise.npy"),
        "--official-data", str(reference_dir / "data"),
        "--out", str(tmp_path / "out.wav"), "--dump", str(tmp_path / "dump.npz"),
    ]
    if "sv_embedding" in golden:
        np.save(tmp_path / "sv.npy", golden["sv_embedding"])
        argv += ["--sv-embedding", str(tmp_path / "sv.npy")]
    assert main(argv) == 0
    dump = np.load(tmp_path / "dump.npz")
    for name in ("prompt_semantic", "prompt_phones", "target_phones_0", "t2s_y_full"):
        np.testing.assert_array_equal(dump[name], golden[name], err_msg=name)
    for name in ("prompt_bert", "refer_spec", "flow_g"):
        np.testing.assert_allclose(dump[name], golden[name], rtol=0, atol=1e-4, err_msg=name)
    np.testing.assert_allclose(dump["decode_out"], golden["decode_out"], rtol=0, atol=1e-5)
    ours, rate = sf.read(tmp_path / "out.wav", dtype="int16")
    official, official_rate = sf.read(case_dir / "out.wav", dtype="int16")
    assert rate == official_rate and ours.shape == official.shape
    assert np.abs(ours.astype(np.int32) - official).max() <= 1  # float noise may flip one LSB
