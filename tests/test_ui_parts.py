"""The UI's pure parts: both languages complete, messages by Accept-Language, progress steps, the history."""

import string

import numpy as np
import pytest

from voice_studio.ui.feedback import int16_audio, stage_message
from voice_studio.ui.history import MAX_CLIPS, remember
from voice_studio.ui.strings import STRINGS, locale_of, say, ui


def _fields(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def test_every_string_exists_in_both_languages_with_the_same_fields():
    assert set(STRINGS["en"]) == set(STRINGS["zh"])
    for key, english in STRINGS["en"].items():
        assert _fields(english) == _fields(STRINGS["zh"][key]), key
    with pytest.raises(KeyError):
        ui("no_such_string")


class _Request:
    def __init__(self, accept_language: str | None, cookie: str | None = None):
        self.headers = {} if accept_language is None else {"accept-language": accept_language}
        if cookie:
            self.headers["cookie"] = cookie


@pytest.mark.parametrize("header, locale", [("zh-CN,zh;q=0.9,en;q=0.8", "zh"), ("en-US,en;q=0.9,zh;q=0.5", "en"),
                                            ("zh-TW", "zh"), ("fr-FR,fr", "en"), (None, "en")])
def test_messages_follow_the_browser_language(header, locale):
    assert locale_of(_Request(header)) == locale
    assert locale_of(None) == "en"


def test_a_language_switched_in_the_page_wins_over_the_browser_preference():
    assert locale_of(_Request("en-US,en", "other=1; gsv_locale=zh-CN")) == "zh"
    assert locale_of(_Request("zh-CN", "gsv_locale=en")) == "en"


def test_progress_reads_as_steps_and_unknown_reports_pass_through():
    assert stage_message("generating segment 2 of 5", "en") == "Step 2 of 3: generating speech, segment 2 of 5"
    assert stage_message("generating segment 2 of 5", "zh") == say("progress_segment", "zh", number=2, total=5)
    assert stage_message("decoding 120 of ~300 tokens", "en") == "decoding 120 of ~300 tokens"


def test_history_keeps_the_newest_clips_with_plain_labels():
    history = None
    for number in range(MAX_CLIPS + 2):
        history = remember(history, (32000, np.zeros(10, np.int16)), "**Eve**", f"text {number} " + "x" * 60)
    assert len(history) == MAX_CLIPS and history[-1]["number"] == MAX_CLIPS + 2
    assert history[-1]["label"].startswith(f"{MAX_CLIPS + 2}. **Eve**: text") and history[-1]["label"].endswith("…")


def test_audio_is_handed_to_gradio_as_int16():
    clip = int16_audio(np.array([0.0, 0.5, -1.0, 2.0], np.float32))
    assert clip.dtype == np.int16 and clip.tolist() == [0, 16383, -32767, 32767]


def test_offline_status_is_one_sentence_with_the_reason_folded_away(tmp_path):
    from voice_studio.service import ServiceConfig, VoiceService
    from voice_studio.ui.common import status_html

    def fail(progress):
        raise OSError("no file /root/.cache/huggingface/s1v3.ckpt (pass --t2s)")

    service = VoiceService(ServiceConfig(speakers_dir=tmp_path / "speakers"), load_pipeline=fail)
    service.start_loading()
    with pytest.raises(Exception):
        service.pipeline()
    line, details = status_html(service, "zh").split("<details", 1)
    assert line == f'<p class="gsv-status">{say("status_offline", "zh")}</p>'
    # the reason waits behind Details, and (issue 11) never shows server paths or argument names
    assert "could not be loaded" in details and "/root" not in details and "s1v3" not in line + details


def test_every_language_mode_of_the_frontend_is_offered_with_labels_in_both_languages():
    from gsv_core.text.languages import SUPPORTED_LANGUAGE_MODES
    from voice_studio.ui.common import LANGUAGE_CODES
    from voice_studio.ui.strings import say

    assert set(LANGUAGE_CODES) == set(SUPPORTED_LANGUAGE_MODES)
    for code in LANGUAGE_CODES:
        english, chinese = say(f"lang_{code}", "en"), say(f"lang_{code}", "zh")
        assert code in english and code in chinese and english != chinese


def test_the_transcript_preselects_the_language_whisper_heard(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from test_service import _service, _wav

    service = _service(tmp_path)
    heard = SimpleNamespace(text="こんにちは。", language="ja")
    monkeypatch.setattr(service.transcriber, "transcribe_segments", lambda samples, rate, language: heard)
    assert service.transcribe_detecting(_wav()) == ("こんにちは。", "ja")
