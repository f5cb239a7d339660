"""Self-supervised speech features (chinese-hubert-base) for the semantic prompt.

The reference's 16 kHz samples go straight into ``HubertModel``: upstream never applies the
feature extractor's normalisation at inference, so neither do we. The s2 model quantizes the
result into the prompt's semantic tokens. HuBERT runs only when a speaker is prepared, so a
pipeline may load it for each preparation (``keep_loaded=False``).
"""

from __future__ import annotations

import functools
import os

import torch
from transformers import HubertModel

from .on_demand import OnDemand

SSL_DIM = 768  # width hard-wired into the s2 model (ssl_proj and the VQ codebook)
SSL_SAMPLE_RATE = 16000


def load_hubert(model_dir: str | os.PathLike, device: str | torch.device, dtype: torch.dtype) -> HubertModel:
    """A ``HubertModel`` from a transformers folder, loaded strictly, in eval mode."""
    model, info = HubertModel.from_pretrained(
        os.fspath(model_dir), dtype=dtype, output_loading_info=True, local_files_only=True
    )
    problems = {key: sorted(value) for key, value in info.items() if value}
    if problems:
        raise ValueError(f"HuBERT weights in {model_dir} do not match the model: {problems}")
    if model.config.hidden_size != SSL_DIM:
        raise ValueError(f"HuBERT in {model_dir} is {model.config.hidden_size} wide; GPT-SoVITS needs {SSL_DIM}")
    return model.to(device).eval()


class HubertFeatures:
    """HuBERT content features of 16 kHz audio (no state besides the frozen model).

    ``keep_loaded=False``: the model is loaded for each call and freed afterwards
    (:class:`~gsv_core.features.on_demand.OnDemand`).
    """

    def __init__(self, model_dir: str | os.PathLike, device: str | torch.device = "cpu", dtype=torch.float32,
                 keep_loaded: bool = True):
        self.device = torch.device(device)
        self.dtype = dtype
        self.models = OnDemand(functools.partial(load_hubert, model_dir, self.device, dtype), keep_loaded)

    @torch.inference_mode()
    def last_hidden_state(self, wav16k: torch.Tensor) -> torch.Tensor:
        """(1, n) or (n,) raw 16 kHz samples -> (1, T, 768), T = one frame per 320 samples."""
        if wav16k.dim() == 1:
            wav16k = wav16k[None]
        if wav16k.dim() != 2 or wav16k.shape[0] != 1:
            raise ValueError(f"expected one waveform of shape (1, n), got {tuple(wav16k.shape)}")
        wav16k = wav16k.to(self.device, self.dtype)
        return self.models.run(lambda model: model(wav16k).last_hidden_state)

    def content(self, wav16k: torch.Tensor) -> torch.Tensor:
        """The s2 model's ``ssl_content`` input: (1, 768, T), channels first."""
        return self.last_hidden_state(wav16k).transpose(1, 2)
