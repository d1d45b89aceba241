"""Slot values for the sentence templates, written the way a Chinese agent would say them.

Every value is spoken by espeak-ng and is also the ASR target, so numbers never appear as Arabic digits:
amounts and counts are read as numbers (一百二十八元), identifiers digit by digit (一三八零 …). Agents
read numbers the careful way; the ``*_spoken``/``*_fix``/``order_code`` slots are the way customers say
the same values: 幺 for one and commas between digit groups (幺三八，幺二三四，五六七八), 块 and 毛
(一百二十八块五), and a date said wrong and corrected (三月五号，不对，三月七号). Latin letters (订单号
A 幺三五, VIP) are left out on purpose: the shipped base's vocabulary has none, and it must stay.
Values are sampled once per call so that, e.g., ``{phone_last4}`` is the tail of the same ``{phone}``
the customer gave earlier: a call is consistent, and the confidentiality item can be scored on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np

SLOT_NAMES: Final[frozenset[str]] = frozenset(
    {
        "agent_no",
        "agent_name",
        "customer_name",
        "amount",
        "date",
        "time",
        "days",
        "hours",
        "product",
        "order_no",
        "phone",
        "phone_last4",
        "id_no",
        "id_last4",
        "card_no",
        "card_last4",
        "address",
        "courier",
        "company",
        "phone_spoken",
        "date_fix",
        "amount_spoken",
        "order_code",
    }
)

#: Slots that carry a full personal number: reading one back is a confidentiality (信息安全) breach.
FULL_NUMBER_SLOTS: Final[frozenset[str]] = frozenset({"phone", "phone_spoken", "id_no", "card_no"})
#: Slots that carry only the last four digits: the masked, allowed way to confirm a number.
LAST4_SLOTS: Final[frozenset[str]] = frozenset({"phone_last4", "id_last4", "card_last4"})

_DIGITS: Final = "零一二三四五六七八九"
_SMALL_UNITS: Final = ((1000, "千"), (100, "百"), (10, "十"))

_AGENT_NAMES: Final = (
    "小王", "小李", "小张", "小刘", "小陈", "小杨", "小赵", "小黄", "小周", "小吴", "小林", "小孙",
)  # fmt: skip
_SURNAMES: Final = (
    "张", "王", "李", "赵", "刘", "陈", "杨", "黄", "周", "吴",
    "徐", "孙", "马", "朱", "胡", "郭", "何", "高", "林", "罗",
)  # fmt: skip
_TITLES: Final = ("先生", "女士")
_RELATIVE_DATES: Final = (
    "昨天", "前天", "上周五", "上周一", "上个星期三", "大前天", "上个月底", "月初", "上礼拜二", "礼拜天",
)  # fmt: skip
_WEEKDAYS: Final = ("一", "二", "三", "四", "五", "六", "日")
_DAY_PREFIXES: Final = ("", "", "今天", "明天", "后天")
_DAY_PARTS: Final = (("上午", (8, 9, 10, 11)), ("下午", (1, 2, 3, 4, 5)), ("晚上", (6, 7, 8)))
_WORK_DAYS: Final = ("三", "五", "七", "十")
_HOURS: Final = ("十二", "二十四", "四十八", "七十二")
_GENERIC_PRODUCTS: Final = ("畅享套餐", "宽带业务", "会员服务", "流量加油包", "增值业务")
_DISTRICTS: Final = (
    "朝阳区", "海淀区", "西城区", "浦东新区", "徐汇区", "天河区", "越秀区", "南山区",
    "福田区", "武侯区", "锦江区", "西湖区", "鼓楼区", "江汉区", "雨花区", "历下区",
)  # fmt: skip
_ROADS: Final = (
    "建国路", "人民路", "中山路", "解放路", "长江路", "和平街", "文化路", "幸福路",
    "学府路", "光明街", "新华路", "东风路", "滨江大道", "青年路", "花园街", "团结路",
)  # fmt: skip
_ESTATES: Final = ("阳光花园", "幸福小区", "金色家园", "翠湖苑", "华府新城", "东方明珠小区")
_COURIERS: Final = ("顺丰", "中通", "圆通", "韵达", "申通", "京东物流", "中国邮政", "极兔")
_COMPANIES: Final = ("华讯通信", "众联电信", "天和通信", "星海网络", "安达通讯")
#: Region codes of real districts, so that ``{id_no}`` looks like a resident ID to a human reader.
_REGION_CODES: Final = ("110105", "110108", "310104", "310115", "440106", "440305", "510107", "330106")
_CARD_PREFIXES: Final = ("622202", "622848", "621700", "622588", "621226", "622609")
_AMOUNT_RANGES: Final = ((5, 100), (100, 1000), (1000, 5000))
_AMOUNT_CDF: Final = (0.45, 0.9)
_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK: Final = "10X98765432"


def spoken_digits_zh(digits: str, groups: Sequence[int]) -> str:
    """Read an identifier as a customer does: 幺 for one, a comma between groups (幺三八，幺二三四，…)."""
    if sum(groups) != len(digits):
        raise ValueError(f"groups {list(groups)} do not add up to the {len(digits)} digits of {digits!r}")
    spoken = digits_zh(digits).replace("一", "幺")
    parts, at = [], 0
    for g in groups:
        parts.append(spoken[at : at + g])
        at += g
    return "，".join(parts)


def amount_spoken_zh(yuan: int, jiao: int = 0) -> str:
    """Money as a customer says it: 一百二十八块五, 两块, 五毛 (the same sum as ``amount_zh``)."""
    if yuan < 0 or not 0 <= jiao <= 9:
        raise ValueError(f"amount_spoken_zh expects yuan >= 0 and 0 <= jiao <= 9, got {yuan}, {jiao}")
    if yuan == 0:
        return ("两" if jiao == 2 else _DIGITS[jiao]) + "毛"
    head = ("两" if yuan == 2 else number_zh(yuan)) + "块"
    return head + (_DIGITS[jiao] if jiao else "")


def digits_zh(digits: str) -> str:
    """Read an identifier digit by digit, as agents do for phone, ID and order numbers (no 幺)."""
    if not digits.isascii() or not digits.isdigit():
        raise ValueError(f"digits_zh expects ASCII digits, got {digits!r}")
    return "".join(_DIGITS[int(d)] for d in digits)


def _below_10k(n: int, leading: bool) -> str:
    """Read 0 < n < 10000; ``leading`` drops the 一 of 一十 (十二, but 一百一十二)."""
    out: list[str] = []
    pending_zero = False
    for unit, name in _SMALL_UNITS:
        digit, n = divmod(n, unit)
        if digit == 0:
            pending_zero = bool(out)
            continue
        if pending_zero:
            out.append("零")
            pending_zero = False
        if unit >= 100 and digit == 2:
            out.append("两")
        elif not (unit == 10 and digit == 1 and leading and not out):
            out.append(_DIGITS[digit])
        out.append(name)
    if n:
        if out and pending_zero:
            out.append("零")
        out.append(_DIGITS[n])
    return "".join(out)


def number_zh(n: int) -> str:
    """Read a count or amount the spoken way: 十, 一百二十八, 两千零五, 两万, 三十万零五百.

    Two before 百/千/万 is always 两 (两百, 两千零五, 两万) and 二 elsewhere (二十, 十二), which is how
    amounts are said on the phone; the choice is fixed so that transcripts of one number never differ.
    """
    if not 0 <= n < 100_000_000:
        raise ValueError(f"number_zh supports 0 <= n < 100000000, got {n}")
    if n == 0:
        return "零"
    high, low = divmod(n, 10_000)
    if not high:
        return _below_10k(low, leading=True)
    head = "两" if high == 2 else _below_10k(high, leading=True)
    if not low:
        return head + "万"
    gap = "零" if low < 1000 else ""
    return head + "万" + gap + _below_10k(low, leading=False)


def amount_zh(yuan: int, jiao: int = 0) -> str:
    """Money as said on a hotline: 一百二十八元, 三十九元五角, 五角 (no 分: bills round to 角)."""
    if yuan < 0 or not 0 <= jiao <= 9:
        raise ValueError(f"amount_zh expects yuan >= 0 and 0 <= jiao <= 9, got {yuan}, {jiao}")
    if jiao == 0:
        return number_zh(yuan) + "元"
    head = number_zh(yuan) + "元" if yuan else ""
    return head + _DIGITS[jiao] + "角"


def _choice(rng: np.random.Generator, values: Sequence[str]) -> str:
    """Pick by index so the value stays a plain ``str`` (rng.choice would give numpy.str_)."""
    return values[int(rng.integers(len(values)))]


def _random_digits(rng: np.random.Generator, count: int) -> str:
    return "".join(str(int(d)) for d in rng.integers(0, 10, size=count))


def _sample_amount(rng: np.random.Generator) -> tuple[int, int]:
    """Mostly whole-yuan sums of a few tens to a few hundred yuan, sometimes with 角, as bills have."""
    low, high = _AMOUNT_RANGES[int(np.searchsorted(_AMOUNT_CDF, rng.random(), side="right"))]
    yuan = int(rng.integers(low, high))
    jiao = int(rng.integers(1, 10)) if rng.random() < 0.25 else 0
    return yuan, jiao


def _sample_date(rng: np.random.Generator) -> str:
    """Customers give absolute dates (三月十五号) more often than relative ones (上周五)."""
    if rng.random() < 0.3:
        return _choice(rng, _RELATIVE_DATES)
    month, day = int(rng.integers(1, 13)), int(rng.integers(1, 29))
    if rng.random() < 0.2:
        return f"{number_zh(month)}月{number_zh(day)}号星期{_choice(rng, _WEEKDAYS)}"
    return f"{number_zh(month)}月{number_zh(day)}号"


def _sample_time(rng: np.random.Generator) -> str:
    """Clock times say 两点, never 二点."""
    part, hours = _DAY_PARTS[int(rng.integers(len(_DAY_PARTS)))]
    hour = hours[int(rng.integers(len(hours)))]
    spoken = "两" if hour == 2 else number_zh(hour)
    half = "半" if rng.random() < 0.25 else ""
    return f"{_choice(rng, _DAY_PREFIXES)}{part}{spoken}点{half}"


def _sample_id_no(rng: np.random.Generator) -> str:
    """An 18-digit resident ID with a valid check digit; seeds whose check digit is X are re-drawn
    (the corpus reads IDs digit by digit, and X would need a Latin letter)."""
    region = _choice(rng, _REGION_CODES)
    while True:
        birth = f"{int(rng.integers(1955, 2005))}{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}"
        body = region + birth + _random_digits(rng, 3)
        check = _ID_CHECK[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True)) % 11]
        if check != "X":
            return body + check


def _luhn_digit(body: str) -> str:
    total = 0
    for i, d in enumerate(reversed(body)):
        v = int(d) * (2 if i % 2 == 0 else 1)
        total += v - 9 if v > 9 else v
    return str((10 - total % 10) % 10)


def _sample_card_no(rng: np.random.Generator) -> str:
    """A UnionPay-style 16 or 19 digit card number with a valid Luhn digit."""
    length = 16 if rng.random() < 0.6 else 19
    prefix = _choice(rng, _CARD_PREFIXES)
    body = prefix + _random_digits(rng, length - len(prefix) - 1)
    return body + _luhn_digit(body)


def _sample_address(rng: np.random.Generator) -> str:
    """District, road and house number; sometimes an estate with 栋 and a room read digit by digit."""
    street = f"{_choice(rng, _DISTRICTS)}{_choice(rng, _ROADS)}{number_zh(int(rng.integers(1, 300)))}号"
    if rng.random() < 0.4:
        room = f"{int(rng.integers(1, 30))}{int(rng.integers(1, 5)):02d}"
        return f"{street}{_choice(rng, _ESTATES)}{number_zh(int(rng.integers(1, 20)))}栋{digits_zh(room)}室"
    return street


def sample_slots(
    rng: np.random.Generator, scenario_slots: Mapping[str, Sequence[str]] | None = None
) -> dict[str, str]:
    """Draw one value per slot for a whole call, so that repeated and derived slots agree.

    ``scenario_slots`` overrides the value list of any slot (``product`` in practice), because what is
    bought or subscribed depends on the scenario. The draw order is fixed, so a given rng state always
    gives the same values.
    """
    lists = dict(scenario_slots or {})
    unknown = set(lists) - SLOT_NAMES
    if unknown:
        raise KeyError(f"scenario slot lists name unknown slots: {sorted(unknown)}")
    phone = "1" + str(int(rng.integers(3, 10))) + _random_digits(rng, 9)
    id_no = _sample_id_no(rng)
    card_no = _sample_card_no(rng)
    yuan, jiao = _sample_amount(rng)
    date = _sample_date(rng)
    wrong_date = _sample_date(rng)
    order = str(int(rng.integers(1, 10))) + _random_digits(rng, int(rng.integers(9, 12)))
    code = _random_digits(rng, 10)
    values = {
        "agent_no": digits_zh(str(int(rng.integers(1000, 10000)))),
        "agent_name": _choice(rng, _AGENT_NAMES),
        "customer_name": _choice(rng, _SURNAMES) + _choice(rng, _TITLES),
        "amount": amount_zh(yuan, jiao),
        "date": date,
        "time": _sample_time(rng),
        "days": _choice(rng, _WORK_DAYS),
        "hours": _choice(rng, _HOURS),
        "product": _choice(rng, _GENERIC_PRODUCTS),
        "order_no": digits_zh(order),
        "phone": digits_zh(phone),
        "phone_last4": digits_zh(phone[-4:]),
        "id_no": digits_zh(id_no),
        "id_last4": digits_zh(id_no[-4:]),
        "card_no": digits_zh(card_no),
        "card_last4": digits_zh(card_no[-4:]),
        "address": _sample_address(rng),
        "courier": _choice(rng, _COURIERS),
        "company": _choice(rng, _COMPANIES),
        "phone_spoken": spoken_digits_zh(phone, (3, 4, 4)),
        "date_fix": date if wrong_date == date else f"{wrong_date}，不对，{date}",
        "amount_spoken": amount_spoken_zh(yuan, jiao),
        "order_code": spoken_digits_zh(code, (4, 3, 3)),
    }
    for name in sorted(lists):
        if not lists[name]:
            raise ValueError(f"scenario slot list {name!r} is empty")
        values[name] = _choice(rng, lists[name])
    return values


class _StrictSlots(dict[str, str]):
    """A mapping for ``str.format_map`` whose misses name the template, so a typo in the YAML is found."""

    def __init__(self, template_id: str, slots: Mapping[str, str]) -> None:
        super().__init__(slots)
        self.template_id = template_id

    def __missing__(self, key: str) -> str:
        raise KeyError(f"template {self.template_id!r} uses unknown slot {key!r}")


def fill(template_id: str, text: str, slots: Mapping[str, str]) -> str:
    """Substitute slots into a template; an unknown slot raises KeyError naming template and slot."""
    return text.format_map(_StrictSlots(template_id, slots))
