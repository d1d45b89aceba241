"""Each rule on a hand-built timeline, including the traps an inspector would not fall for."""

from __future__ import annotations

from pathlib import Path

import pytest

from callqa.data.rubric import load_rubric
from callqa.data.schema import SchemaError
from callqa.models.qa.base import ItemPrediction
from callqa.qa.match import PhraseMatcher, best_substring
from callqa.qa.rules import RuleSet
from callqa.qa.sheet import judge_call, rule_items, sheet
from callqa.qa.timeline import CallView, Said

A, C = "agent", "customer"
GREETING = Said(A, 0.5, 4.0, "您好，工号三七二八为您服务，请问有什么可以帮您？")
CLOSING = [
    Said(A, 60.0, 62.0, "请问还有其他可以帮您的吗？"),
    Said(C, 62.5, 63.5, "没有了，谢谢。"),
    Said(A, 64.0, 67.0, "感谢您的来电，祝您生活愉快，再见。"),
]


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return RuleSet(load_rubric())


def call(*turns: Said, roles_known: bool = True) -> CallView:
    return CallView("c", list(turns), max(t.end for t in turns) + 1.0, roles_known=roles_known)


def verdict(rules: RuleSet, item: str, view: CallView):
    return rules.detectors[item].judge(view)


# --- matching -------------------------------------------------------------------------------------------


def test_best_substring_finds_the_closest_stretch() -> None:
    d, a, b = best_substring(["ba", "ce", "du"], ["xi", "xi", "ba", "zo", "du", "yi"])
    assert (d, a, b) == (1.0, 2, 5)
    near, *_ = best_substring(["ba", "ce", "du"], ["ba", "ze", "du"])  # same final: a near miss
    assert near == 0.5


def test_phrases_survive_homophones_and_one_error_but_not_near_misses() -> None:
    m = PhraseMatcher(["请您稍等", "已经帮您", "理解您的心情", "你听不懂吗"])
    assert [x.phrase for x in m.find("好的清您稍等一下")] == ["请您稍等"]  # homophone 清/请
    assert [x.phrase for x in m.find("我理解你的心情")] == ["理解您的心情"]  # one syllable wrong of six
    assert [x.phrase for x in m.find("请你稍等")] == ["请您稍等"]  # ni/nin: a near miss, in four
    assert [x.phrase for x in m.find("你经不懂啊我")] == ["你听不懂吗"]  # two near misses in five
    assert m.find("请问有什么可以帮您") == []  # 可以 is not 已经: one unrelated syllable too many
    found = m.find("我已经帮您查过了")[0]
    assert "我已经帮您查过了"[found.start : found.end] == "已经帮您"


def test_short_phrases_must_match_exactly() -> None:
    m = PhraseMatcher(["工号"])
    assert m.find("公号三七") != []  # same syllables
    assert m.find("工作") == []
    assert m.best("工作") < 0.75


# --- one timeline per rule --------------------------------------------------------------------------------


def test_greeting_needs_the_agent_id_in_the_first_turns(rules: RuleSet) -> None:
    assert not verdict(rules, "greeting", call(GREETING)).defect
    bad = verdict(rules, "greeting", call(Said(A, 0.5, 2.0, "喂，说吧，什么事？")))
    assert bad.defect and bad.events[0].item == "greeting"
    late = call(
        Said(A, 0.5, 2.0, "喂？"),
        Said(C, 2.5, 9.0, "你好，我想问一下我的账单。"),
        Said(A, 14.0, 16.0, "好的，我是八八号客服。"),
    )  # id given, but only at 14 s (limit 10 s)
    assert verdict(rules, "greeting", late).defect


def test_verification_must_come_before_account_details(rules: RuleSet) -> None:
    ok = call(
        GREETING,
        Said(A, 10, 14, "请问您是机主本人吗？麻烦报一下身份证后四位。"),
        Said(A, 20, 25, "查到了，您这个月的账单是八十九元。"),
    )
    assert not verdict(rules, "verification", ok).defect
    # trap: the customer volunteering their ID number is not the agent verifying it
    bad = call(
        GREETING,
        Said(C, 5, 9, "我是机主本人，身份证后四位一二三四。"),
        Said(A, 10, 14, "查到了，您这个月的账单是八十九元。"),
    )
    v = verdict(rules, "verification", bad)
    assert v.defect and v.events[0].start == 10
    # a curt request for the number and the name is still a check (it is impolite, which is another item)
    curt = call(
        GREETING, Said(A, 10, 12, "号码，姓名，快点。"), Said(A, 20, 25, "查到了，您这个月的账单是八十九元。")
    )
    assert not verdict(rules, "verification", curt).defect


def test_politeness_counts_curt_turns_and_a_missing_apology(rules: RuleSet) -> None:
    curt = call(
        GREETING, Said(A, 10, 11, "号码多少？"), Said(A, 15, 16, "说重点。"), Said(A, 20, 21, "等着。")
    )
    assert verdict(rules, "polite", curt).defect
    complaint = call(
        GREETING,
        Said(C, 5, 8, "你们这服务也太差了吧，我要投诉！", "angry"),
        Said(A, 9, 12, "您请说具体情况。"),
        Said(A, 15, 18, "请您提供一下订单号。"),
    )
    v = verdict(rules, "polite", complaint)
    assert v.defect and "apologise" in v.reason
    # each finding is its own feature, for the model to weigh apart
    assert v.features["unapologised"] == 1.0 and v.features["curt_excess"] == 0.0
    assert verdict(rules, "polite", curt).features["curt_excess"] >= 2.0
    apologised = call(
        GREETING,
        Said(C, 5, 8, "你们这服务也太差了吧！", "angry"),
        Said(A, 9, 12, "非常抱歉给您带来不便，请您说一下情况。"),
    )
    assert not verdict(rules, "polite", apologised).defect
    # a blunt demand is curt even beside a polite word (a segment running two sentences together)
    polite = [Said(A, 10 + 5 * k, 13 + 5 * k, "好的，请您稍等，我帮您查询。") for k in range(4)]
    assert not verdict(rules, "polite", call(GREETING, *polite)).defect
    blunt = verdict(rules, "polite", call(GREETING, *polite, Said(A, 40, 43, "您登记的号码多少钱说清楚")))
    assert blunt.defect and blunt.features["blunt_turns"] == 1 and blunt.stands
    question = verdict(rules, "polite", call(GREETING, *polite, Said(A, 40, 43, "号码多少？")))
    assert question.defect and not question.stands  # a curt question is for the model to weigh


def test_forbidden_phrases_count_on_the_agent_channel_only(rules: RuleSet) -> None:
    v = verdict(rules, "forbidden", call(GREETING, Said(A, 10, 12, "你听不懂吗？我说了好几遍了。")))
    assert v.defect and v.events[0].speaker == A
    asr_error = verdict(rules, "forbidden", call(GREETING, Said(A, 10, 12, "这个问题不归我门管。")))
    assert asr_error.defect  # 门 for 们: the same syllables
    quoted = call(
        GREETING,
        Said(C, 5, 9, "上次你们的人说这个问题不归我们管，你听不懂吗？"),
        Said(A, 10, 13, "非常抱歉，我来帮您处理。"),
    )
    assert not verdict(rules, "forbidden", quoted).defect


def test_interruption_is_the_agent_talking_over_the_customer(rules: RuleSet) -> None:
    over = call(Said(C, 0, 6, "我想问一下为什么我的话费扣了这么多"), Said(A, 4.2, 8, "这个您听我说"))
    v = verdict(rules, "interruption", over)
    assert v.defect and v.events[0].start == pytest.approx(4.2) and v.events[0].end == pytest.approx(6.0)
    brief = call(Said(C, 0, 6, "我想问一下话费"), Said(A, 5.5, 8, "好的您说"))  # 0.5 s: ordinary turn taking
    assert not verdict(rules, "interruption", brief).defect
    customer_over = call(Said(A, 0, 6, "我们这个套餐的资费是这样的"), Said(C, 3, 8, "你别说了我不要"))
    assert not verdict(rules, "interruption", customer_over).defect


def test_speech_rate_against_the_range(rules: RuleSet) -> None:
    text = "您好请问有什么可以帮您的吗"  # 13 characters
    fast = call(*[Said(A, 10 * i, 10 * i + 2, text) for i in range(8)])  # 13 chars per 2 s = 390/min
    v = verdict(rules, "speech_rate", fast)
    assert v.defect and v.features["cpm"] == pytest.approx(390)
    normal = call(*[Said(A, 10 * i, 10 * i + 3.25, text) for i in range(8)])  # 240/min
    assert not verdict(rules, "speech_rate", normal).defect
    assert not verdict(rules, "speech_rate", call(Said(A, 0, 1, "好"))).judged  # too little speech


def test_silence_without_a_hold_notice_but_not_after_one(rules: RuleSet) -> None:
    dead = call(Said(C, 0, 3, "我的快递到哪了？"), Said(A, 11, 14, "查到了，明天送到。"))
    v = verdict(rules, "silence", dead)
    assert v.defect and (v.events[0].start, v.events[0].end) == (3, 11)
    held = call(
        Said(C, 0, 3, "我的快递到哪了？"),
        Said(A, 3.5, 5, "请您稍等，我帮您查一下。"),
        Said(A, 17, 19, "感谢您的耐心等待，明天送到。"),
    )  # 12 s, right after the hold notice
    assert not verdict(rules, "silence", held).defect
    short = call(Said(C, 0, 3, "我的快递到哪了？"), Said(A, 7, 9, "明天送到。"))
    assert not verdict(rules, "silence", short).defect


def test_agent_emotion_from_ser_probabilities(rules: RuleSet) -> None:
    angry = call(GREETING, Said(A, 10, 12, "你到底办不办", "angry", {"angry": 0.8, "neutral": 0.2}))
    assert verdict(rules, "emotion", angry).defect
    calm = call(
        GREETING,
        Said(A, 10, 12, "好的", "neutral", {"angry": 0.3, "neutral": 0.7}),
        Said(C, 12, 14, "你们太差了", "angry", {"angry": 0.9, "neutral": 0.1}),
    )  # the customer's anger
    assert not verdict(rules, "emotion", calm).defect
    assert not verdict(rules, "emotion", call(GREETING)).defect


def test_deescalation_only_when_the_customer_is_angry(rules: RuleSet) -> None:
    angry = Said(C, 5, 8, "我都打了三次电话了！", "angry")
    soothed = call(
        GREETING,
        angry,
        Said(A, 9, 12, "我非常理解您的心情，请您别着急。", "neutral"),
        Said(C, 13, 15, "好吧，那我再等等。", "neutral"),
    )
    assert not verdict(rules, "deescalation", soothed).defect
    left = call(
        GREETING,
        angry,
        Said(A, 9, 12, "规定就是这样。", "neutral"),
        Said(C, 13, 15, "我要投诉你们！", "angry"),
    )
    v = verdict(rules, "deescalation", left)
    assert v.defect and len(v.events) == 2
    calm = call(GREETING, Said(C, 5, 8, "我想问一下。", "neutral"), Said(A, 9, 12, "好的。", "neutral"))
    assert not verdict(rules, "deescalation", calm).defect
    said = call(GREETING, Said(C, 5, 8, "你们这服务太差了，我要投诉！"), Said(A, 9, 12, "规定就是这样。"))
    assert verdict(rules, "deescalation", said).defect  # no emotion known, but the words say it
    early = call(
        GREETING,
        angry,
        Said(A, 9, 12, "规定就是这样。"),
        Said(C, 13, 15, "好吧。"),
        Said(C, 16, 18, "没有了。"),
    )
    assert verdict(rules, "deescalation", early).features["late_anger"] == 0.0
    # anger first said in the customer's last turns is anger at the end, not yet soothed
    late = call(
        GREETING,
        Said(C, 5, 8, "我想问一下。", "neutral"),
        Said(A, 9, 12, "这个办不了。", "neutral"),
        Said(C, 13, 15, "我不接受这个答复。", "neutral"),
    )
    assert verdict(rules, "deescalation", late).features["late_anger"] == 1.0


def test_resolution_and_closing(rules: RuleSet) -> None:
    resolved = call(GREETING, Said(A, 20, 25, "已经为您提交了工单，师傅会在二十四小时内上门。"), *CLOSING)
    assert not verdict(rules, "resolution", resolved).defect
    assert not verdict(rules, "closing", resolved).defect
    brushed = call(
        GREETING, Said(A, 20, 25, "这个我也不清楚，您再等等吧。"), Said(A, 60, 62, "行了，就这样，挂了。")
    )
    assert verdict(rules, "resolution", brushed).defect
    assert verdict(rules, "closing", brushed).defect
    # sent elsewhere, even when the sentence names the money (到账 is a resolution phrase)
    sent = call(GREETING, Said(A, 20, 25, "钱到没到账您得问银行。"))
    assert verdict(rules, "resolution", sent).defect
    # a brush-off the agent then makes good is resolved after all
    made_good = call(
        GREETING,
        Said(A, 20, 25, "我也没办法。"),
        Said(A, 30, 35, "我已经为您加急处理，退款今天之内就会到账。"),
    )
    assert not verdict(rules, "resolution", made_good).defect


def test_confidentiality_full_readback_but_not_a_masked_one(rules: RuleSet) -> None:
    leak = call(GREETING, Said(A, 10, 14, "我核对一下，您的手机号码是幺三八幺二三四五六七八，没错吧？"))
    v = verdict(rules, "confidentiality", leak)
    assert v.defect and "幺三八幺二三四五六七八" not in v.events[0].evidence  # evidence is masked
    masked = call(GREETING, Said(A, 10, 14, "您的手机尾号是五六七八，对吗？"))
    assert not verdict(rules, "confidentiality", masked).defect
    customer = call(GREETING, Said(C, 10, 14, "我的手机号是幺三八幺二三四五六七八。"))
    assert not verdict(rules, "confidentiality", customer).defect
    # the recogniser lost two digits and mis-heard one: no PII format fits, the readback is still one
    heard = Said(A, 10, 14, "联系电话幺三八幺二散四五六对吧")
    garbled = verdict(rules, "confidentiality", call(GREETING, heard))
    assert garbled.defect and "三八幺" not in garbled.events[0].evidence
    amount = call(GREETING, Said(A, 10, 14, "这笔五百零三元的费用，十一月二十三号扣的，尾号八四一六的卡。"))
    assert not verdict(rules, "confidentiality", amount).defect


# --- the sheet, mono, and other rubrics ---------------------------------------------------------------------


def test_a_fatal_rule_zeroes_the_sheet(rules: RuleSet) -> None:
    view = call(GREETING, Said(A, 10, 12, "你烦不烦啊？"), *CLOSING)
    verdicts = rules.judge(view)
    items = rule_items(rules.rubric, verdicts)
    events = [e for v in verdicts.values() for e in v.events]
    score = sheet("c", rules.rubric, items, events)
    assert score.fatal == ["forbidden"] and score.total == 0 and score.band == "不合格"
    assert score.expected_total is not None and score.expected_total < 30  # the fatal rule is sure
    assert any(e.item == "forbidden" and e.evidence for e in score.events)


class CleanModel:
    """A QA model that calls every item clean: what is left standing comes from the rules."""

    kind, rubric, version = "clean", {}, None

    def __init__(self, items: list[str]) -> None:
        self.item_ids = items

    def predict_items(self, view: CallView, features: dict) -> dict[str, ItemPrediction]:
        return {i: ItemPrediction(0.01, 0.5, 5.0) for i in self.item_ids}


def test_findings_that_stand_override_the_model(rules: RuleSet) -> None:
    model = CleanModel(rules.rubric.ids)
    polite = [Said(A, 10 + 5 * k, 13 + 5 * k, "好的，请您稍等，我帮您查询。") for k in range(4)]
    blunt = judge_call(call(GREETING, *polite, Said(A, 40, 43, "多少钱？说清楚。"), *CLOSING), rules, model)
    assert {i.item for i in blunt.items if i.defect} == {"polite"}
    forbidden = judge_call(call(GREETING, *polite, Said(A, 40, 43, "你烦不烦啊？"), *CLOSING), rules, model)
    assert forbidden.fatal == ["forbidden"] and forbidden.total == 0
    curt = judge_call(call(GREETING, *polite, Said(A, 40, 43, "号码多少？"), *CLOSING), rules, model)
    assert not any(i.defect for i in curt.items)  # a curt turn is the model's to weigh


class AlarmedModel(CleanModel):
    """A QA model that calls every item a defect, with nothing to show for it."""

    def predict_items(self, view: CallView, features: dict) -> dict[str, ItemPrediction]:
        return {i: ItemPrediction(0.99, 0.5, 5.0, ["call.gaps_over_3s=2 (+3.74)"]) for i in self.item_ids}


def test_the_model_alone_cannot_veto_a_call(rules: RuleSet) -> None:
    """Fatal items need the rule's evidence; the others are the model's to call."""
    score = judge_call(
        call(GREETING, Said(A, 10, 13, "好的，请您稍等，我帮您查询。"), *CLOSING),
        rules,
        AlarmedModel(rules.rubric.ids),
    )
    fatal = {i.id for i in rules.rubric.items if i.fatal}
    assert fatal and score.fatal == [] and score.total > 0
    assert {i.item for i in score.items if i.defect} == set(rules.rubric.ids) - fatal
    assert all(i.probability == 0.99 for i in score.items if i.item in fatal)  # still said, not acted on


def test_speaker_rules_are_not_judged_on_a_mono_mix(rules: RuleSet) -> None:
    view = call(Said(None, 0, 3, "喂，说吧。"), Said(None, 12, 14, "你烦不烦啊？"), roles_known=False)
    verdicts = rules.judge(view)
    assert not verdicts["greeting"].judged and not verdicts["forbidden"].judged
    assert verdicts["silence"].judged and verdicts["silence"].defect  # dead air needs no roles


CENTRE = """
name: bank
version: "2"
items:
  - {id: kaichang, name_zh: 开场, points: 20, rule: {detector: required_phrase, where: first_turns,
     phrases: [欢迎致电银行]}}
  - {id: jingyin, name_zh: 静音, points: 30, params: {max_seconds: 10},
     rule: {detector: dead_air, hold: {phrases: [请稍候]}}}
  - {id: kahao, name_zh: 卡号保密, points: 50, fatal: true, rule: {detector: pii_readback, kinds: [card]}}
bands: [{name: A, min: 85}, {name: B, min: 0}]
"""


def test_a_centres_own_rubric_needs_no_code(tmp_path: Path) -> None:
    path = tmp_path / "bank.yaml"
    path.write_text(CENTRE, encoding="utf-8")
    rules = RuleSet(load_rubric(path), str(path))
    view = call(
        Said(A, 0, 3, "您好，欢迎致电银行。"),
        Said(C, 4, 6, "我查一下余额。"),
        Said(A, 14, 16, "您的手机号码是幺三八幺二三四五六七八。"),
    )  # 8 s gap; a phone, not a card
    verdicts = rules.judge(view)
    assert set(verdicts) == {"kaichang", "jingyin", "kahao"}
    assert not any(v.defect for v in verdicts.values())  # 8 s is under this centre's 10 s
    score = sheet("c", rules.rubric, rule_items(rules.rubric, verdicts), [])
    assert score.total == 100 and score.band == "A"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("{detector: telepathy}", "unknown rule detector 'telepathy'"),
        ("{detector: dead_air, max_secnds: 3}", "max_secnds"),
    ],
)
def test_a_bad_rule_names_the_file_and_the_item(tmp_path: Path, rule: str, message: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(f"items:\n  - {{id: x, name_zh: 甲, points: 100, rule: {rule}}}\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=message) as err:
        RuleSet(load_rubric(path), str(path))
    assert str(path) in str(err.value) and "item x" in str(err.value)
