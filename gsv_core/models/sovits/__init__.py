"""The SoVITS decoder (s2): semantic codes + phones + speaker conditioning -> waveform.

    model = load_sovits("s2Gv2ProPlus.pth", device="cpu")
    ge = model.global_embedding(ref_spec, sv_embedding)          # once per speaker
    audio = model.decode(codes, phones, ge, generator=torch.Generator().manual_seed(0))
"""

from .config import SynthesizerConfig, SynthesizerConfigError
from .loader import load_sovits
from .model import SoVITS

__all__ = ["SoVITS", "SynthesizerConfig", "SynthesizerConfigError", "load_sovits"]
