"""Hot speakers' tensors are moved to the device once, in a bounded cache keyed by the object."""

import gc

import numpy as np
import torch

from gsv_core.conditioning import SpeakerConditioning
from gsv_core.engine.speaker_tensors import DeviceSpeakers


def _speaker(seed: int, prompt: bool = True) -> SpeakerConditioning:
    rng = np.random.default_rng(seed)
    arrays = {"prompt_semantic": rng.integers(0, 1024, 20), "prompt_phones": rng.integers(0, 700, 8),
              "prompt_bert": rng.random((1024, 8), dtype=np.float32)} if prompt else {}
    return SpeakerConditioning(version="v2", ref_spec=rng.random((1, 1025, 4), dtype=np.float32),
                               global_embedding=rng.random((1, 512, 1), dtype=np.float32), **arrays)


def test_the_same_speaker_object_reuses_its_tensors_and_the_cache_is_bounded():
    cache = DeviceSpeakers(torch.device("cpu"), capacity=2)
    first, second, third = _speaker(1), _speaker(2), _speaker(3, prompt=False)
    tensors = cache.get(first)
    assert cache.get(first) is tensors
    np.testing.assert_array_equal(tensors.prompt_semantic.numpy(), first.prompt_semantic)
    assert tensors.global_embedding.shape == (1, 512, 1) and tensors.global_embedding.device.type == "cpu"
    assert cache.get(third).prompt_phones is None
    cache.get(second)
    assert len(cache) == 2 and cache.get(first) is not tensors  # evicted as least recently used, rebuilt


def test_a_new_object_at_a_reused_address_is_not_mistaken_for_a_forgotten_one():
    cache = DeviceSpeakers(torch.device("cpu"), capacity=4)
    old = _speaker(1)
    old_tensors = cache.get(old)
    address = id(old)
    del old
    gc.collect()
    for seed in range(2, 50):  # CPython often reuses the freed address for the next object of the same size
        new = _speaker(seed)
        if id(new) == address:
            break
    assert not np.array_equal(cache.get(new).global_embedding.numpy(), old_tensors.global_embedding.numpy())


def test_a_speaker_the_library_let_go_takes_its_device_tensors_with_it():
    cache = DeviceSpeakers(torch.device("cpu"), capacity=16)
    kept, dropped = _speaker(1), _speaker(2)
    cache.get(kept), cache.get(dropped)
    del dropped
    gc.collect()
    assert len(cache) == 1 and cache.get(kept) is cache.get(kept)
