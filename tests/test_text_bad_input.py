"""Bad input: `prepare` rejects what cannot be spoken with a clear TextError; the functions
that mirror the official system keep its behaviour and do not crash where it does not."""

from __future__ import annotations

import pytest

from gsv_core.text.errors import TextError
from gsv_core.text.segment import segment_languages
from gsv_core.text.split import MAX_PIECE_CHARS

NOTHING_TO_SPEAK = {
    "empty": "",
    "whitespace": "  \n\t \u3000 ",
    "punctuation": "。。。，，，！！！...?!——",
    "emoji": "🙂🎉👍🏽❤️",
    "control characters": "\x00\x01\x07\x1b\x7f",
    "mixed": " 🙂。\x00！ ",
}


@pytest.fixture(scope="module")
def frontend(official_data_dir):
    from gsv_core.text.frontend import TextFrontend

    return TextFrontend.load(official_data=official_data_dir)


@pytest.mark.parametrize("text", NOTHING_TO_SPEAK.values(), ids=NOTHING_TO_SPEAK.keys())
@pytest.mark.parametrize("language", ["all_zh", "zh", "en"])
def test_prepare_rejects_text_with_nothing_to_speak(frontend, text, language):
    with pytest.raises(TextError, match="nothing to speak"):
        frontend.prepare(text, language, "v2")


@pytest.mark.parametrize(
    "language, version, method, message",
    [
        ("fr", "v2", "cut1", "unknown language 'fr'"),
        ("jp", "v2", "cut1", "unknown language 'jp'"),
        ("ko", "v1", "cut1", "language 'ko' .* needs a v2 model"),
        ("all_yue", "v1", "cut1", "language 'all_yue' .* needs a v2 model"),
        ("zh", "v3", "cut1", "unknown text version 'v3'"),
        ("zh", "v2Pro", "cut1", "unknown text version 'v2Pro'"),
        ("zh", "v2", "cut7", "unknown split method 'cut7'"),
    ],
)
def test_prepare_rejects_unknown_settings(frontend, language, version, method, message):
    with pytest.raises(TextError, match=message):
        frontend.prepare("你好，世界。", language, version, method)


def test_prepare_rejects_non_string(frontend):
    with pytest.raises(TextError, match="must be a string"):
        frontend.prepare(None, "zh", "v2")


def test_prepare_ten_thousand_characters(frontend):
    text = "今天天气很好，我们去公园散步吧。" * 625
    assert len(text) == 10_000
    sequences = frontend.prepare(text, "zh", "v2", "cut0")
    assert len(sequences) > 1 and all(len(seq.text) <= MAX_PIECE_CHARS for seq in sequences)
    assert all(seq.word2ph is not None and len(seq.word2ph) == len(seq.norm_text) for seq in sequences)


def test_prepare_keeps_speakable_text_around_junk(frontend):
    (sequence,) = frontend.prepare("🙂你好，世界！🎉", "zh", "v2", "cut0")
    assert "你好" in sequence.norm_text and len(sequence.phones) >= 6


@pytest.mark.parametrize("language", ["all_zh", "zh"])
@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_phonemize_empty_text_raises_like_upstream(frontend, text, language):
    # upstream crashes inside split_lang / torch.cat here; we raise a clear TextError
    with pytest.raises(TextError, match="nothing to phonemize"):
        frontend.phonemize(text, language, "v2")
    assert segment_languages(text) == []


@pytest.mark.parametrize("text", [t for t in NOTHING_TO_SPEAK.values() if t.strip()] + ["x" * 3, "a\x00b"])
@pytest.mark.parametrize("language, version", [("all_zh", "v2"), ("zh", "v1"), ("en", "v2")])
def test_phonemize_mirror_does_not_crash(frontend, text, language, version):
    sequence = frontend.phonemize(text, language, version)
    assert len(sequence.phones) == len(sequence.phone_ids)
    if len(sequence.phones) < 6:  # too short even after the official retry with a leading "."
        assert sequence.text.startswith(".")


def test_phonemize_empty_english_retries_like_upstream(frontend):
    sequence = frontend.phonemize("", "en", "v2")
    assert sequence.text == "." and sequence.word2ph is None


@pytest.mark.parametrize("language", ["fr", "jp", "Japanese", ""])
def test_phonemize_rejects_unsupported_language(frontend, language):
    with pytest.raises(TextError, match="language"):
        frontend.phonemize("你好", language, "v2")
