"""The template bank and slot filling: what the corpus generator and the labels rely on."""

from __future__ import annotations

import copy
import hashlib
import random
import re
from collections import Counter
from importlib import resources
from typing import Any

import numpy as np
import pytest
import yaml

from callqa.data.constants import SPLITS
from callqa.data.synth.colloquial import roughen
from callqa.data.synth.slots import (
    FULL_NUMBER_SLOTS,
    LAST4_SLOTS,
    SLOT_NAMES,
    amount_spoken_zh,
    amount_zh,
    digits_zh,
    fill,
    number_zh,
    sample_slots,
    spoken_digits_zh,
)
from callqa.data.synth.templates import COMMON, COMMON_KINDS, SCENARIO_KINDS, TemplateBank, assign_splits

SCENARIOS = {
    "billing": "话费账单",
    "delivery": "快递物流",
    "cancellation": "退订销户",
    "complaint": "服务投诉",
    "fault": "故障报修",
    "refund": "退款",
    "account_change": "变更业务",
    "callback": "回访",
    "bank_card": "银行信用卡",
    "insurance_claim": "保险理赔",
    "hospital_booking": "医院预约",
    "utility_bill": "水电燃气",
    "travel_booking": "出行预订",
    "public_hotline": "政务热线",
    "appliance_repair": "售后维修",
    "subscription": "会员订阅",
}
SPOKEN = re.compile(r"[\u4e00-\u9fff，。？！、]+")
ZH_DIGITS = "零一二三四五六七八九"


@pytest.fixture(scope="module")
def bank() -> TemplateBank:
    return TemplateBank.load()


def _raw(name: str) -> Any:
    text = resources.files("callqa.data.synth").joinpath("templates", name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _slots_for(bank: TemplateBank, scope: str, seed: int) -> dict[str, str]:
    lists = None if scope == COMMON else bank.scenario_slots(scope)
    return sample_slots(np.random.default_rng(seed), lists)


def _used_slots(text: str) -> set[str]:
    return set(re.findall(r"\{([a-z_0-9]+)\}", text))


def _to_ascii(zh: str) -> str:
    return "".join(str(ZH_DIGITS.index(c)) for c in zh)


# --- the bank ---------------------------------------------------------------------------------------------


def test_bank_is_large_and_has_exactly_the_sixteen_scenarios(bank: TemplateBank) -> None:
    assert len(bank.all()) >= 900
    assert bank.scenarios == list(SCENARIOS)
    for scenario, name in SCENARIOS.items():
        assert bank.scenario_name_zh(scenario) == name
        assert bank.scenario_slots(scenario)["product"]


def test_group_sizes_meet_the_held_out_quotas(bank: TemplateBank) -> None:
    sizes = Counter((t.scope, t.speaker, t.kind) for t in bank.all())
    for speaker, kinds in COMMON_KINDS.items():
        for kind in kinds:
            assert sizes[(COMMON, speaker, kind)] >= 6, (speaker, kind)
    for scenario in SCENARIOS:
        for speaker, kinds in SCENARIO_KINDS.items():
            for kind in kinds:
                need = 4 if kind in {"unresolved", "followup"} else 5
                assert sizes[(scenario, speaker, kind)] >= need, (scenario, speaker, kind)


def test_every_group_has_train_dev_and_test(bank: TemplateBank) -> None:
    splits: dict[tuple[str, str, str], set[str]] = {}
    for t in bank.all():
        splits.setdefault((t.scope, t.speaker, t.kind), set()).add(t.split)
    assert all(found == set(SPLITS) for found in splits.values()), splits


def test_ids_are_unique_and_texts_are_not_repeated(bank: TemplateBank) -> None:
    templates = bank.all()
    assert len({t.id for t in templates}) == len(templates)
    repeated = [text for text, n in Counter(t.text for t in templates).items() if n > 1]
    assert not repeated
    for t in templates:
        assert t.id.startswith(f"{t.scope}.{t.speaker}.{t.kind}.")


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_every_template_fills_to_speakable_chinese(bank: TemplateBank, seed: int) -> None:
    for t in bank.all():
        text = fill(t.id, t.text, _slots_for(bank, t.scope, seed))
        assert "{" not in text and "}" not in text, t.id
        assert not re.search(r"[0-9A-Za-z\s]", text), (t.id, text)
        assert SPOKEN.fullmatch(text), (t.id, text)


def test_lengths_are_mostly_conversational(bank: TemplateBank) -> None:
    lengths = [len(fill(t.id, t.text, _slots_for(bank, t.scope, 7))) for t in bank.all()]
    assert sum(8 <= n <= 30 for n in lengths) / len(lengths) >= 0.75
    assert max(lengths) <= 60


def test_split_matches_assign_splits_of_its_group(bank: TemplateBank) -> None:
    groups: dict[tuple[str, str, str], dict[str, str]] = {}
    for t in bank.all():
        groups.setdefault((t.scope, t.speaker, t.kind), {})[t.id] = t.split
    for got in groups.values():
        assert assign_splits(list(got)) == got


# --- what the labels rely on -------------------------------------------------------------------------------


def _group(bank: TemplateBank, speaker: str, kind: str) -> list[str]:
    return [t.text for t in bank.all() if t.speaker == speaker and t.kind == kind]


def test_greetings_state_the_agent_id_and_bad_ones_do_not(bank: TemplateBank) -> None:
    greetings = _group(bank, "agent", "greeting")
    assert len(greetings) >= 16  # common plus the callback override
    assert all("{agent_no}" in text for text in greetings)
    assert not any("{agent_no}" in text for text in _group(bank, "agent", "greeting_bad"))


def test_hold_templates_announce_the_hold(bank: TemplateBank) -> None:
    assert all("稍等" in text for text in _group(bank, "agent", "hold"))


def test_only_leak_templates_read_back_full_numbers(bank: TemplateBank) -> None:
    for t in bank.all():
        full = _used_slots(t.text) & FULL_NUMBER_SLOTS
        if t.speaker == "agent" and t.kind == "leak":
            assert full, t.id
        elif t.speaker == "agent":
            assert not full, t.id
    assert all(_used_slots(text) & LAST4_SLOTS for text in _group(bank, "agent", "confirm_masked"))


def test_curt_kinds_have_no_polite_words(bank: TemplateBank) -> None:
    for kind in ("greeting_bad", "verify_curt", "probe_curt", "impatient", "closing_bad", "forbidden"):
        for text in _group(bank, "agent", kind):
            assert not any(w in text for w in ("您", "请", "谢谢")), (kind, text)


def test_farewells_invite_the_survey(bank: TemplateBank) -> None:
    for text in _group(bank, "agent", "farewell"):
        assert any(w in text for w in ("评价", "满意度", "评分", "打分")), text


# --- candidates and pick -----------------------------------------------------------------------------------


def test_scenario_groups_shadow_common_ones(bank: TemplateBank) -> None:
    callback = bank.candidates("agent", "greeting", "train", "callback")
    assert callback and {t.scope for t in callback} == {"callback"}
    billing = bank.candidates("agent", "greeting", "train", "billing")
    assert billing == bank.candidates("agent", "greeting", "train")
    assert {t.scope for t in billing} == {COMMON}
    issues = bank.candidates("customer", "issue", "test", "refund")
    assert issues and all(t.scope == "refund" and t.split == "test" for t in issues)


def test_pick_is_reproducible_and_stays_in_split(bank: TemplateBank) -> None:
    first = [bank.pick(np.random.default_rng(5), "agent", "resolve", "dev", "fault") for _ in range(3)]
    assert len(set(first)) == 1
    rng = np.random.default_rng(11)
    picks = {bank.pick(rng, "agent", "apology", "train") for _ in range(200)}
    assert picks == set(bank.candidates("agent", "apology", "train"))


def test_pick_and_candidates_reject_what_does_not_exist(bank: TemplateBank) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(KeyError, match="no_such_kind"):
        bank.pick(rng, "agent", "no_such_kind", "train")
    with pytest.raises(KeyError, match="mars"):
        bank.candidates("agent", "probe", "train", "mars")
    with pytest.raises(ValueError, match="validation"):
        bank.candidates("agent", "probe", "validation", "billing")


def test_kinds_cover_common_and_scenario_kinds(bank: TemplateBank) -> None:
    assert bank.kinds("agent") == COMMON_KINDS["agent"] | SCENARIO_KINDS["agent"]
    assert bank.kinds("customer") == COMMON_KINDS["customer"] | SCENARIO_KINDS["customer"]


def test_load_is_cached(bank: TemplateBank) -> None:
    assert TemplateBank.load() is bank


# --- validation of edited YAML -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_text", "message"),
    [
        ("您好，工号{agent_no}，有三件事请您注意。", None),  # valid control case
        ("您好，我是{agent_no}号，请拨打10086。", "Arabic digit"),
        ("您好，{agent_no}号客服，请问需要VIP服务吗？", "Latin letter"),
        ("您好，{agent_no}号客服 为您服务。", "not Chinese"),
        ("您好，{agent_id}号客服为您服务。", "unknown slot"),
        ("您好，很高兴为您服务。", "agent_no"),
    ],
)
def test_validation_names_the_bad_template(bad_text: str, message: str | None) -> None:
    common, scenarios = _raw("common.yaml"), _raw("scenarios.yaml")
    common["agent"]["greeting"][2] = bad_text
    if message is None:
        TemplateBank.from_data(common, scenarios)
        return
    with pytest.raises(ValueError, match=message) as err:
        TemplateBank.from_data(common, scenarios)
    assert "common.agent.greeting.02" in str(err.value)


def test_validation_rejects_small_groups_missing_kinds_and_unsafe_agents() -> None:
    common, scenarios = _raw("common.yaml"), _raw("scenarios.yaml")
    small = copy.deepcopy(scenarios)
    small["refund"]["agent"]["unresolved"] = small["refund"]["agent"]["unresolved"][:2]
    with pytest.raises(ValueError, match=r"refund\.agent\.unresolved"):
        TemplateBank.from_data(common, small)
    missing = copy.deepcopy(scenarios)
    del missing["fault"]["customer"]["detail"]
    with pytest.raises(ValueError, match="missing kinds"):
        TemplateBank.from_data(common, missing)
    unsafe = copy.deepcopy(common)
    unsafe["agent"]["ack"][0] = "好的，您的号码{phone}我记下了。"
    with pytest.raises(ValueError, match=r"common\.agent\.ack\.00"):
        TemplateBank.from_data(unsafe, scenarios)
    curt = copy.deepcopy(common)
    curt["agent"]["verify_curt"][1] = "请报一下身份证后四位。"
    with pytest.raises(ValueError, match=r"common\.agent\.verify_curt\.01"):
        TemplateBank.from_data(curt, scenarios)


# --- assign_splits ---------------------------------------------------------------------------------------


def test_assign_splits_is_independent_of_order_and_seed() -> None:
    ids = [f"billing.agent.resolve.{i:02d}" for i in range(20)]
    expected = assign_splits(ids)
    for seed in range(5):
        shuffled = ids[:]
        random.Random(seed).shuffle(shuffled)
        np.random.seed(seed)
        assert assign_splits(shuffled) == expected
    by_hash = sorted(ids, key=lambda i: hashlib.sha256(i.encode()).hexdigest())
    assert [expected[i] for i in by_hash] == ["test"] * 3 + ["dev"] * 3 + ["train"] * 14


@pytest.mark.parametrize(("n", "counts"), [(3, (1, 1, 1)), (6, (1, 1, 4)), (7, (1, 1, 5)), (14, (2, 2, 10))])
def test_assign_splits_shares(n: int, counts: tuple[int, int, int]) -> None:
    got = Counter(assign_splits([f"common.agent.ack.{i:02d}" for i in range(n)]).values())
    assert (got["test"], got["dev"], got["train"]) == counts


def test_assign_splits_needs_three() -> None:
    with pytest.raises(ValueError):
        assign_splits(["a", "b"])


# --- slots -----------------------------------------------------------------------------------------------


def test_digits_zh() -> None:
    assert digits_zh("1380") == "一三八零"
    assert digits_zh("0123456789") == ZH_DIGITS
    with pytest.raises(ValueError):
        digits_zh("12a4")


@pytest.mark.parametrize(
    ("n", "zh"),
    [
        (0, "零"), (7, "七"), (10, "十"), (15, "十五"), (20, "二十"), (101, "一百零一"), (110, "一百一十"),
        (128, "一百二十八"), (200, "两百"), (1010, "一千零一十"), (2005, "两千零五"), (10000, "一万"),
        (20000, "两万"), (100010, "十万零一十"), (305000, "三十万五千"),
    ],
)  # fmt: skip
def test_number_zh(n: int, zh: str) -> None:
    assert number_zh(n) == zh


def test_amount_zh() -> None:
    assert amount_zh(128) == "一百二十八元"
    assert amount_zh(39, 5) == "三十九元五角"
    assert amount_zh(0, 5) == "五角"
    with pytest.raises(ValueError):
        amount_zh(3, 10)


def test_sample_slots_is_deterministic_and_complete() -> None:
    a = sample_slots(np.random.default_rng(42))
    assert a == sample_slots(np.random.default_rng(42))
    assert set(a) == SLOT_NAMES
    assert all(type(v) is str and v for v in a.values())
    assert any(sample_slots(np.random.default_rng(s)) != a for s in range(43, 46))


def test_scenario_lists_override_slot_values() -> None:
    values = {
        sample_slots(np.random.default_rng(s), {"product": ["宽带", "光猫"]})["product"] for s in range(30)
    }
    assert values == {"宽带", "光猫"}
    with pytest.raises(KeyError, match="colour"):
        sample_slots(np.random.default_rng(0), {"colour": ["红"]})


@pytest.mark.parametrize("seed", range(40))
def test_numbers_are_consistent_and_well_formed(seed: int) -> None:
    s = sample_slots(np.random.default_rng(seed))
    for full, last4 in (("phone", "phone_last4"), ("id_no", "id_last4"), ("card_no", "card_last4")):
        assert s[last4] == s[full][-4:]
    phone, id_no, card = _to_ascii(s["phone"]), _to_ascii(s["id_no"]), _to_ascii(s["card_no"])
    assert len(phone) == 11 and phone[0] == "1" and phone[1] in "3456789"
    assert len(id_no) == 18
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    assert "10X98765432"[sum(int(d) * w for d, w in zip(id_no, weights, strict=False)) % 11] == id_no[-1]
    assert len(card) in range(16, 20)
    luhn = sum(int(d) if i % 2 == 0 else sum(divmod(2 * int(d), 10)) for i, d in enumerate(reversed(card)))
    assert luhn % 10 == 0
    assert len(_to_ascii(s["order_no"])) in range(10, 13)
    assert len(_to_ascii(s["agent_no"])) == 4
    assert SPOKEN.fullmatch("".join(s.values()))


def test_fill_substitutes_and_names_unknown_slots() -> None:
    slots = sample_slots(np.random.default_rng(0))
    assert fill("t", "尾号{phone_last4}。", slots) == f"尾号{slots['phone_last4']}。"
    with pytest.raises(KeyError) as err:
        fill("billing.agent.resolve.03", "{amount}会在{weeks}周内退回。", slots)
    assert "billing.agent.resolve.03" in str(err.value) and "weeks" in str(err.value)


# --- customer-style numbers and disfluency (generator 2.0) ----------------------------------------------


def test_customer_style_numbers() -> None:
    assert spoken_digits_zh("13812345678", (3, 4, 4)) == "幺三八，幺二三四，五六七八"
    with pytest.raises(ValueError, match="add up"):
        spoken_digits_zh("1381234", (3, 4, 4))
    assert amount_spoken_zh(128, 5) == "一百二十八块五"
    assert amount_spoken_zh(2) == "两块"
    assert amount_spoken_zh(0, 5) == "五毛"
    assert amount_spoken_zh(2000) == "两千块"


@pytest.mark.parametrize("seed", range(20))
def test_spoken_slots_say_the_same_values(seed: int) -> None:
    s = sample_slots(np.random.default_rng(seed))
    assert s["phone_spoken"].replace("，", "").replace("幺", "一") == s["phone"]
    assert s["date_fix"].endswith(s["date"])
    assert ("，不对，" in s["date_fix"]) or s["date_fix"] == s["date"]
    if "元" in s["amount"]:
        yuan = s["amount"].split("元")[0]
        assert s["amount_spoken"].split("块")[0] == ("两" if yuan == "二" else yuan)
    assert set(s["order_code"]) <= set("零幺二三四五六七八九，")


def test_roughen_leaves_labelled_wording_alone() -> None:
    rng = np.random.default_rng(0)
    for kind in ("greeting", "farewell", "hold", "leak", "forbidden", "apology"):
        said = {roughen(rng, "agent", kind, "您好，工号一二三四。") for _ in range(50)}
        assert said == {"您好，工号一二三四。"}
    answer = "对，身份证后四位是一二三四。"
    for _ in range(300):
        assert "一二三四" in roughen(rng, "customer", "verify_answer", answer)


def test_roughen_makes_fillers_restarts_and_cut_offs_at_their_rates() -> None:
    rng = np.random.default_rng(1)
    text = "我这个月的话费怎么这么多，比平时高了好多。"
    out = [roughen(rng, "customer", "issue", text) for _ in range(4000)]
    assert all(SPOKEN.fullmatch(o) for o in out)
    fillers = sum(o.startswith(("嗯", "那个", "就是", "啊", "哎")) for o in out) / len(out)
    starts = ("我这，我这", "我这个，我这个", "我这个月，我这个月")
    restarts = sum(any(r in o for r in starts) for o in out) / len(out)
    cut = sum(not o.endswith(("。", "？", "！")) for o in out) / len(out)
    assert 0.25 < fillers < 0.35
    assert 0.07 < restarts < 0.13
    assert 0.03 < cut < 0.07
    agent = [roughen(rng, "agent", "resolve", "已经帮您退订了。") for _ in range(2000)]
    assert 0.1 < sum(a != "已经帮您退订了。" for a in agent) / len(agent) < 0.2
    assert not any(w in a.replace("已经帮您退订了。", "") for a in agent for w in ("您", "请", "谢谢"))


def test_new_industries_greet_in_their_own_companies_name(bank: TemplateBank) -> None:
    for scenario in ("bank_card", "insurance_claim", "hospital_booking", "utility_bill"):
        companies = bank.scenario_slots(scenario)["company"]
        slots = sample_slots(np.random.default_rng(3), bank.scenario_slots(scenario))
        assert slots["company"] in companies
        greetings = bank.candidates("agent", "greeting", "train", scenario)
        assert greetings and all(t.scope == scenario for t in greetings)
