"""Models used only to prepare speakers (HuBERT, ERes2NetV2) are loaded per use and freed after it,
with the same outputs as when kept; bad files still fail at construction."""

import gc
import threading
import weakref

import numpy as np
import pytest
import torch

from gsv_core.features.on_demand import OnDemand
from gsv_core.features.ssl import HubertFeatures
from gsv_core.features.sv import SpeakerEncoder
from gsv_core.engine.pipeline import VoicePipeline


class _Model:
    pass


def test_on_demand_loads_once_at_start_then_per_use_and_frees_it():
    loads = []

    def load():
        loads.append(_Model())
        return loads[-1]

    models = OnDemand(load, keep_loaded=False)
    assert len(loads) == 1 and models.kept is None
    assert models.run(lambda model: model is loads[1])
    assert models.run(lambda model: model is loads[2])
    alive = weakref.ref(loads[2])
    loads.clear()
    gc.collect()
    assert alive() is None  # nothing inside OnDemand holds a model between uses


def test_on_demand_kept_model_is_loaded_once():
    loads = []
    models = OnDemand(lambda: loads.append(_Model()) or loads[-1], keep_loaded=True)
    assert models.run(lambda a: models.run(lambda b: a is b is models.kept))
    assert len(loads) == 1


def test_on_demand_loads_one_at_a_time():
    """Concurrent uses of an unkept model wait for each other, so two copies never coexist."""
    inside, most = [0], [0]
    lock = threading.Lock()
    models = OnDemand(_Model, keep_loaded=False)

    def hold(model):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        threading.Event().wait(0.02)
        with lock:
            inside[0] -= 1

    def use():
        models.run(hold)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1


def test_on_demand_fails_at_construction_when_the_load_fails():
    def broken():
        raise ValueError("bad weights")

    with pytest.raises(ValueError, match="bad weights"):
        OnDemand(broken, keep_loaded=False)


def test_hubert_loaded_per_call_gives_the_kept_models_features(reference_models_dir):
    folder = reference_models_dir / "chinese-hubert-tiny"
    wav = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0))
    kept, per_call = HubertFeatures(folder), HubertFeatures(folder, keep_loaded=False)
    assert kept.models.kept is not None and per_call.models.kept is None
    torch.testing.assert_close(per_call.last_hidden_state(wav), kept.last_hidden_state(wav), rtol=0, atol=0)


def test_hubert_per_call_still_refuses_a_bad_folder_at_start(tmp_path):
    with pytest.raises(OSError):
        HubertFeatures(tmp_path, keep_loaded=False)


def test_sv_loaded_per_call_gives_the_kept_models_features(reference_models_dir):
    path = reference_models_dir / "sv-eres2netv2-tiny.ckpt"
    wav = torch.randn(1, 32000, generator=torch.Generator().manual_seed(0)) * 0.1
    kept, per_call = SpeakerEncoder.from_checkpoint(path), SpeakerEncoder.from_checkpoint(path, keep_loaded=False)
    assert per_call.models.kept is None and per_call.embedding_dim == kept.embedding_dim
    torch.testing.assert_close(per_call.sv_embedding(wav), kept.sv_embedding(wav), rtol=0, atol=0)
    torch.testing.assert_close(per_call.speaker_embedding(wav), kept.speaker_embedding(wav), rtol=0, atol=0)


def test_sv_per_call_still_refuses_a_bad_file_at_start(tmp_path):
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        SpeakerEncoder.from_checkpoint(tmp_path / "junk.ckpt", keep_loaded=False)


def test_a_loaded_pipeline_frees_hubert_between_preparations(reference_models_dir, reference_dir):
    """from_paths keeps HuBERT out of memory between preparations; speakers come out as with a kept one.
    (The tiny SV network does not fit the tiny v2Pro files: its per-call loading is tested above.)"""
    models = reference_models_dir
    pipeline = VoicePipeline.from_paths(models / "s1-tiny.ckpt", models / "s2G-tiny-v2.pth",
                                        models / "chinese-hubert-tiny", models / "chinese-roberta-tiny")
    assert pipeline.hubert.models.kept is None
    kept = VoicePipeline(version=pipeline.version_info, t2s=pipeline.t2s, sovits=pipeline.sovits,
                         hubert=HubertFeatures(models / "chinese-hubert-tiny"), bert=pipeline.bert,
                         speaker_encoder=None, frontend=pipeline.frontend)
    reference = reference_dir / "cases" / "v2_zh" / "ref.wav"
    text = "这是一段用来测试的参考音频。"
    ours, theirs = (p.prepare_speaker(str(reference), text, "zh") for p in (pipeline, kept))
    np.testing.assert_array_equal(ours.prompt_semantic, theirs.prompt_semantic)
    np.testing.assert_array_equal(ours.global_embedding, theirs.global_embedding)


def test_hubert_stays_loaded_when_asked_and_the_default_follows_the_device(reference_models_dir):
    """keep_hubert=True (a GPU's default: models placed at start, as ZeroGPU needs) keeps it loaded."""
    models = reference_models_dir
    files = (models / "s1-tiny.ckpt", models / "s2G-tiny-v2.pth", models / "chinese-hubert-tiny",
             models / "chinese-roberta-tiny")
    assert VoicePipeline.from_paths(*files, keep_hubert=True).hubert.models.kept is not None
    assert VoicePipeline.from_paths(*files, device="cpu").hubert.models.kept is None  # the CPU default
