"""The official SoVITS run's draws before its first batch, so a run seeded like it draws its masks.

The official trainer seeds the global generator, then builds ``SynthesizerTrn`` and the
discriminator with random initial values (overwritten at once by the pretrained weights) and
its data loader draws a base seed. Every later random draw of the run (dropout masks, the
posterior noise, the slices) comes from the same generator, so a run of ours reproduces
them only if the generator has been consumed the same way first. :func:`official_start_draws`
lists those draws (op and shape, in construction order) from the model sizes; the tests check
the list against the training references' records. The values drawn are never used.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..models.sovits.config import SSL_DIM, STYLE_BINS
from .discriminator import MultiPeriodDiscriminator
from .s2_model import TrainableSoVITS

Draw = tuple[str, tuple[int, ...]]  # ("uniform_" | "normal_" | "randn", shape)
STYLE_HIDDEN = 128  # the style encoder's width, fixed upstream
RELATIVE_WINDOW = 4  # the attention encoders' relative-position window


def _conv(cin: int, cout: int, kernel: int = 1, groups: int = 1) -> Iterator[Draw]:
    yield "uniform_", (cout, cin // groups, kernel)
    yield "uniform_", (cout,)


def _linear(cin: int, cout: int) -> Iterator[Draw]:
    yield "uniform_", (cout, cin)
    yield "uniform_", (cout,)


def _attention(channels: int, heads: int, window: int | None) -> Iterator[Draw]:
    """Four 1x1 convs, the relative embeddings (randn), then xavier on q, k, v."""
    for _ in range(4):
        yield from _conv(channels, channels)
    if window is not None:
        yield "randn", (1, 2 * window + 1, channels // heads)
        yield "randn", (1, 2 * window + 1, channels // heads)
    for _ in range(3):
        yield "uniform_", (channels, channels, 1)


def _encoder(hidden: int, filters: int, heads: int, layers: int, kernel: int) -> Iterator[Draw]:
    for _ in range(layers):
        yield from _attention(hidden, heads, RELATIVE_WINDOW)
        yield from _conv(hidden, filters, kernel)
        yield from _conv(filters, hidden, kernel)


def _wavenet(hidden: int, kernel: int, layers: int, gin: int) -> Iterator[Draw]:
    yield from _conv(gin, 2 * hidden * layers)
    for i in range(layers):
        yield from _conv(hidden, 2 * hidden, kernel)
        yield from _conv(hidden, 2 * hidden if i < layers - 1 else hidden)


def _generator_draws(generator: TrainableSoVITS) -> Iterator[Draw]:
    """``SynthesizerTrn.__init__`` in order: enc_p, dec, enc_q, flow, ref_enc, ssl_proj, (sv_emb, ge_to512)."""
    model = generator.model
    c = model.config
    yield from _conv(SSL_DIM, c.hidden_channels)
    yield from _encoder(c.hidden_channels, c.filter_channels, c.n_heads, c.n_layers // 2, c.kernel_size)
    yield from _encoder(c.hidden_channels, c.filter_channels, c.n_heads, c.n_layers, c.kernel_size)
    yield "normal_", (c.num_symbols, c.hidden_channels)
    mrte = model.text_encoder.mrte
    width = mrte.c_pre.out_channels
    yield from _attention(width, mrte.cross_attention.num_heads, None)
    yield from _conv(c.hidden_channels, width)
    yield from _conv(c.hidden_channels, width)
    yield from _conv(width, c.hidden_channels)
    yield from _encoder(c.hidden_channels, c.filter_channels, c.n_heads, c.n_layers // 2, c.kernel_size)
    yield from _conv(c.hidden_channels, 2 * c.inter_channels)
    yield from _decoder_draws(generator)
    posterior = model.posterior
    yield from _conv(posterior.pre.in_channels, c.hidden_channels)
    yield from _wavenet(c.hidden_channels, posterior.enc.in_layers[0].kernel_size[0], len(posterior.enc.in_layers), c.gin_channels)
    yield from _conv(c.hidden_channels, 2 * c.inter_channels)
    for coupling in model.flow.couplings:
        yield from _conv(coupling.half, c.hidden_channels)
        yield from _wavenet(c.hidden_channels, coupling.enc.in_layers[0].kernel_size[0], len(coupling.enc.in_layers), c.gin_channels)
        yield from _conv(c.hidden_channels, coupling.half)
    yield from _linear(STYLE_BINS, STYLE_HIDDEN)
    yield from _linear(STYLE_HIDDEN, STYLE_HIDDEN)
    for block in model.style_encoder.temporal:
        yield from _conv(STYLE_HIDDEN, 2 * STYLE_HIDDEN, block.conv.kernel_size[0])
    for _ in range(4):
        yield from _linear(STYLE_HIDDEN, STYLE_HIDDEN)
    yield from _linear(STYLE_HIDDEN, c.gin_channels)
    yield from _conv(SSL_DIM, SSL_DIM, model.codec.ssl_proj.kernel_size[0])
    if model.speaker_projection is not None:
        yield from _linear(model.speaker_projection.sv_proj.in_features, c.gin_channels)
        yield from _linear(c.gin_channels, width)


def _decoder_draws(generator: TrainableSoVITS) -> Iterator[Draw]:
    """The HiFi-GAN generator: each conv's init, the ResBlocks' and upsamplers' re-init (``init_weights``: normal_)."""
    decoder = generator.model.generator
    yield from _conv(decoder.conv_pre.in_channels, decoder.conv_pre.out_channels, decoder.conv_pre.kernel_size[0])
    for up in decoder.ups:
        yield "uniform_", (up.in_channels, up.out_channels, up.kernel_size[0])
        yield "uniform_", (up.out_channels,)
    for block in decoder.resblocks:
        for convs in (block.convs1, block.convs2):
            shapes = [(conv.out_channels, conv.in_channels, conv.kernel_size[0]) for conv in convs]
            for shape in shapes:
                yield from _conv(shape[1], shape[0], shape[2])
            for shape in shapes:
                yield "normal_", shape
    post = decoder.conv_post
    yield "uniform_", (post.out_channels, post.in_channels, post.kernel_size[0])
    for up in decoder.ups:
        yield "normal_", (up.in_channels, up.out_channels, up.kernel_size[0])
    yield from _conv(decoder.cond.in_channels, decoder.cond.out_channels)


def _discriminator_draws(discriminator: MultiPeriodDiscriminator) -> Iterator[Draw]:
    """Every conv of every discriminator, in order: weight then bias."""
    for module in discriminator.discriminators:
        for conv in [*module.convs, module.conv_post]:
            yield "uniform_", tuple(conv.parametrizations.weight.original1.shape)
            yield "uniform_", (conv.out_channels,)


def official_start_draws(generator: TrainableSoVITS, discriminator: MultiPeriodDiscriminator) -> list[Draw]:
    """The global generator's draws of the official start, in order: G's init, D's init, the loader's seed."""
    return [*_generator_draws(generator), *_discriminator_draws(discriminator), ("random_", ())]


def draw_like_official_start(generator: TrainableSoVITS, discriminator: MultiPeriodDiscriminator) -> None:
    """Consume the global generator as the official run does between its seed and its first batch."""
    for op, shape in official_start_draws(generator, discriminator):
        if op == "randn":
            torch.randn(shape)
        elif op == "random_":
            torch.empty(shape, dtype=torch.int64).random_()
        else:
            getattr(torch.empty(shape), op)()
