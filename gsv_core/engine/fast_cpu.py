"""Fast CPU mode: int8 weights for the Linear layers of the GPT stage and of BERT.

A GPT decoding step at batch 1 reads every weight of the 24 transformer layers once to
make one token, so on a CPU its time is bounded by memory traffic (about 310 MB of
float32 per token). PyTorch dynamic quantization stores those Linear weights as int8 (one
scale per output channel) and quantizes each activation row on the fly, which reads a
quarter of the bytes; BERT's Linear layers get the same treatment. Everything else keeps
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

The wrapper changes modules in place right after loading, before the pipeline is shared;
it copies no model code. See ``benchmarks/bench_cpu.py`` for speed and agreement figures.
``torch.ao.quantization`` is marked deprecated in favour of torchao but works in the pinned
torch (the tests run it); torchao's int8 dynamic quantization is the way on once it goes.
"""

from __future__ import annotations

import torch
from torch import nn

from ..memory import release_free_memory
from ..models.sovits.generator import Generator
from ..models.t2s import Text2Semantic
from .pipeline import VoicePipeline

QUANTIZED_DTYPE = torch.qint8
# The bfloat16 generator runs in windows of 256 latent frames (5.12 s of audio) with 16 frames of
# context each side (the receptive field is about 9): oneDNN builds bfloat16 kernels per input
# shape (about 3 s for the v2ProPlus generator here), and windows come in two shapes only, so
# every length reuses them, for 12.5 % more generator work.
GENERATOR_WINDOW = (256, 16)


def quantize_linears(module: nn.Module) -> nn.Module:
    """Swap every ``nn.Linear`` inside ``module`` (not ``module`` itself) for a dynamic int8 one, in place."""
    if any(parameter.device.type != "cpu" for parameter in module.parameters()):
        raise ValueError("int8 weights run on the CPU only; load the models with device='cpu'")
    if any(parameter.dtype != torch.float32 for parameter in module.parameters()):
        raise ValueError("int8 weights are made from float32 models; load the models with dtype=torch.float32")
    torch.ao.quantization.quantize_dynamic(module, {nn.Linear}, dtype=QUANTIZED_DTYPE, inplace=True)
    return module


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (oneDNN's test: AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN's probe: assume not
        return False


def quantize_for_cpu(pipeline: VoicePipeline, generator_bfloat16: bool | None = None) -> VoicePipeline:
    """The fast CPU mode, in place: int8 Linear weights in the GPT stage's layers and in BERT,
    and the SoVITS generator in bfloat16 when ``generator_bfloat16`` (None: when the CPU computes
    bfloat16 natively, see :func:`native_bfloat16`).

    Call it once on a freshly loaded float32 CPU pipeline, before any synthesis; the
    same pipeline is returned. Its outputs then differ slightly from float32 (see the
    module docstring for what is left in float32 and why).
    """
    if pipeline.device.type != "cpu":
        raise ValueError(f"int8 weights run on the CPU only, not on {pipeline.device}")
    quantize_linears(pipeline.t2s.layers)
    quantize_linears(pipeline.bert.model.encoder)
    # a speaker's cached prompt BERT features now come from int8 BERT: keep them apart from float32's
    pipeline.weights_key = f"{pipeline.weights_key}-int8" if pipeline.weights_key else pipeline.weights_key
    if native_bfloat16() if generator_bfloat16 is None else generator_bfloat16:
        pipeline.sovits.generator.to(torch.bfloat16)  # the generator casts its input; SoVITS returns float32
        pipeline.sovits.generator.window = GENERATOR_WINDOW
        build_generator_kernels(pipeline.sovits.generator)
    release_free_memory()  # the float32 weights the int8 ones replace (~1 GB)
    return pipeline


@torch.inference_mode()
def build_generator_kernels(generator: Generator) -> None:
    """Run a windowed generator once over two windows of silence, so oneDNN builds the kernels of
    both window shapes now (seconds in bfloat16) rather than in a visitor's first request."""
    size, _ = generator.window
    weight = generator.conv_pre.weight
    generator(weight.new_zeros(1, generator.conv_pre.in_channels, 2 * size), weight.new_zeros(1, generator.cond.in_channels, 1))


@torch.inference_mode()
def teacher_forced_logits(model: Text2Semantic, phones: torch.Tensor, bert: torch.Tensor,
                          tokens: torch.Tensor, prompt_length: int) -> torch.Tensor:
    """The GPT stage's logits for every generated position of a given sequence, in one pass.

    phones (P,), bert (1024, P), tokens (T,) = prompt tokens then generated ones; returns
    (T - prompt_length + 1, vocab): row i is the distribution the model gives for generated
    token i when tokens before it are fed, which is how decoding sees them. Used to compare
    int8 with float32 on identical inputs (the model's own embedding and layer calls,
    mirroring one row of ``Text2Semantic._prefill`` without padding).
    """
    text = model._embed_text(phones, bert)
    semantic = model._embed_semantic(tokens.view(1, -1), 0)[0]
    xy = torch.cat([text, semantic]).unsqueeze(0)
    total, text_length = xy.shape[1], len(phones)
    index = torch.arange(total)
    is_token = index >= text_length
    visible = (~is_token).view(1, -1) | (is_token.view(1, -1) & is_token.view(-1, 1) & (index.view(1, -1) <= index.view(-1, 1)))
    mask = torch.zeros(visible.shape).masked_fill_(~visible, float("-inf")).view(1, 1, total, total)
    hidden = model._run(xy, model.new_cache(1, total), mask)[0, text_length + prompt_length - 1 :]
    return model.semantic_head(hidden)
