"""English text normalization, as upstream GPT-SoVITS ``english.text_normalize`` does it.

The steps run in upstream's order, because each one sees the output of the previous:
list ordinals ("1. " -> "first, "), arithmetic ("3 + 4" -> "3 plus 4"), negative numbers,
thousands separators, clock times, units, money, decimals, fractions, ordinals, cardinals
(years 1001-2999 read in pairs: "twenty twenty-four"), accents stripped, "%", everything
outside ``[ A-Za-z'.,?!-]`` dropped, "i.e."/"e.g." spelled out, a space before every
capital that follows a letter or punctuation (so "NASA" is read "N A S A"), and runs of
punctuation collapsed to their first mark.

Upstream quirks kept on purpose (the reference outputs depend on them): its punctuation map
is applied to literal strings, so ";" and ":" are simply deleted rather than turned into
commas; a single letter counts as an arithmetic operand ("Wait - what" -> "Wait minus what");
the negative-number rule swallows the whitespace before the sign ("is -5" -> "isnegative
five"); "1990s" is a measurement ("nineteen ninety seconds"). One deliberate difference:
money amounts whose digits upstream cannot parse (such as "(12$") raise there; here the
stray "(" and "," are ignored.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import inflect

# Upstream's punctuation map. Its keys are escaped before use, so the bracketed ones only
# ever match themselves literally: in practice only the full-width marks change.
_LITERAL_REPLACEMENTS = {"[;:：，；]": ",", '["’]': "'", "。": ".", "！": "!", "？": "?"}
_LITERAL_RE = re.compile("|".join(re.escape(key) for key in _LITERAL_REPLACEMENTS))

_UNITS = {  # unit suffix -> (singular, plural)
    "m": ("meter", "meters"),
    "km": ("kilometer", "kilometers"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "ft": ("feet", "feet"),
    "L": ("liter", "liters"),
    "tbsp": ("tablespoon", "tablespoons"),
    "tsp": ("teaspoon", "teaspoons"),
    "h": ("hour", "hours"),
    "min": ("minute", "minutes"),
    "s": ("second", "seconds"),
    "°C": ("degree celsius", "degrees celsius"),
    "°F": ("degree fahrenheit", "degrees fahrenheit"),
}
_CURRENCIES = {"£": ("pound", "pounds", "penny", "pence"), "$": ("dollar", "dollars", "cent", "cents")}
_OPERATORS = {"+": " plus ", "-": " minus ", "×": " times ", "÷": " divided by ", "=": " Equals "}

_SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ"
_OPERAND = rf"-?\d+(?:\.\d+)?[{_SUPERSCRIPTS}]*|\.\d+[{_SUPERSCRIPTS}]*|[A-Za-z][{_SUPERSCRIPTS}]*"

_LIST_ORDINAL_RE = re.compile(r"\b([0-9]+)\. ")
_ARITHMETIC_RE = re.compile(rf"({_OPERAND})\s+([+\-×÷=])\s+({_OPERAND})")
_NEGATIVE_RE = re.compile(r"(?:^|\s+)-(\d+)")
_GROUPED_NUMBER_RE = re.compile(r"[0-9][0-9,]+[0-9]")
_TIME_RE = re.compile(r"\b([01]?[0-9]|2[0-3]):([0-5][0-9])\b")
_MEASUREMENT_RE = re.compile(r"\b([0-9]+(\.[0-9]+)?(m|km|km/h|ft|L|tbsp|tsp|h|min|s|°C|°F))\b")
_MONEY_RES = (  # (pattern, currency symbol), in upstream's order; the "(" is upstream's too
    (re.compile(r"£([0-9.,]*[0-9]+)"), "£"),
    (re.compile(r"([0-9.,]*[0-9]+)£"), "£"),
    (re.compile(r"\$([0-9.,]*[0-9]+)"), "$"),
    (re.compile(r"([(0-9.,]*[0-9]+)\$"), "$"),
)
_DECIMAL_RE = re.compile(r"[0-9]+\.\s*[0-9]+")
_FRACTION_RE = re.compile(r"([0-9]+)/([0-9]+)")
_ORDINAL_RE = re.compile(r"[0-9]+(?:st|nd|rd|th)")
_NUMBER_RE = re.compile(r"[0-9]+")
_NOT_KEPT_RE = re.compile(r"[^ A-Za-z'.,?!\-]")
_CAPITAL_RE = re.compile(r"(?<!^)(?<!\s)([A-Z])")
_PUNCTUATION_RUN_RE = re.compile(r"([!?…,.\-\s])[!?…,.\-]+")


@lru_cache(maxsize=1)
def _inflect() -> inflect.engine:
    # Imported on first use: inflect's import costs seconds (typeguard instruments it), and
    # only text with digits needs it.
    import inflect

    return inflect.engine()


def normalize_en(text: str) -> str:
    """Normalize English text for the G2P: numbers, money, units and times spelled out.

    The result only holds ASCII letters, spaces and ``'.,?!-``.
    """
    text = _LITERAL_RE.sub(lambda m: _LITERAL_REPLACEMENTS[m.group()], text)
    text = _LIST_ORDINAL_RE.sub(lambda m: _inflect().ordinal(m.group(1)) + ", ", text)
    while _ARITHMETIC_RE.search(text):
        text = _ARITHMETIC_RE.sub(lambda m: m.group(1) + _OPERATORS[m.group(2)] + m.group(3), text)
    text = _NEGATIVE_RE.sub(r"negative \1", text)
    text = _GROUPED_NUMBER_RE.sub(lambda m: m.group().replace(",", ""), text)
    text = _TIME_RE.sub(_spell_time, text)
    text = _MEASUREMENT_RE.sub(_spell_measurement, text)
    for pattern, symbol in _MONEY_RES:
        text = pattern.sub(lambda m, symbol=symbol: _spell_money(m.group(1), *_CURRENCIES[symbol]), text)
    text = _DECIMAL_RE.sub(_spell_decimal, text)
    text = _FRACTION_RE.sub(_spell_fraction, text)
    text = _ORDINAL_RE.sub(lambda m: _inflect().number_to_words(m.group()), text)
    text = _NUMBER_RE.sub(lambda m: _spell_number(int(m.group())), text)
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    text = text.replace("%", " percent")
    text = _NOT_KEPT_RE.sub("", text)
    text = re.sub(r"(?i)i\.e\.", "that is", text)
    text = re.sub(r"(?i)e\.g\.", "for example", text)
    text = _CAPITAL_RE.sub(r" \1", text)
    return _PUNCTUATION_RUN_RE.sub(r"\1", text)


def _spell_time(match: re.Match) -> str:
    """24-hour clock to words: "13:30" -> "one thirty p.m.", "4:00" -> "four o'clock a.m."."""
    hours, minutes = int(match.group(1)), int(match.group(2))
    period = "a.m." if hours < 12 else "p.m."
    hour_words = _inflect().number_to_words(hours - 12 if hours > 12 else hours)
    if minutes == 0:
        return f"{hour_words} o'clock {period}"
    return f"{hour_words} {_inflect().number_to_words(minutes)} {period}"


def _spell_measurement(match: re.Match) -> str:
    """ "5km" -> "5 kilometers"; singular only for exactly 1 without a decimal part."""
    amount, decimals, unit = match.group(1, 2, 3)
    number = amount[: -len(unit)]
    singular = decimals is None and int(number) == 1
    return f"{number} {_UNITS[unit][0 if singular else 1]}"


def _digits_value(digits: str) -> int:
    # Upstream calls int() directly; its patterns can also capture "(" and ",", which raise there.
    return int(digits.replace("(", "").replace(",", "") or "0")


def _spell_money(amount: str, unit: str, units: str, subunit: str, subunits: str) -> str:
    """ "12.50" dollars -> "12 dollars and 50 cents" (the numbers are spelled later)."""
    parts = amount.split(".")
    if len(parts) > 2:
        return f"{amount} {units}"
    whole = _digits_value(parts[0])
    fraction = _digits_value(parts[1].ljust(2, "0")) if len(parts) > 1 and parts[1] else 0
    whole_words = f"{whole} {unit if whole == 1 else units}"
    fraction_words = f"{fraction} {subunit if fraction == 1 else subunits}"
    if whole and fraction:
        return f"{whole_words} and {fraction_words}"
    if whole:
        return whole_words
    if fraction:
        return fraction_words
    return f"zero {units}"


def _spell_decimal(match: re.Match) -> str:
    """ "13.25" -> "13 point 2 5": the digits after the point are read one by one."""
    whole, fraction = match.group().split(".")
    return f"{whole} point {' '.join(fraction)}"


def _spell_fraction(match: re.Match) -> str:
    """ "3/4" -> "three fourths", "1/2" -> "one half", "3/2" -> "three halves", "6/1" -> "six"."""
    numerator, denominator = int(match.group(1)), int(match.group(2))
    numerator_words = _inflect().number_to_words(numerator)
    if denominator == 2:
        return f"{numerator_words} {'half' if numerator == 1 else 'halves'}"
    if denominator == 1:
        return numerator_words
    denominator_words = _inflect().ordinal(_inflect().number_to_words(denominator))
    return f"{numerator_words} {denominator_words}{'s' if numerator > 1 else ''}"


def _spell_number(number: int) -> str:
    """Cardinals; 1001-2999 are read like years ("nineteen ninety", "two thousand five")."""
    words = _inflect().number_to_words
    if not 1000 < number < 3000:
        return words(number, andword="")
    if number == 2000:
        return "two thousand"
    if 2000 < number < 2010:
        return "two thousand " + words(number % 100)
    if number % 100 == 0:
        return words(number // 100) + " hundred"
    return words(number, andword="", zero="oh", group=2).replace(", ", " ")
