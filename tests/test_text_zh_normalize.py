"""Chinese normalization, one category at a time.

Expected values are how the written form is read aloud in Mandarin (and what the official
normalizer gives); corpus-level parity is in test_text_zh.py.
"""

import pytest

from gsv_core.text.zh import normalize_zh
from gsv_core.text.zh.normalize import to_simplified
from gsv_core.text.zh.numbers import read_cardinal, read_digits, read_number


@pytest.mark.parametrize(
    "text, spoken",
    [("10", "十"), ("105", "一百零五"), ("1000", "一千"), ("100000000", "一亿"), ("3.50", "三点五零"), (".5", "零点五"),
     ("0.05", "零点零五"), ("20.0", "二十点零"), ("10010", "一万零一十"), ("250000", "二十五万")],
)
def test_numbers(text, spoken):
    assert read_number(text) == spoken


def test_cardinal_drops_a_leading_one_before_ten():
    assert read_cardinal("15") == "十五" and read_cardinal("115") == "一百一十五"


def test_digit_strings_read_one_as_yao():
    assert read_digits("110") == "一一零" and read_digits("110", alt_one=True) == "幺幺零"


def test_number_with_two_points_is_an_error():
    with pytest.raises(ValueError, match="more than one decimal point"):
        read_number("1.2.3")


@pytest.mark.parametrize(
    "text, normalized",
    [
        # dates and times
        ("2024年3月15日", "二零二四年三月十五日"),
        ("2024-03-15", "二零二四年三月十五日"),
        ("2024/03/15", "二零二四年三月十五日"),
        ("8:30", "八点半"),
        ("15:00", "十五点"),
        ("10:05:09", "十点零五分零九秒"),
        # money, counts and measure words (二 -> 两 before a measure word)
        ("价格4999元", "价格四千九百九十九元"),
        ("12.50元", "十二点五零元"),
        ("3个苹果", "三个苹果"),
        ("2个人", "两个人"),
        ("第2名", "第两名"),
        ("100万", "一百万"),
        ("2.5万", "二点五万"),
        # percentages, fractions, signs
        ("增长了25%", "增长了百分之二十五"),
        ("增长12.5%", "增长百分之十二点五"),
        ("3/4的人", "四分之三的人"),
        ("-10", "负十"),
        ("温度-3℃", "温度零下三度"),
        ("气温23.6°C", "气温二十三点六度"),
        # units
        ("5kg", "五千克"),
        ("3km", "三千米"),
        ("20cm²", "二十平方厘米"),
        ("10~20cm", "十到二十厘米"),
        # ranges, arithmetic, powers
        ("3~5天", "三到五天"),
        ("1+2=3", "一加二等于三"),
        ("10÷2=5", "十除二等于五"),
        # phone numbers and long digit strings
        ("电话13800138000", "电话幺三八零零幺三八零零零"),
        ("电话010-12345678", "电话零幺零减幺二三四五六七八"),
        ("编号12345", "编号幺二三四五"),
        ("版本1.2.3", "版本一点二点三"),
        # symbols
        ("α粒子", "阿尔法粒子"),
        ("①号", "一号"),
        # traditional characters, full-width letters and digits
        ("國語", "国语"),
        ("１２３个", "一百二十三个"),
    ],
)
def test_normalization_categories(text, normalized):
    assert normalize_zh(text, "v2") == normalized


@pytest.mark.parametrize(
    "text, normalized",
    [
        ("你好：世界；再见", "你好,世界,再见"),  # full-width marks -> the six pause marks
        ("真的吗？！", "真的吗?"),  # runs of marks collapse to the first
        ("他说：“明天见。”然后走了。", "他说,明天见.然后走了."),  # quotes dropped
        ("《红楼梦》——名著", "红楼梦名著"),  # brackets and dashes dropped
        ("好吧～那就这样", "好吧…那就这样"),
        ("嗯，呣", "恩,母"),  # interjections pypinyin cannot map are respelled
        ("😀表情 和 abc", "表情和"),  # anything else outside Chinese is dropped
    ],
)
def test_punctuation_and_symbols(text, normalized):
    assert normalize_zh(text, "v2") == normalized


def test_versions_normalize_alike():
    text = "本季度营收同比增长12.5%，毛利率约为38%。"
    assert normalize_zh(text, "v1") == normalize_zh(text, "v2")


def test_to_simplified():
    assert to_simplified("繁體字測試：這個軟體非常好用，價格也很便宜。") == "繁体字测试：这个软体非常好用，价格也很便宜。"
    assert to_simplified("这是简体字, ABC 123") == "这是简体字, ABC 123"
