"""Chinese text normalization: non-standard words (numbers, dates, times, units, ...) to characters.

The rules and their order follow the normalizer GPT-SoVITS uses (from PaddleSpeech), so the
same input gives the same characters: traditional characters are simplified, full-width
letters and digits made ASCII, then dates, times, ranges, temperatures, units, arithmetic,
powers, fractions, percentages, phone numbers and finally plain numbers are spelled out.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache
from importlib.resources import files

from .numbers import read_cardinal, read_clock_part, read_digits, read_number

_SENTENCE_END = re.compile(r"([：、，；。？！,;?!][”’]?)")
_DROPPED_ZH = re.compile(r"[——《》【】<>{}()（）#&@“”^_|\\]")
_DROPPED_AFTER = re.compile(r"[-——《》【】<=>{}()（）#&@“”^_|\\]")

_FULL_WIDTH = str.maketrans(
    {chr(ord(c) + 65248): c for c in string.ascii_letters + string.digits} | {"\u3000": " "}
)
_SYMBOL_WORDS = {
    "/": "每", "①": "一", "②": "二", "③": "三", "④": "四", "⑤": "五", "⑥": "六", "⑦": "七", "⑧": "八",
    "⑨": "九", "⑩": "十", "α": "阿尔法", "β": "贝塔", "γ": "伽玛", "Γ": "伽玛", "δ": "德尔塔", "Δ": "德尔塔",
    "ε": "艾普西龙", "ζ": "捷塔", "η": "依塔", "θ": "西塔", "Θ": "西塔", "ι": "艾欧塔", "κ": "喀帕",
    "λ": "拉姆达", "Λ": "拉姆达", "μ": "缪", "ν": "拗", "ξ": "克西", "Ξ": "克西", "ο": "欧米克伦", "π": "派",
    "Π": "派", "ρ": "肉", "ς": "西格玛", "Σ": "西格玛", "σ": "西格玛", "τ": "套", "υ": "宇普西龙", "φ": "服艾",
    "Φ": "服艾", "χ": "器", "ψ": "普赛", "Ψ": "普赛", "ω": "欧米伽", "Ω": "欧米伽", "+": "加", "-": "减",
    "×": "乘", "÷": "除", "=": "等",
}
_SYMBOLS = re.compile("|".join(re.escape(s) for s in _SYMBOL_WORDS))

# measure abbreviations, replaced in this order wherever they appear
_MEASURES = (
    ("cm2", "平方厘米"), ("cm²", "平方厘米"), ("cm3", "立方厘米"), ("cm³", "立方厘米"), ("cm", "厘米"),
    ("db", "分贝"), ("ds", "毫秒"), ("kg", "千克"), ("km", "千米"), ("m2", "平方米"), ("m²", "平方米"),
    ("m³", "立方米"), ("m3", "立方米"), ("ml", "毫升"), ("m", "米"), ("mm", "毫米"), ("s", "秒"),
)
_UNIT_ALTERNATION = "%|°C|℃|度|摄氏度|cm2|cm²|cm3|cm³|cm|db|ds|kg|km|m2|m²|m³|m3|ml|m|mm|s"
_QUANTIFIERS = (
    "(处|台|架|枚|趟|幅|平|方|堵|间|床|株|批|项|例|列|篇|栋|注|亩|封|艘|把|目|套|段|人|所|朵|匹|张|座|回|场|尾|条|个|首|阙|阵|网|炮|顶|丘|棵|只|支|袭|辆|挑|担|颗|壳|窠|曲|墙|群|腔|砣|座|客|贯|扎|捆|刀|令|打|手|罗|坡|山|岭|江|溪|钟|队|单|双|对|出|口|头|脚|板|跳|枝|件|贴|针|线|管|名|位|身|堂|课|本|页|家|户|层|丝|毫|厘|分|钱|两|斤|担|铢|石|钧|锱|忽|(千|毫|微)克|毫|厘|(公)分|分|寸|尺|丈|里|寻|常|铺|程|(千|分|厘|毫|微)米|米|撮|勺|合|升|斗|石|盘|碗|碟|叠|桶|笼|盆|盒|杯|钟|斛|锅|簋|篮|盘|桶|罐|瓶|壶|卮|盏|箩|箱|煲|啖|袋|钵|年|月|日|季|刻|时|周|天|秒|分|小时|旬|纪|岁|世|更|夜|春|夏|秋|冬|代|伏|辈|丸|泡|粒|颗|幢|堆|条|根|支|道|面|片|张|颗|块|元|(亿|千万|百万|万|千|百)|(亿|千万|百万|万|千|百|美|)元|(亿|千万|百万|万|千|百|十|)吨|(亿|千万|百万|万|千|百|)块|角|毛|分)"
)
_POWER_DIGITS = {"⁰": "0", "¹": "1", "²": "2", "³": "3", "⁴": "4", "⁵": "5", "⁶": "6", "⁷": "7", "⁸": "8", "⁹": "9", "ˣ": "x", "ʸ": "y", "ⁿ": "n"}
_OPERAND = r"((-?)((\d+)(\.\d+)?[⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]*)|(\.\d+[⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]*)|([A-Za-z][⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]*))"
_OPERATORS = {"+": "加", "-": "减", "×": "乘", "÷": "除", "=": "等于"}
_CLOCK = r"([0-1]?[0-9]|2[0-3]):([0-5][0-9])(:([0-5][0-9]))?"

DATE = re.compile(r"(\d{4}|\d{2})年((0?[1-9]|1[0-2])月)?(((0?[1-9])|((1|2)[0-9])|30|31)([日号]))?")
NUMERIC_DATE = re.compile(r"(\d{4})([- /.])(0[1-9]|1[012])\2(0[1-9]|[12][0-9]|3[01])")
TIME_RANGE = re.compile(_CLOCK + r"(~|-)" + _CLOCK)
TIME = re.compile(_CLOCK)
UNIT_RANGE = re.compile(
    rf"((-?)((\d+)(\.\d+)?)|(\.(\d+)))({_UNIT_ALTERNATION})[~]((-?)((\d+)(\.\d+)?)|(\.(\d+)))({_UNIT_ALTERNATION})"
)
TEMPERATURE = re.compile(r"(-?)(\d+(\.\d+)?)(°C|℃|度|摄氏度)")
ARITHMETIC = re.compile(_OPERAND + r"([\+\-\×÷=])" + _OPERAND)
POWER = re.compile(r"[⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]+")
FRACTION = re.compile(r"(-?)(\d+)/(\d+)")
PERCENTAGE = re.compile(r"(-?)(\d+(\.\d+)?)%")
MOBILE = re.compile(r"(?<!\d)((\+?86 ?)?1([38]\d|5[0-35-9]|7[678]|9[89])\d{8})(?!\d)")
LANDLINE = re.compile(r"(?<!\d)((0(10|2[1-3]|[3-9]\d{2})-?)?[1-9]\d{6,7})(?!\d)")
SERVICE_NUMBER = re.compile(r"(400)(-)?\d{3}(-)?\d{4}")
RANGE = re.compile(r"(?<![\d\+\-\×÷=])((-?)((\d+)(\.\d+)?))[-~]((-?)((\d+)(\.\d+)?))(?![\d\+\-\×÷=])")
NEGATIVE = re.compile(r"(-)(\d+)")
VERSION = re.compile(r"((\d+)(\.\d+)(\.\d+)?(\.\d+)+)")
DECIMAL = re.compile(r"(-?)((\d+)(\.\d+))|(\.(\d+))")
COUNTED = re.compile(r"(\d+)([多余几\+])?" + _QUANTIFIERS)
LONG_DIGITS = re.compile(r"\d{3}\d*")
NUMBER = re.compile(r"(-?)((\d+)(\.\d+)?)|(\.(\d+))")


@lru_cache(maxsize=1)
def _simplified_table() -> dict[int, str]:
    table = {}
    for line in files(__package__).joinpath("data/traditional_to_simplified.tsv").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            traditional, simplified = line.split("\t")
            table[ord(traditional)] = simplified
    return table


def to_simplified(text: str) -> str:
    """Character-by-character traditional -> simplified conversion."""
    return text.translate(_simplified_table())


def _date(match: re.Match) -> str:
    year, month, day = match.group(1), match.group(3), match.group(5)
    spoken = f"{read_digits(year)}年"
    if month:
        spoken += f"{read_cardinal(month)}月"
    if day:
        spoken += f"{read_cardinal(day)}{match.group(9)}"
    return spoken


def _numeric_date(match: re.Match) -> str:
    return f"{read_digits(match.group(1))}年{read_cardinal(match.group(3))}月{read_cardinal(match.group(4))}日"


def _clock(hour: str, minute: str, second: str | None, half_hour: bool) -> str:
    spoken = f"{read_number(hour)}点"
    if minute.lstrip("0"):
        spoken += "半" if half_hour else f"{read_clock_part(minute)}分"
    if second and second.lstrip("0"):
        spoken += f"{read_clock_part(second)}秒"
    return spoken


def _time(match: re.Match) -> str:
    groups = match.groups()
    first_half = int(groups[1]) == 30
    spoken = _clock(groups[0], groups[1], groups[3], first_half)
    if len(groups) > 5:  # a range; upstream tests the first minute for "半" on both ends
        spoken += "至" + _clock(groups[5], groups[6], groups[8], first_half)
    return spoken


def _temperature(match: re.Match) -> str:
    sign = "零下" if match.group(1) else ""
    unit = "摄氏度" if match.group(4) == "摄氏度" else "度"
    return f"{sign}{read_number(match.group(2))}{unit}"


def _measures(text: str) -> str:
    for abbreviation, word in _MEASURES:
        text = text.replace(abbreviation, word)
    return text


def _signed(sign: str) -> str:
    return "负" if sign else ""


def _plain_number(match: re.Match) -> str:
    if match.group(5):
        return read_number(match.group(5))
    return f"{_signed(match.group(1))}{read_number(match.group(2))}"


def _range(match: re.Match) -> str:
    return f"{NUMBER.sub(_plain_number, match.group(1))}到{NUMBER.sub(_plain_number, match.group(6))}"


def _counted(match: re.Match) -> str:
    number = read_number(match.group(1))
    approx = "多" if match.group(2) == "+" else (match.group(2) or "")
    return f"{'两' if number == '二' else number}{approx}{match.group(3)}"


def _version(match: re.Match) -> str:
    return "".join("点" if c == "." else read_number(c) for c in match.group(1))


def _phone(match: re.Match, mobile: bool) -> str:
    value = match.group(0)
    parts = value.strip("+").split() if mobile else value.split("-")
    return "，".join(read_digits(part, alt_one=True) for part in parts)


_RULES = (
    (DATE, _date),
    (NUMERIC_DATE, _numeric_date),
    (TIME_RANGE, _time),
    (TIME, _time),
    (UNIT_RANGE, lambda m: m.group(0).replace("~", "至")),
    (TEMPERATURE, _temperature),
)
_LATER_RULES = (
    (FRACTION, lambda m: f"{_signed(m.group(1))}{read_number(m.group(3))}分之{read_number(m.group(2))}"),
    (PERCENTAGE, lambda m: f"{_signed(m.group(1))}百分之{read_number(m.group(2))}"),
    (MOBILE, lambda m: _phone(m, mobile=True)),
    (LANDLINE, lambda m: _phone(m, mobile=False)),
    (SERVICE_NUMBER, lambda m: _phone(m, mobile=False)),
    (RANGE, _range),
    (NEGATIVE, lambda m: f"{_signed(m.group(1))}{read_number(m.group(2))}"),
    (VERSION, _version),
    (DECIMAL, _plain_number),
    (COUNTED, _counted),
    (LONG_DIGITS, lambda m: read_digits(m.group(0), alt_one=True)),
    (NUMBER, _plain_number),
)


def normalize_sentence(sentence: str) -> str:
    """Spell out the non-standard words of one sentence."""
    sentence = to_simplified(sentence).translate(_FULL_WIDTH)
    for pattern, replace in _RULES:
        sentence = pattern.sub(replace, sentence)
    sentence = _measures(sentence)
    while ARITHMETIC.search(sentence):
        sentence = ARITHMETIC.sub(lambda m: m.group(1) + _OPERATORS[m.group(8)] + m.group(9), sentence)
    sentence = POWER.sub(lambda m: "的" + "".join(_POWER_DIGITS[c] for c in m.group(0)) + "次方", sentence)
    for pattern, replace in _LATER_RULES:
        sentence = pattern.sub(replace, sentence)
    sentence = _SYMBOLS.sub(lambda m: _SYMBOL_WORDS[m.group(0)], sentence)
    return _DROPPED_AFTER.sub("", sentence)


def split_sentences(text: str) -> list[str]:
    """Spaces and brackets dropped, then one sentence per clause mark."""
    text = _DROPPED_ZH.sub("", text.replace(" ", ""))
    text = _SENTENCE_END.sub(r"\1\n", text).strip()
    return [sentence.strip() for sentence in re.split(r"\n+", text)]
