"""HuBERT and BERT feature extractors: parity with the official goldens, real-size layouts."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForMaskedLM, BertForPreTraining, BertTokenizer, HubertConfig, HubertModel

from gsv_core.features.bert import BERT_DIM, BertFeatures, _BertTrunk
from gsv_core.features.ssl import HubertFeatures

CASES = ["v2_zh", "v2_zh_en_mixed", "v2Pro_zh"]


def _manifest(reference_dir, name: str) -> dict:
    return json.loads((reference_dir / "shapes" / f"{name}.json").read_text())


def _meta_state_shapes(model_cls, config) -> dict[str, list[int]]:
    with torch.device("meta"):
        model = model_cls(config)
    return {key: list(value.shape) for key, value in model.state_dict().items()}


# --- HuBERT ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hubert(reference_models_dir):
    return HubertFeatures(reference_models_dir / "chinese-hubert-tiny", device="cpu", dtype=torch.float32)


@pytest.mark.parametrize("case", CASES)
def test_hubert_matches_official(hubert, reference_dir, case):
    arrays = np.load(reference_dir / "cases" / case / "intermediates.npz")
    wav = torch.from_numpy(arrays["hubert_input_wav16k_padded"])
    expected = arrays["hubert_last_hidden_state"]
    got = hubert.last_hidden_state(wav)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-4)
    content = hubert.content(wav[0])
    assert content.shape == (1, 768, expected.shape[1])
    torch.testing.assert_close(content, got.transpose(1, 2))


def test_hubert_rejects_batches(hubert):
    with pytest.raises(ValueError, match=r"shape \(1, n\)"):
        hubert.last_hidden_state(torch.zeros(2, 16000))


def test_hubert_real_size_layout(reference_dir):
    manifest = _manifest(reference_dir, "chinese-hubert-base")
    config = HubertConfig(**manifest["config_assumed"])
    shapes = _meta_state_shapes(HubertModel, config)
    expected = {key: entry["shape"] for key, entry in manifest["state_dict"].items()}
    assert shapes == expected
    assert sum(np.prod(s) for s in shapes.values()) == manifest["n_params"]


def _tiny_hubert_config(hidden_size: int = 768) -> HubertConfig:
    return HubertConfig(
        hidden_size=hidden_size, num_hidden_layers=1, num_attention_heads=4, intermediate_size=32,
        conv_dim=(16,) * 7, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=4,
    )


def test_hubert_loads_a_saved_tiny_model(tmp_path):
    torch.manual_seed(0)
    source = HubertModel(_tiny_hubert_config()).eval()
    source.save_pretrained(tmp_path)
    features = HubertFeatures(tmp_path)
    wav = torch.randn(1, 16000)
    with torch.no_grad():
        expected = source(wav).last_hidden_state
    torch.testing.assert_close(features.last_hidden_state(wav), expected)
    assert features.content(wav).shape == (1, 768, 49)


def test_hubert_wrong_width_is_refused(tmp_path):
    HubertModel(_tiny_hubert_config(hidden_size=64)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="needs 768"):
        HubertFeatures(tmp_path)


# --- BERT ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    language: str
    norm_text: str
    phones: tuple
    word2ph: tuple | None


@pytest.fixture(scope="module")
def bert(reference_models_dir):
    return BertFeatures(reference_models_dir / "chinese-roberta-tiny", device="cpu", dtype=torch.float32)


def _case(reference_dir, case):
    case_dir = reference_dir / "cases" / case
    inputs = json.loads((case_dir / "inputs.json").read_text())
    return dict(np.load(case_dir / "intermediates.npz")), inputs["recorded"]["bert_calls_text"]


@pytest.mark.parametrize("case", CASES)
def test_bert_calls_match_official(bert, reference_dir, case):
    arrays, texts = _case(reference_dir, case)
    for i, text in enumerate(texts):
        input_ids = bert.tokenizer(text, return_tensors="pt")["input_ids"]
        np.testing.assert_array_equal(input_ids.numpy(), arrays[f"bertmodel_{i}_input_ids"])
        hidden = arrays[f"bertmodel_{i}_hidden_m3"]
        with torch.no_grad():
            full = bert.model(**bert.tokenizer(text, return_tensors="pt")).last_hidden_state
        np.testing.assert_allclose(full.numpy(), hidden, rtol=0, atol=1e-4)
        np.testing.assert_allclose(bert.token_features(text).numpy(), hidden[0, 1:-1], rtol=0, atol=1e-4)


@pytest.mark.parametrize("case", ["v2_zh", "v2Pro_zh"])
def test_chinese_prompt_and_target_features_match_official(bert, reference_dir, case):
    arrays, texts = _case(reference_dir, case)
    for i, key in enumerate(["prompt_bert", "target_bert_0"]):
        word2ph = arrays[f"bertcall_{i}_word2ph"].tolist()
        got = bert.phone_features(texts[i], word2ph)
        assert got.shape == arrays[key].shape == (BERT_DIM, sum(word2ph))
        np.testing.assert_allclose(got.numpy(), arrays[key], rtol=0, atol=1e-4)
        part = Part("all_zh", texts[i], tuple(range(sum(word2ph))), tuple(word2ph))
        torch.testing.assert_close(bert.sequence_features([part]), got)


def test_mixed_parts_are_concatenated_like_official(bert, reference_dir):
    arrays, texts = _case(reference_dir, "v2_zh_en_mixed")
    w2p = [tuple(arrays[f"bertcall_{i}_word2ph"].tolist()) for i in range(3)]
    # Target "我喜欢用Python写代码,hello world谢谢大家.": zh, en (5 phones), zh, en (8 phones), zh.
    parts = [
        Part("zh", texts[0], (0,) * sum(w2p[0]), w2p[0]),
        Part("en", "Python", (0,) * 5, None),
        Part("zh", texts[1], (0,) * sum(w2p[1]), w2p[1]),
        Part("en", "hello world", (0,) * 8, None),
        Part("zh", texts[2], (0,) * sum(w2p[2]), w2p[2]),
    ]
    got = bert.sequence_features(parts)
    assert got.shape == arrays["target_bert_0"].shape
    np.testing.assert_allclose(got.numpy(), arrays["target_bert_0"], rtol=0, atol=1e-4)
    english_prompt = bert.sequence_features([Part("en", "a prompt", (0,) * 41, None)])
    np.testing.assert_array_equal(english_prompt.numpy(), arrays["prompt_bert"])


def test_bert_bad_alignment_is_refused(bert):
    with pytest.raises(ValueError, match="word2ph has 2 entries for 3 characters"):
        bert.phone_features("你好.", [2, 2])
    with pytest.raises(ValueError, match="counts 4 phones, the part has 3"):
        bert.part_features(Part("zh", "你好", (0, 0, 0), (2, 2)))
    with pytest.raises(ValueError, match="no word2ph"):
        bert.part_features(Part("zh", "你好", (0, 0, 0), None))
    with pytest.raises(ValueError, match="no text parts"):
        bert.sequence_features([])


def test_bert_real_size_layout(reference_dir):
    manifest = _manifest(reference_dir, "chinese-roberta-wwm-ext-large")
    config = BertConfig(**manifest["config_assumed"])
    expected = {key: entry["shape"] for key, entry in manifest["state_dict"].items()}
    assert _meta_state_shapes(BertForMaskedLM, config) == expected
    with torch.device("meta"):
        trunk = _BertTrunk(config, add_pooling_layer=False)
    trunk_shapes = {f"bert.{key}": list(value.shape) for key, value in trunk.state_dict().items()}
    assert all(expected[key] == shape for key, shape in trunk_shapes.items())
    assert all(key.startswith("cls.") for key in set(expected) - set(trunk_shapes))


_TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ",", ".", *"你好世界今天天气不错我们"]


def _save_tiny_bert(path, num_layers: int, hidden_size: int = BERT_DIM) -> BertForMaskedLM:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(_TINY_VOCAB), hidden_size=hidden_size, num_hidden_layers=num_layers,
        num_attention_heads=4, intermediate_size=32, max_position_embeddings=64,
    )
    model = BertForMaskedLM(config).eval()
    model.save_pretrained(path)
    vocab_file = path / "vocab.txt"
    vocab_file.write_text("\n".join(_TINY_VOCAB) + "\n")
    BertTokenizer(vocab_file=str(vocab_file)).save_pretrained(path)
    return model


def test_truncated_bert_equals_third_to_last_hidden_state(tmp_path):
    full = _save_tiny_bert(tmp_path, num_layers=4)
    features = BertFeatures(tmp_path)
    assert len(features.model.encoder.layer) == 2
    text = "你好,今天天气不错."
    inputs = features.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        expected = full(**inputs, output_hidden_states=True).hidden_states[-3][0, 1:-1]
    torch.testing.assert_close(features.token_features(text), expected)
    word2ph = [2, 2, 1, 2, 2, 2, 2, 2, 2, 1]
    phone_level = features.phone_features(text, word2ph)
    assert phone_level.shape == (BERT_DIM, sum(word2ph))
    torch.testing.assert_close(phone_level[:, 2], expected[1])
    torch.testing.assert_close(phone_level[:, 4], expected[2])


def test_bert_wrong_width_is_refused(tmp_path):
    _save_tiny_bert(tmp_path, num_layers=2, hidden_size=64)
    with pytest.raises(ValueError, match="needs 1024"):
        BertFeatures(tmp_path)


def test_hubert_reads_legacy_weight_norm_names_from_a_bin_file(tmp_path):
    """The real chinese-hubert-base is a pytorch_model.bin with weight_g / weight_v names."""
    torch.manual_seed(0)
    config = _tiny_hubert_config()
    source = HubertModel(config).eval()
    legacy = {
        key.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        ): value
        for key, value in source.state_dict().items()
    }
    assert "encoder.pos_conv_embed.conv.weight_g" in legacy
    config.save_pretrained(tmp_path)
    torch.save(legacy, tmp_path / "pytorch_model.bin")
    wav = torch.randn(1, 16000)
    with torch.no_grad():
        expected = source(wav).last_hidden_state
    torch.testing.assert_close(HubertFeatures(tmp_path).last_hidden_state(wav), expected)


def test_bert_reads_a_pretraining_bin_with_only_the_hub_files(tmp_path):
    """Pre-training heads, a pooler and gamma/beta LayerNorm names; config, weights and tokenizer.json only."""
    torch.manual_seed(0)
    _save_tiny_bert(tmp_path, num_layers=3)
    config = BertConfig.from_pretrained(tmp_path)
    source = BertForPreTraining(config).eval()
    legacy = {
        key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): value
        for key, value in source.state_dict().items()
    }
    assert "bert.pooler.dense.weight" in legacy and "cls.seq_relationship.weight" in legacy
    for name in list(tmp_path.iterdir()):
        if name.name not in ("config.json", "tokenizer.json"):
            name.unlink()
    torch.save(legacy, tmp_path / "pytorch_model.bin")
    features = BertFeatures(tmp_path)
    text = "你好,我们."
    with torch.no_grad():
        inputs = features.tokenizer(text, return_tensors="pt")
        expected = source.bert(**inputs, output_hidden_states=True).hidden_states[-3][0, 1:-1]
    torch.testing.assert_close(features.token_features(text), expected)
