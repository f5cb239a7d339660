"""Random-weight pipelines for the benchmarks: real-size models from the recorded shapes, or tiny ones.

Real size: the GPT (s1_v2.json), the SoVITS decoder (s2_<version>.json) and a BERT-large
(chinese-roberta-wwm-ext-large.json) of ../shared/gsv-reference/shapes, randomly initialised;
the BERT reads its text through the tiny model's tokenizer (one token per Chinese character,
as the real vocabulary gives). Small: the sizes of the tiny goldens' models (GPT width 96,
3 layers; the tiny SoVITS file; the tiny BERT).

Random weights never choose EOS, so :class:`CappedText2Semantic` stops every row after a
fixed number of tokens, as if EOS came next (the EOS row of the head is zeroed, which keeps
EOS out of the top-k before the cap). No HuBERT or SV model is built: speakers get random
prompt tokens, BERT features and SV features (:func:`random_speaker`). The reference folder is
``$GSV_REFERENCE_DIR`` when set (as for the tests), else ../shared/gsv-reference.
"""

from __future__ import annotations

import json
import os
import resource
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from gsv_core.conditioning import SpeakerConditioning
from gsv_core.features.bert import HIDDEN_STATE_FROM_END, BertFeatures
from gsv_core.models.sovits import SoVITS, SynthesizerConfig, load_sovits
from gsv_core.models.t2s import MAX_STEPS, DecodeRow, T2SConfig, Text2Semantic
from gsv_core.engine.pipeline import VoicePipeline
from gsv_core.text.frontend import TextFrontend
from gsv_core.versions import VERSIONS

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = Path(os.environ.get("GSV_REFERENCE_DIR", ROOT.parent / "shared" / "gsv-reference"))
SHAPES = REFERENCE / "shapes"
MODELS = REFERENCE / "models"
RESULTS = ROOT / "benchmarks" / "results"
TOKENS_PER_SECOND = 25  # semantic tokens per second of speech
TINY_T2S = T2SConfig(embedding_dim=96, hidden_dim=96, num_heads=4, num_layers=3)  # tiny_configs.json "s1"
PROMPT_TOKENS, PROMPT_PHONES = 150, 40  # a 6 s reference and its transcript


class CappedText2Semantic(Text2Semantic):
    """The GPT stage, stopping every row after ``tokens`` generated tokens (random weights never stop)."""

    def __init__(self, config: T2SConfig, tokens: int) -> None:
        super().__init__(config)
        self.tokens = tokens

    def generate(self, rows: list[DecodeRow], max_steps: int = MAX_STEPS, **kwargs) -> list[torch.Tensor]:
        """As :meth:`Text2Semantic.generate`; the step after the cap stops the row like an EOS would."""
        return super().generate(rows, min(max_steps, self.tokens + 1), **kwargs)


def build_t2s(tokens: int, small: bool, device: torch.device, dtype: torch.dtype, seed: int = 0) -> CappedText2Semantic:
    """The GPT stage with random weights, capped at ``tokens`` tokens per row."""
    config = TINY_T2S if small else T2SConfig.from_checkpoint_config(json.loads((SHAPES / "s1_v2.json").read_text())["config"])
    torch.manual_seed(seed)
    model = CappedText2Semantic(config, tokens).eval()
    with torch.no_grad():
        model.semantic_head.weight[config.eos] = 0.0  # EOS logit 0: below the top-k of random logits
    return model.to(device=device, dtype=dtype)


def build_sovits(version: str, small: bool, device: torch.device, dtype: torch.dtype, seed: int = 0) -> SoVITS:
    """The SoVITS decoder with random weights: real size from the shapes, or the tiny golden file."""
    if small:
        return load_sovits(MODELS / f"s2G-tiny-{version}.pth", device=device, dtype=dtype)
    info = VERSIONS[version]
    manifest = json.loads((SHAPES / f"s2_{version}.json").read_text())
    torch.manual_seed(seed)
    model = SoVITS(SynthesizerConfig.from_checkpoint_config(manifest["config"], info.uses_sv), info).eval()
    return model.requires_grad_(False).to(device=device, dtype=dtype)


class RandomBertLarge(BertFeatures):
    """BERT-large (random weights) cut at ``hidden_states[-3]`` as the real one is, the tiny model's tokenizer."""

    def __init__(self, device: torch.device, dtype: torch.dtype, seed: int = 0) -> None:
        self.device, self.dtype = torch.device(device), dtype
        self.tokenizer = AutoTokenizer.from_pretrained(MODELS / "chinese-roberta-tiny", local_files_only=True)
        config = json.loads((SHAPES / "chinese-roberta-wwm-ext-large.json").read_text())["config_assumed"]
        config["num_hidden_layers"] += 1 - HIDDEN_STATE_FROM_END  # the layers the real loader keeps
        torch.manual_seed(seed)
        self.model = BertModel(BertConfig(**config), add_pooling_layer=False).eval().to(device=device, dtype=dtype)


def build_pipeline(version: str, tokens: int, device: torch.device, dtype: torch.dtype, small: bool = False) -> VoicePipeline:
    """A pipeline of random-weight models, each segment ``tokens`` tokens long."""
    bert = BertFeatures(MODELS / "chinese-roberta-tiny", device, dtype) if small else RandomBertLarge(device, dtype)
    return VoicePipeline(
        version=VERSIONS[version], t2s=build_t2s(tokens, small, device, dtype), sovits=build_sovits(version, small, device, dtype),
        hubert=None, bert=bert, speaker_encoder=None, frontend=TextFrontend.load(), device=device,
    )


def random_speaker(pipeline: VoicePipeline, seed: int) -> SpeakerConditioning:
    """A speaker with a 6 s random reference: prompt tokens, phones and BERT features, SV features (Pro)."""
    rng = np.random.default_rng(seed)
    ref_spec = rng.random((1, 1025, 300), dtype=np.float32)
    uses_sv = pipeline.version_info.uses_sv
    sv = rng.standard_normal((1, 20480), dtype=np.float32) if uses_sv else None
    with torch.inference_mode():
        ge = pipeline.sovits.global_embedding(
            torch.from_numpy(ref_spec).to(pipeline.device), None if sv is None else torch.from_numpy(sv).to(pipeline.device))
    return SpeakerConditioning(
        version=pipeline.version, ref_spec=ref_spec, global_embedding=ge.float().cpu().numpy(), sv_embedding=sv,
        prompt_semantic=rng.integers(0, 1024, PROMPT_TOKENS), prompt_phones=rng.integers(1, 300, PROMPT_PHONES),
        prompt_bert=rng.standard_normal((1024, PROMPT_PHONES), dtype=np.float32),
    )


def in_fresh_thread(run: Callable[[], object]) -> object:
    """``run()`` in a new thread, as ``VoicePipeline.synthesize_stream`` and the app's workers run synthesis.

    Timing every mode in the same kind of thread keeps comparisons fair: on a busy shared CPU, a fresh
    thread decoded the GPT stage 3-8x faster than the main thread after ``torch.set_num_threads(2)``
    (OpenMP contention; see the commit that added this).
    """
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = run()
        except Exception as error:  # noqa: BLE001 - raised again in the calling thread
            outcome["error"] = error

    worker = threading.Thread(target=target)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]


def clock(device: torch.device) -> float:
    """``time.perf_counter()`` after the device finished its queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def peak_memory_gib(device: torch.device) -> dict[str, float | str]:
    """Peak GPU memory allocated (CUDA) or this process's peak resident memory (elsewhere), in GiB."""
    if device.type == "cuda":
        return {"kind": "torch.cuda.max_memory_allocated", "gib": torch.cuda.max_memory_allocated(device) / 2**30}
    return {"kind": "process peak RSS (ru_maxrss)", "gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def results_path(name: str, folder: Path = RESULTS) -> Path:
    """``<folder>/<name>-<UTC time>.json``, the folder created."""
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"


def write_results(name: str, report: dict, folder: Path = RESULTS) -> Path:
    """Write ``report`` under :func:`results_path` and return the path."""
    path = results_path(name, folder)
    path.write_text(json.dumps(report, indent=1, default=str))
    return path
