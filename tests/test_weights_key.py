"""The weights key names every model file whose outputs a speaker's cached embeddings hold."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from gsv_core.engine.pipeline import VoicePipeline
from gsv_core.speakers import SpeakerLibrary
from gsv_core.weights_key import weights_key


def _perturbed_copy(source, target):
    """A copy of a Hugging Face model folder with one weight changed."""
    shutil.copytree(source, target)
    weights = load_file(target / "model.safetensors")
    name = sorted(weights)[0]
    weights[name] = weights[name] + 0.5
    save_file(weights, target / "model.safetensors")
    return target


def test_the_key_changes_with_any_file_of_a_model_folder(tmp_path, reference_models_dir):
    hubert = _perturbed_copy(reference_models_dir / "chinese-hubert-tiny", tmp_path / "hubert")
    original = weights_key("v2", [reference_models_dir / "chinese-hubert-tiny"])
    assert weights_key("v2", [hubert]) != original
    assert weights_key("v2", [reference_models_dir / "chinese-hubert-tiny"]) == original
    with pytest.raises(ValueError, match="not found"):
        weights_key("v2", [tmp_path / "missing"])


@pytest.mark.parametrize("changed", ["hubert", "bert"])
def test_changing_the_hubert_or_bert_folder_recomputes_cached_embeddings(changed, tmp_path, reference_dir):
    models = reference_dir / "models"
    folders = {"hubert": models / "chinese-hubert-tiny", "bert": models / "chinese-roberta-tiny"}
    paths = lambda: (models / "s1-tiny.ckpt", models / "s2G-tiny-v2.pth", folders["hubert"], folders["bert"])  # noqa: E731
    first = VoicePipeline.from_paths(*paths(), official_data=reference_dir / "data")
    folders[changed] = _perturbed_copy(folders[changed], tmp_path / changed)
    second = VoicePipeline.from_paths(*paths(), official_data=reference_dir / "data")
    assert first.weights_key != second.weights_key

    calls = []

    def counting(pipeline):
        def prepare(*args):
            calls.append(pipeline)
            return pipeline.prepare_speaker(*args)
        return prepare

    library = SpeakerLibrary(tmp_path / "speakers")
    reference = (reference_dir / "cases" / "v2_zh" / "ref.wav").read_bytes()
    info = library.add(reference, "今天天气不错，我们一起去公园散步吧。", "zh", "Ref", prepare=counting(first),
                       weights_key=first.weights_key)
    old = library.conditioning(info.id, prepare=counting(first), weights_key=first.weights_key)
    new = library.conditioning(info.id, prepare=counting(second), weights_key=second.weights_key)
    assert calls == [first, second]  # computed at add, then recomputed for the new weights, never reused
    changed_array = "prompt_semantic" if changed == "hubert" else "prompt_bert"
    assert not np.array_equal(getattr(old, changed_array), getattr(new, changed_array))


def test_weights_key_follows_file_contents(tmp_path):
    gpt, model_dir = tmp_path / "s1.ckpt", tmp_path / "hubert"
    gpt.write_bytes(os.urandom(3 << 20))
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    key = weights_key("v2Pro", [gpt, model_dir])
    assert key.startswith("v2Pro-") and key == weights_key("v2Pro", [str(gpt), model_dir])
    assert key != weights_key("v2ProPlus", [gpt, model_dir])
    (model_dir / "config.json").write_text('{"a": 1}')
    changed = weights_key("v2Pro", [gpt, model_dir])
    assert changed != key
    data = bytearray(gpt.read_bytes())
    data[-1] ^= 0xFF  # last MiB
    gpt.write_bytes(bytes(data))
    assert weights_key("v2Pro", [gpt, model_dir]) != changed
    for version, files in (("v2/../x", [gpt]), ("v2", []), ("v2", [tmp_path / "missing.pth"])):
        with pytest.raises(ValueError):
            weights_key(version, files)
