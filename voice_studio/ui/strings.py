"""Every word the page says, in English and Chinese, in one place.

Static labels go to the browser as ``gr.I18n`` keys: Gradio translates them by the browser's
language, and the footer's *Settings → Language* switches them. Messages made while serving a
request (errors, timings, progress) are translated here, by the request's ``Accept-Language``.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from types import MappingProxyType

import gradio as gr
from gradio.i18n import I18nData

LOCALES = ("en", "zh")
LOCALE_COOKIE = "gsv_locale"

_EN = {
    # the page
    "heading": "# GPT-SoVITS Voice Studio",
    "intro": "Clone a voice from a 3-10 second clip and make it say any text, in Chinese or English.",
    "steps": "1. Pick a voice, or add your own under *Add voice*\n2. Type a text, or click an example\n"
             "3. Press **Synthesize** and listen",
    "language_hint": "Language: Settings (page footer) → Language · 切换语言：页面底部「设置」→「语言」",
    "tab_synthesize": "Synthesize", "tab_speakers": "Add voice", "tab_compare": "Compare", "tab_pronunciation": "Pronunciation",
    # shared
    "voice": "Voice", "text": "Text", "language": "Language", "refresh": "Refresh list",
    "lang_zh": "Chinese + English (zh)", "lang_all_zh": "Chinese only (all_zh)", "lang_en": "English (en)",
    "lang_all_ja": "Japanese (all_ja)", "lang_ja": "Japanese + English (ja)", "lang_all_yue": "Cantonese (all_yue)",
    "lang_yue": "Cantonese + English (yue)", "lang_all_ko": "Korean (all_ko)", "lang_ko": "Korean + English (ko)",
    "lang_auto": "Automatic, each language detected (auto)", "lang_auto_yue": "Automatic, Chinese read as Cantonese (auto_yue)",
    "reference_clip": "Reference clip of this voice",
    # synthesize
    "examples_zh": "Chinese examples (click one)", "examples_en": "English examples (click one)",
    "advanced": "Advanced", "seed": "Seed (-1: random)", "split_method": "Split method",
    "synthesize": "Synthesize", "result": "Result", "live": "Listen while it is made", "history": "Your clips in this session (newest first)",
    "history_empty": "Clips you synthesize appear here, to play again or download.",
    # add voice (speakers_tab)
    "speakers_intro": "Upload or record 3-10 seconds of clean speech and type what is said.",
    "reference_speech": "Reference speech", "transcript": "Transcript", "transcribe": "Transcribe automatically",
    "name": "Name", "consent": "I have the right to use this voice, and the speaker agreed to it",
    "add_speaker": "Add speaker", "stored_reference": "Stored reference", "manage_voices": "Manage voices",
    "new_name": "New name", "rename": "Rename", "delete": "Delete", "export_voice": "Export (zip)",
    "exported_voice": "Exported voice", "yours": "yours",
    "msg_consent": "Please confirm that you have the right to use this voice.",
    "msg_upload_first": "Upload or record 3-10 seconds of speech first.",
    "msg_added": "Added {name} ({seconds:.1f} s).", "msg_renamed": "Renamed to {name}.", "msg_deleted": "Deleted.",
    "aux_clips": "Auxiliary clips (optional: 1-10 s each, same voice; they add timbre, not words)",
    # add voice: the long-recording panel (recording_panel)
    "long_recording": "Or: a long recording (up to 3 minutes)",
    "recording_intro": "Upload up to three minutes of one person speaking. It is cut at the pauses; the best "
                       "sentence becomes the main reference and the next best add their timbre. Name, language "
                       "and consent are the ones below.",
    "recording": "Long recording", "recording_text": "What the recording says (optional: skips automatic recognition)",
    "cut": "Cut into utterances", "utterances": "Utterances (correct the words in the table)",
    "main_reference": "Main reference", "play_utterance": "Play utterance", "utterance_clip": "Utterance",
    "save_recording": "Save the recording's voice",
    "col_number": "#", "col_start": "start (s)", "col_end": "end (s)", "col_said": "what is said",
    "col_problems": "problems", "col_role": "role",
    "role_main": "main", "role_aux": "auxiliary", "role_spare": "spare", "role_dropped": "dropped",
    "problem_too short": "too short", "problem_too long": "too long", "problem_silent": "silent",
    "problem_clipped": "clipped", "problem_too quiet": "too quiet",
    "problem_not a complete sentence": "not a complete sentence", "problem_long pause inside": "long pause inside",
    "msg_recording_first": "Upload or record a recording first.",
    "msg_cut": "Cut into {count} utterances: #{main} is the main reference, {aux} add their timbre.",
    "msg_no_main": "No utterance can be a reference (each is too short, too long, silent, clipped or too quiet).",
    "msg_pick_main": "Pick the main reference first.",
    "msg_added_recording": "Added {name} ({seconds:.1f} s and {aux} auxiliary clips).",
    # compare
    "compare_intro": "One text through two to four voices, side by side; rate each clip for the team.",
    "compare_text": "Text to compare", "compare_voices": "Voices (2-4)", "compare": "Compare",
    "rating": "Rating", "note": "Note", "save_ratings": "Save ratings", "export_ratings": "Export ratings (CSV)",
    "ratings_csv": "Ratings CSV", "ranking": "Team ranking (mean rating per voice)",
    "col_voice": "voice", "col_count": "ratings", "col_mean": "mean",
    # pronunciation
    "pron_intro": "Type a sentence to see how it will be pronounced: normalized text and phones.",
    "version": "Version", "show_pronunciation": "Show pronunciation", "normalized_text": "Normalized text",
    "phones": "Phones", "parts": "Parts", "details": "Phones, ids and word2ph",
    "g2pw_readings": "g2pW's readings of polyphonic characters: character, reading, probability (before the "
                     "polyphonic-word dictionary and tone sandhi; empty when g2pW is off)",
    # messages (server side)
    "msg_pick_voice": "Pick a voice first.",
    "msg_pick_compare": "Pick two to four voices to compare (you picked {count}).",
    "msg_compare_first": "Compare some voices first.",
    "msg_no_ratings": "Ratings are not stored on this server.",
    "msg_saved": "Saved {count} ratings.",
    "msg_rated_already": "These clips are rated already (one rating per clip). Compare again to rate new clips.",
    "msg_timing": "{audio:.2f} s of audio in {wall:.2f} s (real-time factor {rtf:.2f})",
    "quality_check": "Quality check: transcribe the result and retry with the next seed when words are wrong",
    "msg_similarity": "voice similarity {value:.3f}",
    "msg_similarity_na": "voice similarity not available",
    "msg_seed": "seed {seed}",
    "msg_quality": "quality check: error rate {cer:.2f} after {tries} take(s)",
    "msg_quality_skipped": "quality check skipped: the speech recognizer is not available",
    "progress_retry": "Quality check: error rate {cer}, another take ({number} of {total})",
    "progress_reading": "Step 1 of 3: reading the text",
    "progress_segment": "Step 2 of 3: generating speech, segment {number} of {total}",
    "progress_done": "Step 3 of 3: done",
    "status_offline": "Synthesis unavailable: the model files could not be loaded (offline?). "
                      "The voice library and the pronunciation preview still work.",
    "status_details": "Details",
}

_ZH = {
    "heading": "# GPT-SoVITS 语音工作室",
    "intro": "用 3-10 秒的录音克隆一个声音，让它说出任何中文或英文文本。",
    "steps": "1. 选择一个声音，或在「添加声音」里加入你自己的\n2. 输入文本，或点击示例\n3. 点击「**合成**」并收听",
    "language_hint": "切换语言：页面底部「设置」→「语言」 · Language: Settings (page footer) → Language",
    "tab_synthesize": "合成", "tab_speakers": "添加声音", "tab_compare": "对比", "tab_pronunciation": "发音",
    "voice": "声音", "text": "文本", "language": "语言", "refresh": "刷新列表",
    "lang_zh": "中英混合 (zh)", "lang_all_zh": "仅中文 (all_zh)", "lang_en": "英文 (en)",
    "lang_all_ja": "日文 (all_ja)", "lang_ja": "日英混合 (ja)", "lang_all_yue": "粤语 (all_yue)",
    "lang_yue": "粤英混合 (yue)", "lang_all_ko": "韩文 (all_ko)", "lang_ko": "韩英混合 (ko)",
    "lang_auto": "自动识别语言 (auto)", "lang_auto_yue": "自动识别，中文按粤语读 (auto_yue)",
    "reference_clip": "该声音的参考音频",
    "examples_zh": "中文示例（点击使用）", "examples_en": "英文示例（点击使用）",
    "advanced": "高级选项", "seed": "随机种子（-1：随机）", "split_method": "切分方式",
    "synthesize": "合成", "result": "结果", "live": "边合成边播放", "history": "本次会话的音频（最新在前）",
    "history_empty": "合成的音频会出现在这里，可以重听或下载。",
    "speakers_intro": "上传或录制 3-10 秒清晰的语音，并输入其中说的内容。",
    "reference_speech": "参考语音", "transcript": "文本内容", "transcribe": "自动识别",
    "name": "名称", "consent": "我有权使用这个声音，且说话人已同意",
    "add_speaker": "添加声音", "stored_reference": "已保存的参考音频", "manage_voices": "管理声音",
    "new_name": "新名称", "rename": "重命名", "delete": "删除", "export_voice": "导出（zip）",
    "exported_voice": "导出的声音", "yours": "你的",
    "msg_consent": "请确认你有权使用这个声音。",
    "msg_upload_first": "请先上传或录制 3-10 秒的语音。",
    "msg_added": "已添加 {name}（{seconds:.1f} 秒）。", "msg_renamed": "已重命名为 {name}。", "msg_deleted": "已删除。",
    "aux_clips": "辅助音频（可选：每段 1-10 秒，同一个人；只补充音色，不提供文本）",
    "long_recording": "或者：一段较长的录音（最长 3 分钟）",
    "recording_intro": "上传最长三分钟的同一人讲话录音。录音会在停顿处切分；最好的一句作为主参考音频，"
                       "其次的几句补充音色。名称、语言和授权确认使用下方的设置。",
    "recording": "长录音", "recording_text": "录音内容（可选：填写后不再自动识别）",
    "cut": "切分为语句", "utterances": "语句（可在表格中修改文本）",
    "main_reference": "主参考音频", "play_utterance": "播放语句", "utterance_clip": "语句",
    "save_recording": "保存录音中的声音",
    "col_number": "#", "col_start": "开始（秒）", "col_end": "结束（秒）", "col_said": "内容",
    "col_problems": "问题", "col_role": "用途",
    "role_main": "主参考", "role_aux": "辅助", "role_spare": "备用", "role_dropped": "舍弃",
    "problem_too short": "太短", "problem_too long": "太长", "problem_silent": "无声",
    "problem_clipped": "削波失真", "problem_too quiet": "音量太小",
    "problem_not a complete sentence": "不是完整的句子", "problem_long pause inside": "中间停顿过长",
    "msg_recording_first": "请先上传或录制一段录音。",
    "msg_cut": "已切分为 {count} 个语句：第 {main} 句是主参考音频，{aux} 句补充音色。",
    "msg_no_main": "没有可以作为参考音频的语句（都太短、太长、无声、削波或音量太小）。",
    "msg_pick_main": "请先选择主参考音频。",
    "msg_added_recording": "已添加 {name}（{seconds:.1f} 秒，另有 {aux} 段辅助音频）。",
    "compare_intro": "同一段文本用两到四个声音并排合成，并为团队给每段音频打分。",
    "compare_text": "对比文本", "compare_voices": "声音（2-4 个）", "compare": "对比",
    "rating": "评分", "note": "备注", "save_ratings": "保存评分", "export_ratings": "导出评分（CSV）",
    "ratings_csv": "评分 CSV", "ranking": "团队排名（每个声音的平均分）",
    "col_voice": "声音", "col_count": "评分数", "col_mean": "平均分",
    "pron_intro": "输入一句话，查看它将如何发音：规范化文本和音素。",
    "version": "版本", "show_pronunciation": "查看发音", "normalized_text": "规范化文本",
    "phones": "音素", "parts": "分段", "details": "音素、编号与 word2ph",
    "g2pw_readings": "g2pW 读出的多音字：字、读音、概率（多音字词典与变调之前；未启用 g2pW 时为空）",
    "msg_pick_voice": "请先选择一个声音。",
    "msg_pick_compare": "请选择两到四个声音进行对比（当前 {count} 个）。",
    "msg_compare_first": "请先对比几个声音。",
    "msg_no_ratings": "此服务器不保存评分。",
    "msg_saved": "已保存 {count} 条评分。",
    "msg_rated_already": "这些片段已经评过分（每个片段只评一次）。请重新对比，再为新的片段评分。",
    "msg_timing": "{audio:.2f} 秒音频，用时 {wall:.2f} 秒（实时率 {rtf:.2f}）",
    "quality_check": "质量检查：识别合成结果，读错时换下一个种子重试",
    "msg_similarity": "音色相似度 {value:.3f}",
    "msg_similarity_na": "音色相似度不可用",
    "msg_seed": "种子 {seed}",
    "msg_quality": "质量检查：字错率 {cer:.2f}，共 {tries} 次合成",
    "msg_quality_skipped": "未进行质量检查：语音识别不可用",
    "progress_retry": "质量检查：字错率 {cer}，重新合成（第 {number} 次，共 {total} 次）",
    "progress_reading": "第 1 步（共 3 步）：读取文本",
    "progress_segment": "第 2 步（共 3 步）：生成语音，第 {number} 段，共 {total} 段",
    "progress_done": "第 3 步（共 3 步）：完成",
    "status_offline": "语音合成不可用：无法加载模型文件（可能处于离线状态）。声音库和发音预览仍可使用。",
    "status_details": "详情",
}

STRINGS = MappingProxyType({"en": MappingProxyType(_EN), "zh": MappingProxyType(_ZH)})

EXAMPLES = MappingProxyType({
    "zh": (("你好，欢迎来到语音工作室。今天天气不错，我们一起去公园散步吧。", "zh"),
           ("人工智能正在改变我们的生活，也改变了我们听到的声音。", "zh")),
    "en": (("Hello, and welcome to the voice studio.", "en"),
           ("The quick brown fox jumps over the lazy dog.", "en")),
})


def i18n() -> gr.I18n:
    """The translations Gradio sends to the browser (``zh`` also covers zh-CN, zh-TW)."""
    return gr.I18n(**{locale: dict(STRINGS[locale]) for locale in LOCALES})


def ui(key: str) -> I18nData:
    """A label the browser shows in its own language."""
    if key not in _EN:
        raise KeyError(f"no UI string {key!r}")
    return I18nData(key)


def locale_of(request: gr.Request | None) -> str:
    """The page's language (cookie set when a button is pressed), else the browser's preference: ``zh`` or ``en``."""
    headers = getattr(request, "headers", None) if request is not None else None
    if not headers:
        return "en"
    cookie = SimpleCookie(headers.get("cookie", "") or "").get(LOCALE_COOKIE)
    header = headers.get("accept-language", "") or ""
    for part in ([cookie.value] if cookie else []) + header.split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return "en"


def say(key: str, locale: str = "en", **fields) -> str:
    """A message for a person, in ``locale``, with ``fields`` filled in."""
    return STRINGS.get(locale, STRINGS["en"])[key].format(**fields)
