"""SoVITS.decode_batch: padded items of different lengths, speakers and speeds decode as they do alone.

The reference for every item is its own :meth:`SoVITS.decode` call (batch 1, no padding), which
the parity tests tie to the official outputs. Float32 on the CPU: within 1e-5 absolute and 1e-4
of the item's peak (measured: about 1e-9 on the official tiny files, 7e-8 on the random tiny
v2Pro; the batch only reorders sums). A control shows the tolerance has teeth: the same item
padded without masks is off by far more.
"""

import pytest
import torch

from gsv_core.models.sovits import DecodeItem, SoVITS, load_sovits
from test_sovits_model import _tiny_model

SHAPES = ((30, 12, 1.0), (17, 20, 1.25), (41, 7, 0.8))  # (tokens, phones, speed): every item a different length
SHORT_SHAPES = ((12, 6, 1.0), (7, 9, 1.25), (16, 4, 0.8))  # for the slow half-precision CPU kernels
ATOL, RELATIVE = 1e-5, 1e-4
HALF_DTYPES = [pytest.param(torch.float16, id="fp16"), pytest.param(torch.bfloat16, id="bf16")]


def _items(model: SoVITS, seed: int = 0, shared_generator_seed: int = 11, shapes=SHAPES) -> list[DecodeItem]:
    """Three items with their own speakers and noise scales; items 0 and 2 share a generator, item 1 brings its noise."""
    draw = torch.Generator().manual_seed(seed)
    shared = torch.Generator().manual_seed(shared_generator_seed)
    items = []
    for index, (tokens, phones, speed) in enumerate(shapes):
        frames = 2 * tokens if speed == 1 else int(2 * tokens / speed) + 1
        noise = torch.randn(1, model.config.inter_channels, frames, generator=draw) if index == 1 else None
        items.append(DecodeItem(
            codes=torch.randint(0, 1024, (1, tokens), generator=draw),
            phones=torch.randint(0, model.config.num_symbols, (phones,), generator=draw),
            ge=torch.randn(1, model.config.gin_channels, 1, generator=draw),
            speed=speed, noise_scale=0.4 + 0.1 * index, noise=noise, generator=None if noise is not None else shared,
        ))
    return items


def _solo(model: SoVITS, items: list[DecodeItem], shared_generator_seed: int = 11) -> list[torch.Tensor]:
    """Each item decoded alone, in order, the shared generator fresh from the same seed."""
    shared = torch.Generator().manual_seed(shared_generator_seed)
    return [
        model.decode(item.codes.unsqueeze(1), item.phones.view(1, -1), item.ge, speed=item.speed,
                     noise_scale=item.noise_scale, noise=item.noise, generator=None if item.noise is not None else shared)[0, 0]
        for item in items
    ]


def _assert_matches_solo(batched: list[torch.Tensor], solo: list[torch.Tensor]) -> None:
    assert [audio.shape for audio in batched] == [audio.shape for audio in solo]
    for ours, alone in zip(batched, solo):
        assert ours.dtype == torch.float32
        difference = float((ours - alone).abs().max())
        assert difference <= ATOL and difference <= RELATIVE * float(alone.abs().max()), difference


@pytest.fixture(scope="module")
def official(reference_models_dir):
    return {version: load_sovits(reference_models_dir / f"s2G-tiny-{version}.pth") for version in ("v2", "v2ProPlus")}


@pytest.mark.parametrize("version", ["v2", "v2ProPlus"])
def test_official_tiny_models_decode_a_batch_as_each_item_alone(official, version):
    model = official[version]
    items = _items(model)
    with torch.inference_mode():
        batched, solo = model.decode_batch(items), _solo(model, items)
    _assert_matches_solo(batched, solo)
    assert [len(audio) for audio in batched] == [
        (2 * t if s == 1 else int(2 * t / s) + 1) * model.config.samples_per_frame for t, _, s in SHAPES]


@pytest.mark.parametrize("version", ["v2", "v2Pro", "v2ProPlus"])
def test_random_tiny_models_decode_a_batch_as_each_item_alone(version):
    model = _tiny_model(version)
    items = _items(model, seed=3)
    with torch.inference_mode():
        batched, solo = model.decode_batch(items), _solo(model, items)
    _assert_matches_solo(batched, solo)


def test_padding_without_masks_would_be_caught():
    """The control: the shortest item, zero-padded to the longest and decoded unmasked, is off by far more than the tolerance."""
    model = _tiny_model("v2Pro")
    item = _items(model, seed=3)[0]
    longest = max(tokens for tokens, _, _ in SHAPES)
    padded_codes = torch.nn.functional.pad(item.codes, (0, longest - item.codes.shape[-1]))
    padded_phones = torch.nn.functional.pad(item.phones, (0, 20 - len(item.phones)))
    with torch.inference_mode():
        alone = model.decode(item.codes.unsqueeze(1), item.phones.view(1, -1), item.ge, noise_scale=0,
                             generator=torch.Generator())[0, 0]
        unmasked = model.decode(padded_codes.unsqueeze(1), padded_phones.view(1, -1), item.ge, noise_scale=0,
                                generator=torch.Generator())[0, 0, : len(alone)]
    assert float((unmasked - alone).abs().max()) > 1000 * ATOL


def test_a_one_item_batch_and_a_batch_of_equal_items():
    model = _tiny_model("v2")
    items = _items(model)
    with torch.inference_mode():
        _assert_matches_solo(model.decode_batch(items[1:2]), _solo(model, items[1:2]))
        twice = model.decode_batch([items[1], items[1]])
    torch.testing.assert_close(twice[0], twice[1], rtol=0, atol=ATOL)


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("version", ["v2", "v2ProPlus"])
def test_half_precision_batches_lose_nothing_against_solo(reference_models_dir, version, dtype):
    """fp16 / bf16 on the CPU: the batch is as close to the float32 solo decode as the half-precision solo decode is
    (measured: batch and solo equal, or 62 dB apart at worst in fp16; both 31-54 dB from float32)."""
    reference = load_sovits(reference_models_dir / f"s2G-tiny-{version}.pth")
    model = load_sovits(reference_models_dir / f"s2G-tiny-{version}.pth", dtype=dtype)
    items = _items(reference, shapes=SHORT_SHAPES)
    with torch.inference_mode():
        exact, half_solo, half_batched = _solo(reference, items), _solo(model, items), model.decode_batch(items)

    def snr_db(expected: torch.Tensor, actual: torch.Tensor) -> float:
        return float(10 * torch.log10(expected.pow(2).sum() / (actual - expected).pow(2).sum().clamp_min(1e-30)))

    for truth, solo, batched in zip(exact, half_solo, half_batched):
        assert batched.dtype == torch.float32 and torch.isfinite(batched).all()
        assert snr_db(truth, batched) >= snr_db(truth, solo) - 1.0


def test_bad_items_are_refused_with_a_clear_error():
    model = _tiny_model("v2")
    good = _items(model)[0]
    with pytest.raises(ValueError, match="at least one item"):
        model.decode_batch([])
    with pytest.raises(ValueError, match=r"codes \(num_quantizers, tokens\)"):
        model.decode_batch([good, DecodeItem(good.codes[0], good.phones, good.ge, generator=torch.Generator())])
    with pytest.raises(ValueError, match="semantic codes must lie"):
        model.decode_batch([good, DecodeItem(good.codes + 1024, good.phones, good.ge, generator=torch.Generator())])
    with pytest.raises(ValueError, match="noise must have the prior's shape"):
        model.decode_batch([good, DecodeItem(good.codes, good.phones, good.ge, noise=torch.zeros(1, 8, 3))])
    with pytest.raises(ValueError, match="noise tensor or a torch.Generator"):
        model.decode_batch([DecodeItem(good.codes, good.phones, good.ge)])
