"""Chinese readings of digits, cardinals and decimals (pure functions)."""

from __future__ import annotations

DIGIT_NAMES = "零一二三四五六七八九"
# digits-count threshold -> unit; a number is split before its largest unit that fits
_UNITS = ((8, "亿"), (4, "万"), (3, "千"), (2, "百"), (1, "十"))


def read_digits(digits: str, alt_one: bool = False) -> str:
    """Digit by digit: "110" -> "一一零" (or "幺幺零" for phone numbers with ``alt_one``)."""
    spoken = "".join(DIGIT_NAMES[int(d)] for d in digits)
    return spoken.replace("一", "幺") if alt_one else spoken


def _cardinal_parts(digits: str, use_zero: bool = True) -> list[str]:
    significant = digits.lstrip("0")
    if not significant:
        return []
    if len(significant) == 1:
        if use_zero and len(significant) < len(digits):
            return [DIGIT_NAMES[0], DIGIT_NAMES[int(significant)]]
        return [DIGIT_NAMES[int(significant)]]
    power, unit = next((p, u) for p, u in _UNITS if p < len(significant))
    return _cardinal_parts(digits[:-power]) + [unit] + _cardinal_parts(digits[-power:])


def read_cardinal(digits: str) -> str:
    """A whole number: "10" -> "十", "105" -> "一百零五", "0" -> "零"."""
    if not digits:
        return ""
    digits = digits.lstrip("0")
    if not digits:
        return DIGIT_NAMES[0]
    parts = _cardinal_parts(digits)
    if len(parts) >= 2 and parts[0] == DIGIT_NAMES[1] and parts[1] == "十":
        parts = parts[1:]  # 十五, not 一十五
    return "".join(parts)


def read_number(value: str) -> str:
    """An unsigned number with at most one decimal point: "3.50" -> "三点五零"."""
    whole, _, decimals = value.partition(".")
    if "." in decimals:
        raise ValueError(f"{value!r} has more than one decimal point")
    spoken = read_cardinal(whole)
    decimals = decimals.rstrip("0") + "0" if decimals.endswith("0") else decimals.rstrip("0")
    if decimals:
        spoken = (spoken or DIGIT_NAMES[0]) + "点" + read_digits(decimals)
    return spoken


def read_clock_part(value: str) -> str:
    """Minutes and seconds keep a spoken leading zero: "05" -> "零五"."""
    spoken = read_number(value.lstrip("0"))
    return DIGIT_NAMES[0] + spoken if value.startswith("0") else spoken
