"""Tiny random SoVITS training setups built in code (no reference files): config, pretrained files, utterances.

The pretrained files are written in the official layout (full generator with ``enc_q`` and
``weight_g``/``weight_v`` pairs; discriminator ``{"weight": ...}``), so the training code under
test loads them exactly as it loads official ones.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch.nn.utils.parametrizations import weight_norm

from gsv_core.models.sovits import SoVITS, SynthesizerConfig
from gsv_core.models.sovits.loader import ours_to_official
from gsv_core.training.discriminator import MultiPeriodDiscriminator
from gsv_core.training.s2_data import S2Utterance
from gsv_core.versions import get_version

# the layers upstream weight-norms: generator upsampling and ResBlocks, every WaveNet of flow and posterior
WEIGHT_NORMED = re.compile(
    r"generator\.(ups\.\d+|resblocks\.\d+\.convs[12]\.\d+)$|"
    r"(flow\.couplings\.\d+|posterior)\.enc\.(cond_layer|in_layers\.\d+|res_skip_layers\.\d+)$"
)
TINY_SCALE_WIDTHS = (4, 16, 256, 256, 256, 256)  # groups 4 / 16 / 64 / 256 must divide them
TINY_PERIOD_WIDTHS = (2, 4, 8, 8, 8)


def tiny_config(version: str = "v2", p_dropout: float = 0.1) -> dict:
    """An official-layout s2 config (train / data / model) for a very small model."""
    gin = 8
    return {
        "train": {
            "seed": 1234, "epochs": 2, "learning_rate": 1e-4, "betas": [0.8, 0.99], "eps": 1e-9, "batch_size": 2,
            "fp16_run": False, "lr_decay": 0.999875, "segment_size": 6400, "c_mel": 45, "c_kl": 1.0, "text_low_lr_rate": 0.4,
        },
        "data": {
            "max_wav_value": 32768.0, "sampling_rate": 32000, "filter_length": 2048, "hop_length": 640, "win_length": 2048,
            "n_mel_channels": 128, "mel_fmin": 0.0, "mel_fmax": None,
        },
        "model": {
            "inter_channels": 8, "hidden_channels": 8, "filter_channels": 16, "n_heads": 2, "n_layers": 2, "kernel_size": 3,
            "p_dropout": p_dropout, "resblock": "1", "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3]],
            "upsample_rates": [10, 8, 8], "upsample_initial_channel": 16, "upsample_kernel_sizes": [20, 16, 16],
            "gin_channels": gin, "semantic_frame_rate": "25hz", "freeze_quantizer": True, "version": version,
        },
        "version": version,
    }


def write_tiny_pretrained(folder: Path, config: dict, seed: int = 0) -> tuple[Path, Path]:
    """Random full generator + discriminator files in the official formats; returns their paths."""
    version = get_version(config["model"]["version"])
    torch.manual_seed(seed)
    model_config = SynthesizerConfig.from_checkpoint_config(config, version.uses_sv, mrte_channels=config["model"]["gin_channels"])
    model = SoVITS(model_config, version, keep_posterior=True)
    for name, module in list(model.named_modules()):
        if WEIGHT_NORMED.match(name):
            weight_norm(module, "weight", dim=0)
    with torch.no_grad():
        model.codec.quantizer.codebooks[0].normal_()
    weights = {ours_to_official(key): tensor.half() for key, tensor in model.state_dict().items()}
    codebook = "quantizer.vq.layers.0._codebook."
    weights.update({
        codebook + "inited": torch.ones(1).half(), codebook + "cluster_size": torch.ones(1024).half(),
        codebook + "embed_avg": weights[codebook + "embed"].clone(),
    })
    folder.mkdir(parents=True, exist_ok=True)
    generator_path, discriminator_path = folder / "s2G-full.pth", folder / "s2D.pth"
    torch.save({"weight": weights, "config": config, "info": "tiny random"}, generator_path)
    discriminator = MultiPeriodDiscriminator(version.discriminator_periods, TINY_SCALE_WIDTHS, TINY_PERIOD_WIDTHS)
    torch.save({"weight": {k: v.half() for k, v in discriminator.official_state_dict().items()}}, discriminator_path)
    return generator_path, discriminator_path


def tiny_utterances(uses_sv: bool, count: int = 3, seed: int = 0) -> list[S2Utterance]:
    """Short random utterances (about 1 s) with HuBERT-shaped features and phone ids."""
    generator = torch.Generator().manual_seed(seed)
    utterances = []
    for index in range(count):
        samples = 32000 + 640 * index + 17 * index
        frames = samples // 640 - (index % 2)  # sometimes one frame short, as real HuBERT output can be
        wav = 0.3 * torch.sin(torch.arange(samples) * (0.02 + 0.01 * index)) + 0.05 * torch.randn(samples, generator=generator)
        utterances.append(S2Utterance(
            name=f"utt{index}",
            phone_ids=torch.randint(1, 700, (12 + index,), generator=generator),
            ssl=torch.randn(1, 768, frames, generator=generator),
            wav=wav.clamp(-1, 1),
            sv_emb=torch.randn(20480, generator=generator) if uses_sv else None,
        ))
    return utterances
