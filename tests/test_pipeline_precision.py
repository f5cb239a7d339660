"""The whole pipeline in float16 and bfloat16 on the CPU: it runs, and what it computes stays close to float32.

The decoder's own closeness (SNR of the waveform for the same tokens and noise) is measured at
model level in ``test_half_precision.py``; here the pipeline is checked end to end: speakers
prepared in a half precision are close to float32 ones, and speakers move between precisions.
Thresholds are measured values with margin: global embedding cosine 0.999992 (bf16) and
0.99999994 (fp16); prompt codes agree on 91% (bf16, 8-bit mantissa: near-ties of the codebook
search flip) and 99.3% (fp16) of frames; BERT features cosine above 0.999994.
"""

import numpy as np
import pytest
import torch

from gsv_core.engine.pipeline import VoicePipeline
from gsv_core.engine.requests import SynthesisOptions

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
MIN_CODE_AGREEMENT = {"fp32": 1.0, "bf16": 0.85, "fp16": 0.97}
TRANSCRIPT = "我们一起去海边看日出吧。"


@pytest.fixture(scope="module")
def pipelines(reference_dir):
    models = reference_dir / "models"
    return {name: VoicePipeline.from_paths(models / "s1-tiny.ckpt", models / "s2G-tiny-v2ProPlus.pth",
                                           models / "chinese-hubert-tiny", models / "chinese-roberta-tiny",
                                           dtype=dtype, official_data=reference_dir / "data")
            for name, dtype in DTYPES.items()}


@pytest.fixture(scope="module")
def speakers(pipelines, reference_dir):
    case = reference_dir / "cases" / "v2ProPlus_zh"
    sv = np.load(case / "intermediates.npz")["sv_embedding"]
    return {name: p.prepare_speaker(case / "ref.wav", TRANSCRIPT, "zh", sv_embedding=sv) for name, p in pipelines.items()}


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_speakers_prepared_in_half_precision_are_close_to_float32(name, speakers):
    ours, reference = speakers[name], speakers["fp32"]
    assert ours.global_embedding.dtype == np.float32  # stored conditioning is float32 whatever the model dtype
    assert _cosine(ours.global_embedding, reference.global_embedding) > 0.9999
    assert _cosine(ours.prompt_bert, reference.prompt_bert) > 0.9999
    assert np.mean(ours.prompt_semantic == reference.prompt_semantic) >= MIN_CODE_AGREEMENT[name]
    np.testing.assert_array_equal(ours.prompt_phones, reference.prompt_phones)


@pytest.mark.parametrize("pipeline_dtype, speaker_dtype", [("bf16", "fp32"), ("fp16", "fp32"), ("fp32", "bf16"), ("fp16", "bf16")])
def test_a_speaker_prepared_in_one_precision_speaks_in_another(pipelines, speakers, pipeline_dtype, speaker_dtype):
    result = pipelines[pipeline_dtype].synthesize("你好，欢迎使用语音合成系统。", "zh", speakers[speaker_dtype],
                                                  SynthesisOptions(top_k=1, seed=1))
    assert result.audio.dtype == np.float32 and np.isfinite(result.audio).all()
    assert result.duration_s > 0.5 and np.abs(result.audio).max() > 0
