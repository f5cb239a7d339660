"""The Chinese G2P: corpus parts, sandhi, erhua, the phone table, pronunciation control.

Row-level parity with the official goldens is in test_frontend_parity.py; here every
expected reading comes from a golden part or is a plain fact of Mandarin. Normalization
categories are in test_text_zh_normalize.py.
"""

import json

import jieba
import pytest

from gsv_core.text.errors import TextError
from gsv_core.text.frontend import TextFrontend
from gsv_core.text.lexicon import Lexicon, load_lexicon
from gsv_core.text.zh import g2p_zh, normalize_zh
from gsv_core.text.zh.pinyin import derived_pinyin_table, syllable_phones

# The cleaner's pause marks (its rule, applied here so every Chinese part is checked):
# the mark reads as a comma and every comma phone becomes the pause symbol.
PAUSE_MARKS = {"￥": "SP2", "^": "SP3"}
# Syllables pypinyin knows that upstream's table lacks (upstream fails on them); our
# derived table reads them by the same rules. Only rare characters have them as first reading.
EXTRA_DERIVED_SYLLABLES = {"biang", "bong", "din", "fiao", "len", "nia", "wong"}


@pytest.fixture(scope="module")
def official_lexicon(official_data_dir):
    return load_lexicon(official_data=official_data_dir)


def _zh_parts(reference_dir):
    for line in (reference_dir / "text" / "frontend_public.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["language"] in ("all_zh", "zh"):
            yield from ((row, part) for part in row["parts"] if part["lang"] == "zh")


def test_zh_parts_of_the_public_corpus(reference_dir, official_lexicon):
    """Every Chinese part of the public corpus (v1 and v2) normalizes and phonemizes as the official."""
    symbols = {v: set(json.loads((reference_dir / f"symbols_{v}.json").read_text())) for v in ("v1", "v2")}
    failures, parts = [], list(_zh_parts(reference_dir))
    for row, part in parts:
        text, version = part["text"], row["version"]
        pause = next((PAUSE_MARKS[m] for m in PAUSE_MARKS if m in text), None)
        if pause:
            text = next(text.replace(m, ",") for m in PAUSE_MARKS if m in text)
        norm_text = normalize_zh(text, version)
        phones, word2ph = g2p_zh(norm_text, version, official_lexicon)
        phones = [(pause if pause and p == "," else p) if p in symbols[version] else "UNK" for p in phones]
        if (norm_text, phones, word2ph) != (part["norm_text"], part["phones"], part["word2ph"]):
            failures.append(row["id"])
    assert len(parts) == 134
    assert failures == []


def test_derived_table_equals_the_official_one(official_data_dir):
    official = {}
    for line in (official_data_dir / "opencpop-strict.txt").read_text().splitlines():
        syllable, phones = line.split("\t")
        official[syllable] = tuple(phones.split(" "))
    derived = derived_pinyin_table()
    assert {s: derived.get(s) for s in official} == official
    assert set(derived) - set(official) == EXTRA_DERIVED_SYLLABLES


@pytest.mark.parametrize("syllable, phones", [("zhi", ("zh", "ir")), ("si", ("s", "i0")), ("yan", ("y", "En")),
                                              ("ye", ("y", "E")), ("ju", ("j", "v")), ("er", ("EE", "er"))])
def test_syllable_rules(syllable, phones):
    assert syllable_phones(syllable) == phones


@pytest.mark.parametrize("syllable", ["m", "ng", "hm", "hng", "ê", "bx", ""])
def test_syllables_without_a_phone_pair_are_rejected(syllable):
    with pytest.raises(TextError):
        syllable_phones(syllable)
    assert syllable not in derived_pinyin_table()


def _finals(text: str, version: str = "v2", lexicon: Lexicon = Lexicon()) -> list[str]:
    phones, word2ph = g2p_zh(text, version, lexicon)
    assert word2ph == [2] * len(text)
    return phones[1::2]


@pytest.mark.parametrize(
    "word, finals",
    [
        ("你好", ["i2", "ao3"]),  # two third tones: the first rises
        ("展览馆", ["an2", "an2", "uan3"]),  # 2+1 third tones
        ("纸老虎", ["ir3", "ao2", "u3"]),  # 1+2 third tones
        ("不去", ["u2", "v4"]),  # 不 before a fourth tone
        ("不来", ["u4", "ai2"]),
        ("看不懂", ["an4", "u5", "ong3"]),  # 不 inside a verb-complement is neutral
        ("一下", ["i2", "ia4"]),  # 一 before a fourth tone
        ("一天", ["i4", "ian1"]),  # 一 before other tones
        ("看一看", ["an4", "i5", "an4"]),  # 一 between a repeated verb is neutral
        ("第一", ["i4", "i1"]),  # ordinal 一 keeps its tone
        ("一二三", ["i1", "er4", "an1"]),  # 一 counting digits keeps its tone
        ("妈妈", ["a1", "a5"]),  # reduplicated noun
        ("我们", ["o3", "en5"]),  # suffixes 们/子, particles, directional complements
        ("桌子", ["uo1", "i05"]),
        ("走了", ["ou3", "e5"]),
        ("上来", ["ang4", "ai5"]),
        ("三个", ["an1", "e5"]),
    ],
)
def test_tone_sandhi(word, finals):
    assert _finals(word) == finals


def test_erhua_only_in_v2(official_lexicon):
    assert _finals("哪儿", "v2") == ["a3", "er3"]  # 儿 takes the tone of the syllable before it
    assert _finals("哪儿", "v1") == ["a3", "er2"]  # v1 reads 儿 as its own syllable
    assert _finals("一会儿", "v2") == ["i2", "ui4", "er4"]
    assert _finals("女儿", "v2") == ["v3", "er2"]  # a real 儿 (daughter), not erhua


def test_erhua_sentence_from_the_corpus(reference_dir, official_lexicon):
    row, part = next((r, p) for r, p in _zh_parts(reference_dir) if "胡同儿" in p["text"] and r["version"] == "v2")
    assert g2p_zh(part["norm_text"], "v2", official_lexicon) == (part["phones"], part["word2ph"])


def test_punctuation_is_one_phone():
    assert g2p_zh("好,走.", "v2", Lexicon()) == (["h", "ao3", ",", "z", "ou3", "."], [2, 1, 2, 1])


def test_bad_input_is_a_text_error():
    with pytest.raises(TextError, match="version"):
        g2p_zh("你好", "v3", Lexicon())
    with pytest.raises(TextError, match="unexpected symbol"):
        g2p_zh("你好@", "v2", Lexicon())


def test_user_words_and_character_readings_win_everywhere():
    jieba.dt.check_initialized()
    total = jieba.dt.total
    lexicon = Lexicon(zh_words={"一行": ("yi4", "hang2"), "淼鑫": ("miao3", "xin1")}, zh_char_readings={"长": "chang2"})
    default = Lexicon()
    # "一" merges with the next word for sandhi; the user's reading still holds
    assert _finals("一行人", lexicon=default)[1] == "ing2"
    assert _finals("一行人", lexicon=lexicon)[1] == "ang2"
    phones, _ = g2p_zh("行长", "v2", lexicon)
    assert phones[2:] == ["ch", "ang2"]
    # the default lexicon and jieba's global dictionary are untouched
    assert _finals("一行人", lexicon=default)[1] == "ing2"
    assert _finals("淼鑫", lexicon=lexicon) == ["iao3", "in1"]
    assert "淼鑫" not in jieba.dt.FREQ and jieba.dt.total == total


def test_user_word_syllables_are_checked():
    with pytest.raises(TextError, match="not a Mandarin syllable"):
        g2p_zh("你好", "v2", Lexicon(zh_words={"重庆": ("chong2", "qx4")}))
    with pytest.raises(TextError, match="2 pinyin syllables for 3 characters"):
        g2p_zh("你好", "v2", Lexicon(zh_words={"重庆市": ("chong2", "qing4")}))


def test_forced_readings_through_the_frontend(tmp_path):
    default = TextFrontend.load()
    forced = TextFrontend.load(zh_char_readings={"行": "hang2"})
    assert "ing2" in default.phonemize("行", "all_zh", "v2").phones
    assert "ang2" in forced.phonemize("行", "all_zh", "v2").phones
    user_dict = tmp_path / "mine.rep"
    user_dict.write_text("重庆  chong2 qing4\n", encoding="utf-8")
    custom = TextFrontend.load(user_dicts=[user_dict])
    phones = custom.phonemize("我在重庆。", "all_zh", "v2").phones
    assert ["ch", "ong2", "q", "ing4"] == list(phones[phones.index("ch"):phones.index("ch") + 4])
    assert default.lexicon.zh_words == {}
