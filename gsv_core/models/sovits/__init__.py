"""The SoVITS decoder (s2): semantic codes + phones + speaker conditioning -> waveform.

    model = load_sovits("s2Gv2ProPlus.pth", device="cpu")
    ge = model.global_embedding(ref_spec, sv_embedding)          # once per speaker
    audio = model.decode(codes, phones, ge, generator=torch.Generator().manual_seed(0))

Several references: ``model.fused_global_embedding(specs, svs)``, or store the rows of
``model.reference_embeddings(specs, svs)`` and join them with ``fuse_global_embeddings``.
Several requests at once: ``model.decode_batch([DecodeItem(codes, phones, ge, ...), ...])``
(items of any lengths; each comes out as it does alone). Streaming: ``model.decode_streaming``
per chunk (see ``gsv_core.engine.streaming_audio`` for the audio side).
"""

from .config import SynthesizerConfig, SynthesizerConfigError
from .loader import load_sovits
from .model import DecodeItem, SoVITS, StreamingChunk, fuse_global_embeddings

__all__ = [
    "DecodeItem", "SoVITS", "StreamingChunk", "SynthesizerConfig", "SynthesizerConfigError", "fuse_global_embeddings", "load_sovits",
]
