"""End to end in headless Chromium: upload a voice, add it, pick it, synthesize, hear audio.

Uses Debian's /usr/bin/chromium driven by Playwright (no browser download); skipped with a
clear message where Chromium is not installed. A screenshot lands in tests/artifacts/.
"""

import io
import re
import time
import shutil
from pathlib import Path

import httpx
import pytest
import soundfile as sf
from browser_page import DESKTOP, PHONE, open_page, require_chromium
from live_server import start_live_server

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live(reference_dir, tmp_path_factory):
    """(url, service) of a live app with the tiny models and the two example voices."""
    require_chromium()
    root = tmp_path_factory.mktemp("browser")
    shutil.copytree(Path(__file__).resolve().parent.parent / "speakers", root / "speakers")  # the two example voices
    server = start_live_server(reference_dir, root)
    yield server.base + "/", server.service
    server.stop()


@pytest.fixture(scope="module")
def live_url(live):
    return live[0]


def expect_message(page, text: str, timeout: float = 30_000) -> None:
    """Wait for a read-only text box holding ``text`` (messages that name a voice are plain text boxes)."""
    page.wait_for_function("t => [...document.querySelectorAll('textarea, input')].some((e) => e.value.includes(t))",
                           arg=text, timeout=timeout)


def test_add_a_voice_and_hear_it(live_url, reference_dir):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    with open_page(live_url) as page:
        page.get_by_role("tab", name="Add voice").click()
        page.locator("input[type=file]").first.set_input_files(str(reference_dir / "cases" / "v2_zh" / "ref.wav"))
        page.get_by_label("Transcript").fill("今天天气不错，我们一起去公园散步吧。")
        page.get_by_label("Name").fill("Browser voice")
        page.get_by_label("I have the right to use this voice", exact=False).check()
        page.get_by_role("button", name="Add speaker").click()
        expect_message(page, "Added Browser voice", timeout=120_000)
        page.get_by_role("tab", name="Synthesize").click()
        expect(page.get_by_label("Voice", exact=True)).to_have_value(re.compile("^Browser voice"))  # selected for you
        page.get_by_label("Text", exact=True).fill("你好，欢迎来到语音工作室。")
        button = page.get_by_role("button", name="Synthesize")
        button.click()
        expect(button).to_be_disabled(timeout=5_000)  # no second click while it works
        expect(page.get_by_text("real-time factor")).to_be_visible(timeout=180_000)
        expect(button).to_be_enabled()
        expect(page.locator(".gsv-history-clip")).to_have_count(1)  # the session's history keeps the clip
        page.screenshot(path=str(ARTIFACTS / "browser_synthesis.png"), full_page=True)
        # Gradio draws its own waveform player; the clip itself is behind the player's download link.
        link = page.locator('[data-testid="audio-player-Result"]').locator("xpath=ancestor::*[.//a[@download]][1]//a[@download]").first
        href = link.get_attribute("href")
    clip, rate = sf.read(io.BytesIO(httpx.get(href, timeout=30).content))
    duration = len(clip) / rate
    assert duration > 0.5


def _add_over_rest(url: str, reference_dir: Path, name: str) -> str:
    wav = (reference_dir / "cases" / "v2_zh" / "ref.wav").read_bytes()
    response = httpx.post(url + "api/speakers", files={"audio": ("ref.wav", wav, "audio/wav")},
                          data={"transcript": "今天天气不错，我们一起去公园散步吧。", "language": "zh", "name": name}, timeout=120)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_compare_two_voices_and_rate_them(live, reference_dir):
    from playwright.sync_api import expect

    live_url = live[0]
    for name in ("Reviewer A", "Reviewer B"):
        _add_over_rest(live_url, reference_dir, name)
    ARTIFACTS.mkdir(exist_ok=True)
    with open_page(live_url) as page:
        page.get_by_role("tab", name="Compare").click()
        page.get_by_label("Text to compare").fill("你好，世界。")
        speakers = page.get_by_label("Voices (2-4)")
        for name in ("Reviewer A", "Reviewer B"):
            speakers.click()
            page.get_by_role("option", name=name, exact=False).click()
        page.keyboard.press("Escape")  # close the option list
        page.get_by_role("button", name="Compare", exact=True).click()
        clips = []
        for name in ("Reviewer A", "Reviewer B"):  # clips are labelled by voice; the clip is behind the download link
            link = page.locator(f'[data-testid="audio-player-{name}"]').locator(
                "xpath=ancestor::*[.//a[@download]][1]//a[@download]").first
            expect(link).to_have_attribute("href", re.compile(r"^http"), timeout=180_000)
            clips.append(link.get_attribute("href"))
        page.get_by_label("Note").first.fill("<b>clear</b> & warm")
        page.get_by_label("Text to compare").fill("an edited text, not the one compared")
        page.get_by_role("button", name="Save ratings").click()
        expect(page.get_by_text("Saved 2 ratings.")).to_be_visible(timeout=30_000)
        ranking = page.locator("#gsv-ranking")
        for name in ("Reviewer A", "Reviewer B"):  # the team's ranking names the voices
            expect(ranking).to_contain_text(name)
        page.screenshot(path=str(ARTIFACTS / "browser_compare.png"), full_page=True)
    rows = live[1].ratings.rows()[-2:]
    assert [row[4] for row in rows] == ["你好，世界。"] * 2  # the text that made the clips
    assert all('"seed": 0' in row[8] and '"language": "zh"' in row[8] for row in rows)
    for src in clips:
        clip, rate = sf.read(io.BytesIO(httpx.get(src, timeout=30).content))
        assert rate == 32000 and len(clip) / rate > 0.3


def test_bad_input_is_explained_in_the_page(live_url, reference_dir):
    from playwright.sync_api import expect

    _add_over_rest(live_url, reference_dir, "Error check")
    with open_page(live_url) as page:
        page.get_by_label("Voice", exact=True).click()
        page.get_by_role("option", name="Error check", exact=False).click()
        page.get_by_role("button", name="Synthesize").click()  # no text yet
        expect(page.get_by_text("the text is empty")).to_be_visible(timeout=30_000)
        page.get_by_label("Text", exact=True).fill("😀😀😀")
        page.get_by_role("button", name="Synthesize").click()
        expect(page.get_by_text("the text has nothing to speak", exact=False).first).to_be_visible(timeout=60_000)
        expect(page.get_by_text("the text is empty")).to_have_count(0)  # one message at a time: the old one went
        page.get_by_role("tab", name="Add voice").click()
        page.get_by_role("button", name="Add speaker").click()  # no consent
        expect(page.get_by_text("Please confirm that you have the right to use this voice.")).to_be_visible(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "browser_errors.png"), full_page=True)


TABS = {"en-US": ("Synthesize", "Add voice", "Compare", "Pronunciation"), "zh-CN": ("合成", "添加声音", "对比", "发音")}


@pytest.mark.parametrize("locale", TABS)
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_every_tab_in_both_languages_and_sizes(live_url, locale, device):
    """The page speaks the browser's language; all four tabs are in reach on a phone (none behind a menu)."""
    from playwright.sync_api import expect

    shots = ARTIFACTS / "after"
    shots.mkdir(parents=True, exist_ok=True)
    with open_page(live_url, viewport=DESKTOP if device == "desktop" else PHONE, locale=locale) as page:
        intro = "Clone a voice" if locale == "en-US" else "克隆一个声音"
        expect(page.get_by_text(intro)).to_be_visible(timeout=30_000)
        expect(page.locator(".gsv-status")).to_contain_text("ready")
        voice = page.get_by_label("Voice" if locale == "en-US" else "声音", exact=True)
        expect(voice).to_have_value(re.compile("English" if locale == "en-US" else "普通话"))  # a voice in your language
        for number, tab in enumerate(TABS[locale]):
            expect(page.get_by_role("tab", name=tab, exact=True)).to_be_visible()
            page.get_by_role("tab", name=tab, exact=True).click()
            page.wait_for_timeout(300)
            page.screenshot(path=str(shots / f"{device}-{locale}-{number}.png"), full_page=True)
        leftover = page.locator("body").inner_text()
        assert "__i18n__" not in leftover, leftover[leftover.find("__i18n__") - 200:][:400]  # every label translated


def test_pronunciation_table_headers_fit_on_a_phone(live_url):
    from playwright.sync_api import expect

    with open_page(live_url, viewport=PHONE) as page:
        page.get_by_role("tab", name="Pronunciation").click()
        page.get_by_role("button", name="Show pronunciation").click()
        expect(page.locator("#gsv-parts tbody tr").first).to_contain_text("zh", timeout=60_000)
        headers = page.locator("#gsv-parts thead th").evaluate_all(
            "cells => cells.map((cell) => { const text = cell.querySelector('span, p, div') || cell;"
            " return {text: cell.innerText.trim(), scroll: text.scrollWidth, client: text.clientWidth,"
            " height: cell.getBoundingClientRect().height}; })")
        page.screenshot(path=str(ARTIFACTS / "after" / "phone-pronunciation-table.png"), full_page=True)
    headers = [h for h in headers if h["text"]]
    assert {"language", "phone ids"} <= {h["text"] for h in headers}, headers
    for header in headers:
        assert header["scroll"] <= header["client"], header  # no text overflowing its cell
        assert "\n" not in header["text"] and header["height"] < 60, header  # one line, not letter by letter


def test_voice_lists_follow_add_rename_and_delete_and_names_stay_text(live_url, reference_dir):
    """No manual refresh: Synthesize, Compare and Manage see a new, renamed or deleted voice at once."""
    from playwright.sync_api import expect

    name = "**bold** <b>tag</b>"
    with open_page(live_url) as page:
        page.get_by_role("tab", name="Add voice").click()
        page.locator("input[type=file]").first.set_input_files(str(reference_dir / "cases" / "v2_zh" / "ref.wav"))
        page.get_by_label("Transcript").fill("今天天气不错，我们一起去公园散步吧。")
        page.get_by_label("Name").fill(name)
        page.get_by_label("I have the right to use this voice", exact=False).check()
        page.get_by_role("button", name="Add speaker").click()
        expect_message(page, f"Added {name}", timeout=120_000)
        voice = page.get_by_label("Voice", exact=True).first
        expect(voice).to_have_value(re.compile(re.escape(name)))  # selected in Synthesize, as typed
        assert page.locator("b", has_text="tag").count() == 0 and page.locator("strong", has_text="bold").count() == 0
        _expect_option(page, "Compare", page.get_by_label("Voices (2-4)"), name, present=True)
        page.get_by_role("tab", name="Add voice").click()
        page.get_by_text("Manage voices").click()
        expect(page.get_by_label("New name")).to_be_visible()  # the accordion has rendered its list
        managed = page.get_by_label("Voice", exact=True).last
        managed.click()
        page.get_by_role("option", name=name, exact=False).click()
        page.get_by_label("New name").fill("Renamed voice")
        page.get_by_role("button", name="Rename").click()
        expect_message(page, "Renamed to Renamed voice.")
        page.get_by_role("tab", name="Synthesize").click()
        expect(page.get_by_label("Voice", exact=True).first).to_have_value(re.compile("^Renamed voice"))
        page.get_by_role("tab", name="Add voice").click()
        page.once("dialog", lambda dialog: dialog.dismiss())  # "Delete the voice ...?" -> Cancel
        page.get_by_role("button", name="Delete").click()
        expect_message(page, "Nothing deleted.")
        page.once("dialog", lambda dialog: dialog.accept())  # -> OK
        page.get_by_role("button", name="Delete").click()
        expect_message(page, "Deleted.")
        page.get_by_role("tab", name="Synthesize").click()
        expect(page.get_by_label("Voice", exact=True).first).not_to_have_value(re.compile("Renamed voice"))
        _expect_option(page, "Synthesize", page.get_by_label("Voice", exact=True).first, "Renamed voice", present=False)
        _expect_option(page, "Compare", page.get_by_label("Voices (2-4)"), "Renamed voice", present=False)
        page.screenshot(path=str(ARTIFACTS / "browser_lists.png"), full_page=True)


def _expect_option(page, tab: str, dropdown, name: str, present: bool) -> None:
    from playwright.sync_api import expect

    page.get_by_role("tab", name=tab, exact=True).click()
    dropdown.click()
    options = page.get_by_role("option").filter(has_text=name)
    expect(options).to_have_count(1 if present else 0)
    page.keyboard.press("Escape")


def test_compare_on_a_phone_is_compact(live_url, reference_dir):
    from playwright.sync_api import expect

    for name in ("Phone A", "Phone B"):
        _add_over_rest(live_url, reference_dir, name)
    with open_page(live_url, viewport=PHONE) as page:
        page.get_by_role("tab", name="Compare").click()
        expect(page.locator(".gsv-compare-clip")).to_have_count(0)  # no empty rating blocks before a comparison
        page.get_by_label("Text to compare").fill("你好。")
        for name in ("Phone A", "Phone B"):
            page.get_by_label("Voices (2-4)").click()
            page.get_by_role("option", name=name, exact=False).click()
        page.keyboard.press("Escape")
        page.get_by_role("button", name="Compare", exact=True).click()
        expect(page.locator('[data-testid="audio-player-Phone B"]')).to_have_count(1, timeout=180_000)
        expect(page.locator(".gsv-compare-clip")).to_have_count(2)  # two voices, two blocks
        height = page.evaluate("document.documentElement.scrollHeight")
        page.screenshot(path=str(ARTIFACTS / "after" / "phone-compare-two-voices.png"), full_page=True)
    assert height < 2100, height  # was 2,300 px with four empty rating blocks


def test_switching_to_chinese_in_settings_translates_labels_and_messages(live_url):
    from playwright.sync_api import expect

    with open_page(live_url, locale="en-US") as page:
        expect(page.get_by_role("tab", name="Compare", exact=True)).to_be_visible(timeout=30_000)
        page.get_by_text("Settings", exact=True).click()
        settings = page.get_by_role("dialog", name="Settings")
        settings.get_by_role("combobox").first.click()  # Gradio's own language switch
        page.get_by_role("option", name="中文", exact=False).first.click()
        expect(page.get_by_text("克隆一个声音")).to_be_attached()
        page.keyboard.press("Escape")  # close the option list, then the panel (a click beside it)
        page.mouse.click(10, 400)
        expect(page.get_by_role("dialog")).to_have_count(0)
        # (Gradio 6.31 re-translates only the selected tab's title on a switch; the others follow a reload)
        page.get_by_role("tab").nth(2).click()
        page.get_by_role("button", name="对比", exact=True).click()  # no voices picked
        expect(page.get_by_text("请选择两到四个声音进行对比（当前 0 个）。")).to_be_visible(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "after" / "desktop-switched-to-zh.png"), full_page=True)


def test_the_voice_sets_the_language_and_examples_fill_the_text(live_url):
    from playwright.sync_api import expect

    with open_page(live_url, locale="en-US") as page:
        voice, language = page.get_by_label("Voice", exact=True), page.get_by_label("Language", exact=True).first
        expect(voice).to_have_value(re.compile("^eSpeak English"), timeout=30_000)
        expect(language).to_have_value("English (en)")
        expect(page.locator('[data-testid="audio-player-Reference clip of this voice"]')).to_have_count(1)
        page.get_by_text("你好，欢迎来到语音工作室。今天天气不错", exact=False).first.click()  # a Chinese example
        expect(page.get_by_label("Text", exact=True)).to_have_value(re.compile("^你好，欢迎来到语音工作室"))
        expect(language).to_have_value("Chinese + English (zh)")
        voice.click()
        page.get_by_role("option", name="eSpeak 普通话", exact=False).click()
        expect(language).to_have_value("Chinese only (all_zh)")  # the language follows the voice


def test_japanese_is_offered_and_spoken(live_url, reference_dir):
    from playwright.sync_api import expect

    _add_over_rest(live_url, reference_dir, "Japanese reader")
    with open_page(live_url, locale="en-US") as page:
        voice = page.get_by_label("Voice", exact=True)
        voice.click()
        page.get_by_role("option", name=re.compile("^Japanese reader")).click()
        language = page.get_by_label("Language", exact=True).first
        language.click()
        page.get_by_role("option", name="Japanese (all_ja)").click()
        expect(language).to_have_value("Japanese (all_ja)")
        page.get_by_label("Text", exact=True).fill("おはようございます。今日はいい天気ですね。")
        page.get_by_role("button", name="Synthesize").click()
        expect(page.get_by_text("real-time factor")).to_be_visible(timeout=180_000)
        page.screenshot(path=str(ARTIFACTS / "browser_japanese.png"), full_page=True)


def test_the_page_plays_the_voice_while_it_is_made(live, reference_dir, monkeypatch):
    """The live player receives the voice in several pieces (HLS segments) before the synthesis ends.

    The tiny models make a whole clip in about a second, faster than the player polls its
    playlist; so the pieces are paced here as real-size models on a CPU make them (about one
    a second), which is what the page is for.
    """
    from playwright.sync_api import expect

    live_url, service = live
    stream = service.synthesis.synthesize_stream

    def paced(*args, **kwargs):
        for piece in stream(*args, **kwargs):
            time.sleep(1.0)
            yield piece

    monkeypatch.setattr(service.synthesis, "synthesize_stream", paced)
    _add_over_rest(live_url, reference_dir, "Live voice")
    playlists: list[tuple[float, int]] = []  # (when, how many pieces the live playlist listed)
    segments: list[tuple[float, str]] = []  # (when, which piece the player fetched)

    def on_response(response) -> None:
        if "/stream/" in response.url and response.url.endswith(".m3u8"):
            playlists.append((time.monotonic(), response.text().count(".aac")))
        elif "/stream/" in response.url and response.url.endswith(".aac"):
            segments.append((time.monotonic(), response.url))

    text = ("你好，欢迎使用语音合成。今天天气很好，我们一起去公园散步吧！晚上回到家里，妈妈做了饭，大家一起吃。"
            "第二天早上，我们起得很早，一起去爬山，风景非常美。山顶上的空气特别清新，我们在那里休息了很久。"
            "下午我们去了图书馆，里面非常安静，大家都在认真地看书。")  # long: the player polls several times
    with open_page(live_url, locale="en-US") as page:
        page.on("response", on_response)
        voice = page.get_by_label("Voice", exact=True)
        voice.click()
        page.get_by_role("option", name=re.compile("^Live voice")).click()
        page.get_by_label("Text", exact=True).fill(text)
        page.get_by_role("button", name="Synthesize").click()
        expect(page.get_by_text("real-time factor")).to_be_visible(timeout=180_000)
        done = time.monotonic()
    listed = max((count for when, count in playlists if when < done), default=0)
    fetched = len({url for when, url in segments if when < done})
    assert max(listed, fetched) >= 2, (playlists, segments)  # several pieces arrived before the synthesis ended


RECORDING_SENTENCES = {
    "fox": "The quick brown fox jumps over the lazy dog near the river bank today.",
    "yes": "Yes.",
    "shells": "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "rain": "The rain in Spain stays mainly in the plain, or so they say.",
    "wood": "How much wood would a woodchuck chuck if it could chuck wood?",
    "piper": "Peter Piper picked a peck of pickled peppers from the garden this morning.",
}


def test_a_voice_from_a_long_recording(live, tmp_path, monkeypatch):
    """Upload ~31 s of espeak-ng speech, cut it, pick another main and correct its words, play an utterance,
    save, synthesize.

    Whisper is a stand-in with the real pipeline interface that hears each sentence where it was said.
    """
    from espeak_speech import espeak_recording, whisper_chunks
    from playwright.sync_api import expect
    from whisper_fakes import FakeWhisperPipeline

    from voice_studio.transcriber import Transcriber

    live_url, service = live
    path, bounds = espeak_recording(tmp_path / "speech", RECORDING_SENTENCES)
    whisper = FakeWhisperPipeline(whisper_chunks(RECORDING_SENTENCES, bounds))
    monkeypatch.setattr(service, "transcriber", Transcriber("fake/whisper", load=lambda model, device: whisper))
    with open_page(live_url, locale="en-US") as page:
        page.get_by_role("tab", name="Add voice").click()
        page.get_by_text("Or: a long recording").click()
        page.locator("#gsv-recording input[type=file]").set_input_files(str(path))
        expect(page.locator('#gsv-recording [data-testid="waveform-controls"], #gsv-recording audio').first).to_be_attached(timeout=30_000)
        page.get_by_role("button", name="Cut into utterances").click()
        expect_message(page, "Cut into 6 utterances", timeout=60_000)
        table = page.locator("#gsv-utterances")
        expect(table.get_by_role("row")).to_have_count(7)  # the header and six utterances
        expect(table.get_by_test_id("cell-1-4")).to_have_text("too short")  # "Yes." is dropped, with its reason
        roles = [table.get_by_test_id(f"cell-{row}-5").inner_text().strip() for row in range(6)]
        assert roles.count("main") == 1 and roles.count("auxiliary") == 3 and roles[1] == "dropped", roles
        assert roles[0] != "main"  # the visitor picks the first sentence instead: the old main becomes an aid
        page.get_by_label("Main reference").click()
        page.get_by_role("option", name="#1 ", exact=False).click()
        expect(table.get_by_test_id("cell-0-5")).to_have_text("main")
        expect(table.get_by_test_id(f"cell-{roles.index('main')}-5")).to_have_text("auxiliary")
        cell = table.get_by_test_id("cell-0-3")
        cell.dblclick()
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.type("Corrected main sentence.")
        page.keyboard.press("Enter")
        expect(cell).to_contain_text("Corrected main sentence.")
        expect(page.get_by_label("Main reference")).to_have_value(re.compile("Corrected main sentence"))
        page.get_by_label("Play utterance").click()
        page.get_by_role("option", name="#3", exact=False).click()
        expect(page.locator('[data-testid="audio-player-Utterance"]')).to_have_count(1, timeout=30_000)
        page.get_by_label("Name").fill("Recorded voice")
        page.get_by_label("I have the right to use this voice", exact=False).check()
        page.get_by_role("button", name="Save the recording's voice").click()
        expect_message(page, "Added Recorded voice (", timeout=120_000)
        page.screenshot(path=str(ARTIFACTS / "browser_recording.png"), full_page=True)
        page.get_by_role("tab", name="Synthesize").click()
        expect(page.get_by_label("Voice", exact=True)).to_have_value(re.compile("^Recorded voice"))
        page.get_by_label("Text", exact=True).fill("Hello, this voice was cut from a long recording.")
        page.get_by_role("button", name="Synthesize").click()
        expect(page.get_by_text("real-time factor")).to_be_visible(timeout=180_000)
    stored = next(s for s in httpx.get(live_url + "api/speakers").json() if s["name"] == "Recorded voice")
    assert stored["transcript"] == "Corrected main sentence." and stored["language"] == "en"
    assert len(stored["aux_clips"]) == 3 and all(1.0 <= clip["duration_s"] <= 10.0 for clip in stored["aux_clips"])
    assert 3.0 <= stored["duration_s"] <= 10.0
