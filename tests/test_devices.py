"""Device and precision choices: auto rules, clear errors when a device is missing."""

import pytest
import torch

from gsv_core.devices import resolve_device, resolve_placement, resolve_precision


def test_auto_is_the_cpu_in_fp32_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    placement = resolve_placement("auto", "auto")
    assert placement.device == torch.device("cpu") and placement.dtype == torch.float32 and placement.precision == "fp32"


def test_auto_is_cuda_in_fp16_with_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_precision("auto", torch.device("cuda")) == torch.float16
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ValueError, match="only 2 GPU"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_asking_for_cuda_without_it_is_a_clear_error(name, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device(name)


def test_explicit_precisions_and_unknown_words():
    cpu = torch.device("cpu")
    assert resolve_precision("bf16", cpu) == torch.bfloat16
    assert resolve_precision("FP16", cpu) == torch.float16
    assert resolve_precision("fp32", cpu) == torch.float32
    with pytest.raises(ValueError, match="unknown precision 'int4'"):
        resolve_precision("int4", cpu)
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_the_app_refuses_to_start_on_a_missing_gpu(monkeypatch):
    from voice_studio.server import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="CUDA is not available"):
        main(["--device", "cuda"])
