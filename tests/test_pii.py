"""Tests for PII masking: every kind in every way ASR writes it, and the short numbers that must survive."""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Iterator

import pytest

from callqa.data.pii import PiiLogFilter, PiiSpan, find_pii, mask_pii

# Realistic numbers. The ID starts with 13 (Hebei), so its first 11 digits look like a mobile number: a
# detector that does not treat the 18-digit run as one would report a phone inside it.
MOBILE = "13812345678"
ID = "130102199003071234"
CARD16 = "6222021234567890"
CARD19 = "6222021234567890123"


def only(text: str) -> PiiSpan:
    spans = find_pii(text)
    assert len(spans) == 1, spans
    return spans[0]


def assert_span(text: str, kind: str, raw: str) -> None:
    """The single span found has ``kind`` and covers exactly ``raw``, where ``raw`` occurs in ``text``."""
    span = only(text)
    start = text.index(raw)
    assert (span.kind, span.start, span.end, span.text) == (kind, start, start + len(raw), raw)


# --- each kind, each way of writing it ----------------------------------------------------------------------

PHONES = [
    ("我的手机是13812345678谢谢", "13812345678"),
    ("我的手机是一三八一二三四五六七八谢谢", "一三八一二三四五六七八"),
    ("号码幺三九零两三四五六七八对的", "幺三九零两三四五六七八"),
    ("号码是〇一〇八八八八九九九九吧", "〇一〇八八八八九九九九"),
    ("手机138一二三四5678", "138一二三四5678"),
    ("手机138-1234-5678。", "138-1234-5678"),
    ("手机 138 1234 5678 好的", "138 1234 5678"),
    ("手机一三八 一二三四 五六七八。", "一三八 一二三四 五六七八"),
    ("手机一三八，一二三四，五六七八。", "一三八，一二三四，五六七八"),
    ("手机１３８１２３４５６７８。", "１３８１２３４５６７８"),
    ("拨打+86 138-1234-5678联系", "+86 138-1234-5678"),
    ("拨打+8613812345678联系", "+8613812345678"),
    ("拨打86 13812345678联系", "86 13812345678"),
    ("座机010-88889999找王经理", "010-88889999"),
    ("座机0571-8888-9999找王经理", "0571-8888-9999"),
    ("座机02188889999找王经理", "02188889999"),
    ("座机零五七幺 八八八八九九九九找王经理", "零五七幺 八八八八九九九九"),
]


@pytest.mark.parametrize(("text", "raw"), PHONES)
def test_phone_found_with_exact_span(text: str, raw: str) -> None:
    assert_span(text, "phone", raw)


IDS = [
    (f"身份证号{ID}。", ID),
    ("身份证号11010519900101123X。", "11010519900101123X"),
    ("身份证号11010519900101123x。", "11010519900101123x"),
    ("身份证号一一〇一〇五一九九〇〇一〇一一二三叉，对", "一一〇一〇五一九九〇〇一〇一一二三叉"),
    ("身份证号110105 19900101 123X。", "110105 19900101 123X"),
    ("身份证号一三〇一〇二一九九〇〇三〇七一二三四。", "一三〇一〇二一九九〇〇三〇七一二三四"),
]


@pytest.mark.parametrize(("text", "raw"), IDS)
def test_id_found_with_exact_span(text: str, raw: str) -> None:
    assert_span(text, "id", raw)


CARDS = [
    (f"卡号{CARD16}。", CARD16),
    (f"卡号{CARD19}。", CARD19),
    ("卡号6222 0212 3456 7890 123。", "6222 0212 3456 7890 123"),
    ("卡号六二二二-〇二一二-三四五六-七八九〇。", "六二二二-〇二一二-三四五六-七八九〇"),
    # 18 digits whose positions 7-14 are no birth date: a card, not an ID (both are masked the same way).
    ("卡号622202123456789012。", "622202123456789012"),
]


@pytest.mark.parametrize(("text", "raw"), CARDS)
def test_card_found_with_exact_span(text: str, raw: str) -> None:
    assert_span(text, "card", raw)


def expected_mask(raw: str, keep_last: int = 4) -> str:
    """``raw`` with every number character but the last ``keep_last`` starred; separators and + kept."""
    positions = [k for k, c in enumerate(raw) if c not in " -,，+"]
    starred = set(positions[: max(len(positions) - keep_last, 0)])
    return "".join("*" if k in starred else c for k, c in enumerate(raw))


@pytest.mark.parametrize(("text", "raw"), PHONES + IDS + CARDS)
def test_mask_keeps_last_four_digits_and_separators(text: str, raw: str) -> None:
    start = text.index(raw)
    expected = text[:start] + expected_mask(raw) + text[start + len(raw) :]
    masked = mask_pii(text)
    assert masked == expected
    assert len(masked) == len(text)


def test_mask_examples_read_as_expected() -> None:
    assert mask_pii("手机138-1234-5678。") == "手机***-****-5678。"
    assert mask_pii("手机一三八 一二三四 五六七八") == "手机*** **** 五六七八"
    assert mask_pii("拨打+86 138 1234 5678") == "拨打+** *** **** 5678"
    assert mask_pii("证件号11010519900101123X") == "证件号**************123X"
    assert mask_pii("证件号一一〇一〇五一九九〇〇一〇一一二三叉") == "证件号**************一二三叉"


# --- what must be left alone --------------------------------------------------------------------------------

UNTOUCHED = [
    "您好，工号一零二三为您服务。",
    "您好，工号1023为您服务。",
    "请问是尾号五六七八的卡吗？",
    "尾号5678的那张卡。",
    "这个月扣了一百二十八元。",
    "套餐三十九元五角，比上个月多两千块。",
    "三月十五号办理的，三个工作日内到账。",
    "2023-03-15 办理的，金额1,280.50元。",
    "订单号123456789012请您记一下。",  # 12 digits not starting with 0: no kind
    "流水号1234567890123。",  # 13-15 digit runs are not one of our kinds
    "流水号123456789012345。",
    "编号12345678901。",  # 11 digits but not a mobile prefix (12…)
    "直拨88889999就行。",  # landline without area code: cannot be told from other 8-digit numbers
    "一会儿一个一个来，一二三四五六七八九。",
]


@pytest.mark.parametrize("text", UNTOUCHED)
def test_short_and_other_numbers_untouched(text: str) -> None:
    assert find_pii(text) == []
    assert mask_pii(text) == text


def test_eighteen_digit_id_is_one_id_not_a_phone_inside_it() -> None:
    assert ID[:11].startswith("13")  # the trap: a mobile-shaped prefix
    spans = find_pii(f"身份证{ID}，谢谢")
    assert [(s.kind, s.start, s.end) for s in spans] == [("id", 3, 21)]


def test_run_bordered_by_digits_is_one_run() -> None:
    # 12 contiguous digits containing a mobile number are one 12-digit run, which is no kind.
    assert find_pii(f"单号{MOBILE}9") == []
    assert find_pii(f"单号9{MOBILE}") == []
    assert find_pii("单号一三八一二三四五六七八九") == []


def test_two_numbers_in_one_sentence_both_masked() -> None:
    text = f"手机{MOBILE}，身份证{ID}，都对。"
    spans = find_pii(text)
    assert [s.kind for s in spans] == ["phone", "id"]
    assert mask_pii(text) == "手机*******5678，身份证**************1234，都对。"


def test_numbers_joined_by_separators_are_split_into_their_kinds() -> None:
    # A comma- or space-separated list must not be glued into one over-long run that matches nothing.
    text = "13812345678，13987654321"
    assert [(s.kind, s.text) for s in find_pii(text)] == [("phone", "13812345678"), ("phone", "13987654321")]
    assert mask_pii(text) == "*******5678，*******4321"
    # Greedy longest match would read the first 19 digits as a card; maximal coverage finds both phones.
    text = "0571-8888 9999 138 1234 5678"
    assert [s.text for s in find_pii(text)] == ["0571-8888 9999", "138 1234 5678"]
    assert [s.kind for s in find_pii(text)] == ["phone", "phone"]


def test_stray_chinese_digit_after_number_does_not_hide_it() -> None:
    text = "号码一三八一二三四五六七八，一会儿再打"
    assert_span(text, "phone", "一三八一二三四五六七八")
    assert mask_pii(text) == "号码*******五六七八，一会儿再打"


@pytest.mark.parametrize(
    ("text", "kind", "raw"),
    [
        ("座机010-88889999，一会儿打过去", "phone", "010-88889999"),
        ("卡号6222 0212 3456 7890，两张都是", "card", "6222 0212 3456 7890"),
        ("两，6222021234567890是卡号", "card", "6222021234567890"),
        (f"身份证{ID}，一个字都没错", "id", ID),
    ],
)
def test_lone_digit_word_beside_a_grouped_number_is_not_swallowed(text: str, kind: str, raw: str) -> None:
    # Landlines and cards have a range of lengths, so one more digit would still "fit" without the rule.
    assert_span(text, kind, raw)


def test_number_spelled_digit_by_digit_with_spaces_is_found() -> None:
    assert_span("手机 1 3 8 1 2 3 4 5 6 7 8 对", "phone", "1 3 8 1 2 3 4 5 6 7 8")
    assert_span("手机 幺 三八 一二三四 五六七八 对", "phone", "幺 三八 一二三四 五六七八")


def test_landline_extension_is_not_part_of_the_number() -> None:
    spans = find_pii("总机010-8888-9999-123")
    assert [s.text for s in spans] == ["010-8888-9999"]


def test_x_not_after_an_id_is_not_part_of_a_span() -> None:
    assert [s.text for s in find_pii("手机13812345678叉掉它")] == [MOBILE]
    assert find_pii("1234567X") == []


# --- masking options ----------------------------------------------------------------------------------------


def test_keep_last_zero_masks_every_digit() -> None:
    assert mask_pii(f"手机{MOBILE}", keep_last=0) == "手机***********"
    assert mask_pii("证件11010519900101123X", keep_last=0) == "证件******************"
    assert mask_pii("手机138-1234-5678", keep_last=0) == "手机***-****-****"


def test_keep_last_and_mask_char_options() -> None:
    assert mask_pii(f"手机{MOBILE}", keep_last=2, mask_char="#") == "手机#########78"
    assert mask_pii(f"手机{MOBILE}", keep_last=20) == f"手机{MOBILE}"


@pytest.mark.parametrize("bad", ["", "**", "[x]"])
def test_mask_char_must_be_one_character(bad: str) -> None:
    with pytest.raises(ValueError, match="one character"):
        mask_pii(MOBILE, mask_char=bad)


def test_negative_keep_last_rejected() -> None:
    with pytest.raises(ValueError, match="keep_last"):
        mask_pii(MOBILE, keep_last=-1)


def test_mask_preserves_length_and_offsets_on_mixed_text() -> None:
    text = f"客户：我手机一三八 一二三四 五六七八，卡号{CARD19}，身份证11010519900101123X。工号1023。" * 3
    masked = mask_pii(text)
    assert len(masked) == len(text)
    for span in find_pii(text):
        assert masked[span.start : span.end] != span.text
        assert masked[span.end - 4 : span.end] == text[span.end - 4 : span.end]
    assert "1023" in masked and masked.count("*") > 0


def test_spans_ordered_non_overlapping_and_match_text() -> None:
    text = f"{MOBILE} 和 {ID}，还有 {CARD16}；座机 010-88889999。" * 5
    spans = find_pii(text)
    assert len(spans) == 20
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))
    assert all(text[s.start : s.end] == s.text for s in spans)


def test_span_repr_does_not_leak_the_number() -> None:
    span = only(f"手机{MOBILE}")
    assert MOBILE not in repr(span)
    assert span.text == MOBILE


def test_numbers_embedded_in_random_text_are_all_found() -> None:
    rng = random.Random(7)
    filler = [*"您好请问有什么可以帮您的吗好的稍等谢谢对是的", "一会儿", "两个", "三月", "十五号"]
    for _ in range(200):
        number, kind = rng.choice(
            [(MOBILE, "phone"), (ID, "id"), (CARD16, "card"), ("010-88889999", "phone")]
        )
        before = "".join(rng.choices(filler, k=rng.randint(0, 8)))
        after = "".join(rng.choices(filler, k=rng.randint(0, 8)))
        # A digit word glued to the number (一会儿) would make it one longer run, by design; a comma or space
        # before it must not: the number is still found on its own.
        before += "是"
        text = before + number + rng.choice(["，", " ", "。"]) + after
        span = only(text)
        assert (span.kind, span.start, span.text) == (kind, len(before), number)


# --- logging ------------------------------------------------------------------------------------------------


@pytest.fixture
def pii_logger(caplog: pytest.LogCaptureFixture) -> Iterator[logging.Logger]:
    logger = logging.getLogger("callqa.tests.pii")
    pii_filter = PiiLogFilter()
    caplog.handler.addFilter(pii_filter)
    caplog.set_level(logging.INFO, logger=logger.name)
    yield logger
    caplog.handler.removeFilter(pii_filter)


def test_log_filter_masks_formatted_message(
    pii_logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    pii_logger.info("customer %s called from %s about card %s", "张三", MOBILE, CARD16)
    assert MOBILE not in caplog.text and CARD16 not in caplog.text
    assert "*******5678" in caplog.text and "************7890" in caplog.text
    record = caplog.records[-1]
    assert record.getMessage() == "customer 张三 called from *******5678 about card ************7890"


def test_log_filter_masks_records_propagated_from_child_loggers(
    pii_logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    logging.getLogger(pii_logger.name + ".child").warning("id=%s", ID)
    assert ID not in caplog.text and "**************1234" in caplog.text


def test_log_filter_masks_exception_text(
    pii_logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    try:
        raise ValueError(f"bad phone {MOBILE}")
    except ValueError:
        pii_logger.exception("lookup failed")
    assert MOBILE not in caplog.text and "bad phone *******5678" in caplog.text


def test_log_filter_survives_bad_format_args_without_leaking(
    pii_logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    pii_logger.info("two placeholders %s %s", MOBILE)
    assert MOBILE not in caplog.text and "*******5678" in caplog.text


def test_log_filter_keeps_records_without_numbers_unchanged(
    pii_logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    pii_logger.info("agent %s scored %d", "1023", 95)
    assert caplog.records[-1].getMessage() == "agent 1023 scored 95"


# --- long and adversarial input ---------------------------------------------------------------------------
# Speed is measured in bench/pii.py; here long inputs must still come back correct and the same length.


@pytest.mark.parametrize("text", ["1 " * 5000, "1-" * 5000, "一" * 10_000, "1 ,  " * 2000 + "x"])
def test_adversarial_input_masks_and_keeps_length(text: str) -> None:
    masked = mask_pii(text)
    assert len(masked) == len(text)
    for span in find_pii(text):
        visible = [c for c in masked[span.start : span.end] if c not in " -,*"]
        assert len(visible) == 4, span.kind
    if not find_pii(text):
        assert masked == text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("run 1272084d485d4362b03091117631ebc3 not found", "run 1272084d485d4362b03091117631ebc3 not found"),
        ("file_13812345678.wav", "file_13812345678.wav"),
        ("电话13812345678，谢谢", "电话*******5678，谢谢"),
        ("身份证11010519491231002X", "身份证**************002X"),
    ],
)
def test_digits_inside_identifiers_are_not_numbers(text: str, masked: str) -> None:
    """A hex run id or a file name holds digit runs of a landline's length; they are not spoken numbers."""
    assert mask_pii(text) == masked
