"""Fast CPU mode: int8 weights for the Linear layers of the GPT stage and of BERT.

A GPT decoding step at batch 1 reads every weight of the 24 transformer layers once to
make one token, so on a CPU its time is bounded by memory traffic (about 310 MB of
float32 per token). :class:`Int8Linear` stores those Linear weights as int8 (one symmetric
scale per tensor) and quantizes each activation row on the fly, which reads a quarter of the
bytes; BERT's Linear layers get the same treatment. Everything else keeps
its float32 weights:

* the GPT stage's embeddings, ``bert_proj`` and ``semantic_head`` (the logits: small, and
  where rounding would move the sampled token most directly);
* the SoVITS decoder's text encoder and flow, HuBERT and the speaker-verification model
  (HuBERT and ERes2NetV2 run once per reference voice, not per synthesis).

The decoder's time is almost all in the convolutions of its generator, which dynamic
quantization does not cover (it quantizes Linear layers only). On a CPU that computes
bfloat16 natively (AMX or AVX-512 BF16: oneDNN then runs bfloat16 convolutions about twice as
fast as float32 ones) the generator's weights are stored in bfloat16 instead; elsewhere
bfloat16 would be emulated and slower, so the generator stays float32 there. Its output is
within about 34-42 dB SNR of float32's for the same tokens and noise (``benchmarks/bench_cpu.py``).
oneDNN builds its bfloat16 kernels per input shape, seconds each time, so the generator then
runs in windows of two fixed shapes (``GENERATOR_WINDOW``; the output is the same as one pass)
and every length reuses them.

:meth:`VoicePipeline.from_paths` applies the mode (``fast_cpu=FastCpuMode()``) to the models it
has just loaded, before it builds the pipeline around them, so a pipeline never changes after
construction; its weights key gets ``-int8`` (int8 BERT makes other prompt features than float32,
so a speaker's cached embeddings are kept apart). It copies no model code. See
``benchmarks/bench_cpu.py`` for speed and agreement figures.
Why not a quantization framework: ``torch.ao.quantization.quantize_dynamic`` (used before) is
deprecated and warns on every call; its migration target, torchao's ``quantize_``, runs its int8
layers in eager mode several times slower than float32 on this CPU (they pay off only under
``torch.compile``, which a decoding loop whose cache grows every step would recompile), see
``benchmarks/bench_quantization.py``. :class:`Int8Linear` calls ATen's own dynamic int8 kernels
(``quantized::linear_prepack`` / ``linear_dynamic``, FBGEMM), the ones ``quantize_dynamic``'s layers
call: bit-identical outputs at the same speed, with nothing deprecated in the way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..features.bert import BertFeatures
from ..memory import release_free_memory
from ..models.sovits.generator import Generator
from ..models.sovits.model import SoVITS
from ..models.t2s import Text2Semantic

# FBGEMM's dynamic int8 kernels quantize activations to 7 bits (reduce_range), which keeps their
# int16 accumulation from saturating on CPUs without VNNI
REDUCE_RANGE = True
# The bfloat16 generator runs in windows of 256 latent frames (5.12 s of audio) with 16 frames of
# context each side (the receptive field is about 9): oneDNN builds bfloat16 kernels per input
# shape (about 3 s for the v2ProPlus generator here), and windows come in two shapes only, so
# every length reuses them, for 12.5 % more generator work.
GENERATOR_WINDOW = (256, 16)


class Int8Linear(nn.Module):
    """``nn.Linear`` with int8 weights, activations quantized per call (x (..., in) -> (..., out) float32).

    The weight gets one symmetric scale, max |w| / 127.5 (PyTorch's default dynamic weight
    observer), so outputs equal those of ``torch.ao.quantization.quantize_dynamic``'s Linear.
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        bound = float(torch.maximum(-weight.min(), weight.max()).clamp(min=0))
        scale = max(bound / 127.5, torch.finfo(torch.float32).eps)
        quantized = torch.quantize_per_tensor(weight, scale, 0, torch.qint8)
        bias = None if linear.bias is None else linear.bias.detach().float()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self._packed = torch.ops.quantized.linear_prepack(quantized, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic(x, self._packed, REDUCE_RANGE)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def quantize_linears(module: nn.Module) -> nn.Module:
    """Swap every ``nn.Linear`` inside ``module`` (not ``module`` itself) for an :class:`Int8Linear`, in place."""
    if any(parameter.device.type != "cpu" for parameter in module.parameters()):
        raise ValueError("int8 weights run on the CPU only; load the models with device='cpu'")
    if any(parameter.dtype != torch.float32 for parameter in module.parameters()):
        raise ValueError("int8 weights are made from float32 models; load the models with dtype=torch.float32")
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                setattr(parent, name, Int8Linear(child))
    return module


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (oneDNN's test: AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN's probe: assume not
        return False


@dataclass(frozen=True)
class FastCpuMode:
    """The fast CPU mode's one choice: the SoVITS generator in bfloat16 (None: where the CPU computes
    bfloat16 natively, see :func:`native_bfloat16`)."""

    generator_bfloat16: bool | None = None

    KEY_SUFFIX = "-int8"  # of the weights key: a speaker's cached prompt features come from int8 BERT

    def apply(self, t2s: Text2Semantic, bert: BertFeatures, sovits: SoVITS) -> None:
        """Quantize freshly loaded float32 CPU models in place, before any pipeline holds them: int8
        Linear weights in the GPT stage's layers and in BERT, the generator in bfloat16 when chosen.
        Their outputs then differ slightly from float32 (see the module docstring for what stays
        float32 and why)."""
        quantize_linears(t2s.layers)
        quantize_linears(bert.model.encoder)
        if native_bfloat16() if self.generator_bfloat16 is None else self.generator_bfloat16:
            sovits.generator.to(torch.bfloat16)  # the generator casts its input; SoVITS returns float32
            sovits.generator.window = GENERATOR_WINDOW
            build_generator_kernels(sovits.generator)
        release_free_memory()  # the float32 weights the int8 ones replace (~1 GB)


@torch.inference_mode()
def build_generator_kernels(generator: Generator) -> None:
    """Run a windowed generator once over two windows of silence, so oneDNN builds the kernels of
    both window shapes now (seconds in bfloat16) rather than in a visitor's first request."""
    size, _ = generator.window
    weight = generator.conv_pre.weight
    generator(weight.new_zeros(1, generator.conv_pre.in_channels, 2 * size), weight.new_zeros(1, generator.cond.in_channels, 1))
