"""The Chinese frontend: normalization categories, sandhi, erhua, the phone table, pronunciation control.

Row-level parity with the official goldens is in test_frontend_parity.py; here every
expected reading comes from a golden part or is a plain fact of Mandarin.
"""

import json

import pytest

from gsv_core.text.frontend import TextFrontend
from gsv_core.text.lexicon import Lexicon, load_lexicon
from gsv_core.text.zh import g2p_zh, normalize_zh
from gsv_core.text.zh.numbers import read_cardinal, read_number
from gsv_core.text.zh.pinyin import syllable_phones
from gsv_core.text.zh.normalize import to_simplified


@pytest.fixture(scope="module")
def official_lexicon(official_data_dir):
    return load_lexicon(official_data=official_data_dir)


def test_zh_parts_of_the_public_corpus(reference_dir, official_lexicon):
    """Every Chinese part normalizes and phonemizes as the official (the ￥ pause path is the cleaner's)."""
    symbols = {v: set(json.loads((reference_dir / f"symbols_{v}.json").read_text())) for v in ("v1", "v2")}
    checked = 0
    for line in (reference_dir / "text" / "frontend_public.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["language"] not in ("all_zh", "zh"):
            continue
        for part in row["parts"]:
            if part["lang"] != "zh" or "￥" in part["text"]:
                continue
            assert normalize_zh(part["text"], row["version"]) == part["norm_text"], row["id"]
            phones, word2ph = g2p_zh(part["norm_text"], row["version"], official_lexicon)
            phones = [p if p in symbols[row["version"]] else "UNK" for p in phones]
            assert (phones, word2ph) == (part["phones"], part["word2ph"]), row["id"]
            checked += 1
    assert checked >= 130


@pytest.mark.parametrize(
    "text, spoken",
    [
        ("10", "十"), ("105", "一百零五"), ("1000", "一千"), ("100000000", "一亿"), ("3.50", "三点五零"), (".5", "零点五"),
    ],
)
def test_numbers(text, spoken):
    assert read_number(text) == spoken


def test_cardinal_drops_a_leading_one_before_ten():
    assert read_cardinal("15") == "十五" and read_cardinal("115") == "一百一十五"


@pytest.mark.parametrize(
    "text, normalized",
    [
        ("2024年3月15日", "二零二四年三月十五日"),
        ("8:30", "八点半"),
        ("温度-3℃", "温度零下三度"),
        ("3/4的人", "四分之三的人"),
        ("增长了25%", "增长了百分之二十五"),
        ("电话13800138000", "电话幺三八零零幺三八零零零"),
        ("3个苹果", "三个苹果"),
        ("2个人", "两个人"),
        ("3~5天", "三到五天"),
        ("版本1.2.3", "版本一点二点三"),
        ("國語", "国语"),
    ],
)
def test_normalization_categories(text, normalized):
    assert normalize_zh(text, "v2") == normalized


def test_to_simplified_keeps_simplified_text():
    assert to_simplified("這是繁體字") == "这是繁体字"
    assert to_simplified("这是简体字") == "这是简体字"


def test_pinyin_rules_equal_the_official_table(official_data_dir):
    for line in (official_data_dir / "opencpop-strict.txt").read_text().splitlines():
        syllable, phones = line.split("\t")
        assert syllable_phones(syllable) == tuple(phones.split(" ")), syllable


def _finals(text: str, lexicon: Lexicon = Lexicon(), version: str = "v2") -> list[str]:
    phones, _ = g2p_zh(text, version, lexicon)
    return phones[1::2]


def test_tone_sandhi():
    assert _finals("你好")[0] == "i2"  # two third tones: the first rises
    assert _finals("不是")[0] == "u2"  # 不 before a fourth tone
    assert _finals("一个")[0] == "i2"  # 一 before a fourth tone
    assert _finals("一天")[0] == "i4"  # 一 before other tones
    assert _finals("我的")[-1] == "e5"  # the particle 的 is neutral


def test_erhua_only_in_v2(official_lexicon):
    phones_v2, word2ph_v2 = g2p_zh("哪儿", "v2", official_lexicon)
    phones_v1, _ = g2p_zh("哪儿", "v1", official_lexicon)
    assert word2ph_v2 == [2, 2]
    assert phones_v2[-1] == "er" + phones_v2[1][-1]  # 儿 takes the tone of the syllable before it
    assert phones_v1[-1] == "er2"  # v1 reads 儿 as its own syllable, 'er2' (pypinyin's dictionary tone)


def test_forced_character_reading_and_user_words(tmp_path):
    default = TextFrontend.load()
    forced = TextFrontend.load(zh_char_readings={"行": "hang2"})
    assert "ing2" in default.phonemize("行", "all_zh", "v2").phones
    assert "ang2" in forced.phonemize("行", "all_zh", "v2").phones
    user_dict = tmp_path / "mine.rep"
    user_dict.write_text("重庆  chong2 qing4\n", encoding="utf-8")
    custom = TextFrontend.load(user_dicts=[user_dict])
    phones = custom.phonemize("我在重庆。", "all_zh", "v2").phones
    assert ["ch", "ong2", "q", "ing4"] == list(phones[phones.index("ch"):phones.index("ch") + 4])
    # the default frontend is untouched by the other one's words
    assert default.lexicon.zh_words == {}
