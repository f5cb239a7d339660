"""The SoVITS decoder (s2): semantic codes + phones + speaker embedding -> waveform."""

from .model import SoVITS, SynthesizerConfig, load_sovits

__all__ = ["SoVITS", "SynthesizerConfig", "load_sovits"]
