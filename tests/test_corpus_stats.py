"""Corpus statistics on a hand-made corpus whose every figure is known by construction.

30 calls. Calls 0–5 are calibration calls scored by all three inspectors (fair first); calls 6–29 are
sampled by one inspector in rotation (i % 3: fair, lenient, severe). Truth: greeting when i % 3 == 0,
polite when i % 5 == 0, the fatal forbidden item on call 7. The fair inspector deducts exactly the truth,
the lenient one never deducts polite, the severe one also deducts closing (6 points) on every call.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import warnings
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from callqa.data.files import write_json
from callqa.data.rubric import default_rubric_path, load_rubric
from callqa.data.schema import CallRecord, Inspection, Survey, Truth, Turn, Utterance, write_records
from callqa.evaluation import plots
from callqa.evaluation.corpus_inspections import truth_total
from callqa.evaluation.corpus_inspectors import drift
from callqa.evaluation.corpus_report import corpus_stats_report, render_stats
from callqa.evaluation.corpus_results import CorpusStats
from callqa.evaluation.corpus_stats import compute_corpus_stats

N_CALLS = 30
CALIBRATION = range(6)
ROTATION = ("fair", "lenient", "severe")
T0 = datetime(2024, 1, 1, 9, 0)
RUBRIC = load_rubric()
N_BOOT = 200


def _split(i: int) -> str:
    return "train" if i % 10 < 7 else ("dev" if i % 10 < 9 else "test")


def _defects(i: int) -> list[str]:
    return [d for d, on in (("greeting", i % 3 == 0), ("polite", i % 5 == 0), ("forbidden", i == 7)) if on]


def _sheet(inspector: str, defects: list[str], at: datetime, kind: str) -> Inspection:
    flagged = [d for d in defects if not (inspector == "lenient" and d == "polite")]
    if inspector == "severe":
        flagged.append("closing")
    fatal = [d for d in flagged if RUBRIC[d].fatal]
    items = {d: RUBRIC[d].points for d in flagged}
    return Inspection(
        inspector_id=inspector, at=at, items=items, fatal=fatal, total=RUBRIC.total(items, fatal), kind=kind
    )


def _inspections(i: int, defects: list[str]) -> list[Inspection]:
    day = T0 + timedelta(days=i)
    if i in CALIBRATION:
        return [_sheet(r, defects, day + timedelta(hours=k), "calibration") for k, r in enumerate(ROTATION)]
    sheets = [_sheet(ROTATION[i % 3], defects, day, "sample")]
    if i == 8:  # a recheck by another inspector must not make call 8 a calibration call
        sheets.append(_sheet("fair", defects, day + timedelta(days=2), "recheck"))
    if i == 11:
        sheets.append(_sheet("lenient", defects, day + timedelta(days=3), "appeal"))
    return sheets


def _turns(i: int) -> list[Turn]:
    return [
        Turn(speaker="agent", start=0.0, end=10.0, text="您好，工号1234", emotion="neutral"),
        Turn(
            speaker="customer",
            start=10.0,
            end=20.0,
            text="我的账单不对",
            emotion="angry" if i % 4 == 0 else "neutral",
        ),
        Turn(speaker="agent", start=20.0, end=30.0, text="马上为您处理", emotion="happy"),
        Turn(speaker="customer", start=30.0, end=40.0, text="好的", emotion=None if i == 0 else "neutral"),
    ]


def _csat(total: float) -> int:
    return 5 if total >= 95 else 4 if total >= 90 else 3 if total >= 85 else 2


def make_call(i: int, with_truth: bool = True) -> CallRecord:
    defects = _defects(i)
    return CallRecord(
        id=f"call{i:03d}",
        audio=f"audio/call{i:03d}.wav",
        sample_rate=8000,
        channels="mono" if i < 2 else {"agent": 0, "customer": 1},
        duration=120.0 + i,
        agent_id=f"agent{i % 4}",
        started_at=T0 + timedelta(days=i),
        turns=_turns(i),
        inspections=_inspections(i, defects),
        survey=None if i % 6 == 3 else Survey(csat=_csat(truth_total(RUBRIC, defects))),
        truth=Truth(defects=defects) if with_truth else None,
        split=_split(i),
    )


def make_corpus(root: Path, with_truth: bool = True) -> Path:
    """Write the corpus folder; without truth it looks like a real centre's export (no inspectors.json)."""
    calls = [make_call(i, with_truth) for i in range(N_CALLS)]
    write_records(root / "calls.jsonl", calls)
    utts = [
        Utterance(
            id=f"{c.id}_{k}",
            audio=c.audio,
            offset=t.start,
            duration=t.end - t.start,
            speaker=t.speaker,
            text=t.text,
            emotion=t.emotion,
            split=c.split,
            call_id=c.id,
        )
        for c in calls
        for k, t in enumerate(c.turns)
    ]
    write_records(root / "utterances.jsonl", utts)
    if with_truth:
        coverage = [
            Utterance(id=f"cov{k}", audio=f"cov/{k}.wav", duration=3.0, text="随机词语", split="train")
            for k in range(5)
        ]
        write_records(root / "coverage.jsonl", coverage)
        write_json(
            root / "corpus.json", {"preset": "tiny", "seed": 1, "generator_version": "test", "counts": {}}
        )
        write_json(root / "inspectors.json", [{"id": "severe", "severity": -6.0, "miss_rate": {}}])
        shutil.copy(default_rubric_path(), root / "rubric.yaml")
    return root


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("synth"))


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("real"), with_truth=False)


@pytest.fixture(scope="module")
def stats(synth_dir) -> CorpusStats:
    return compute_corpus_stats(synth_dir, n_boot=N_BOOT)


@pytest.fixture(scope="module")
def real_stats(real_dir) -> CorpusStats:
    return compute_corpus_stats(real_dir, n_boot=N_BOOT)


def _item(stats: CorpusStats, item_id: str):
    return next(it for it in stats.items if it.id == item_id)


def _inspector(stats: CorpusStats, inspector: str):
    return next(i for i in stats.inspectors if i.id == inspector)


def test_counts_and_hours(stats):
    c = stats.counts
    assert c.calls == {"train": 21, "dev": 6, "test": 3} and c.calls_total == 30
    assert c.call_hours == pytest.approx((30 * 120 + sum(range(30))) / 3600)
    assert c.call_hours_by_split["test"] == pytest.approx((129 + 139 + 149) / 3600)
    assert c.utterances == {"train": 84, "dev": 24, "test": 12}
    assert c.utterance_hours["train"] == pytest.approx(84 * 10 / 3600)
    assert (c.coverage_utterances, c.coverage_hours) == (5, pytest.approx(15 / 3600))
    assert (c.mono_calls, c.stereo_calls) == (2, 28)
    assert c.inspections == 6 * 3 + 24 + 2
    assert c.calibration_calls == 6  # call 8 has a recheck by a second inspector: still not calibration
    assert c.calls_with_csat == 25 and c.calls_with_truth == 30
    assert stats.info["preset"] == "tiny"


def test_item_rates_truth_and_inspected(stats):
    greeting, polite, closing, forbidden = (
        _item(stats, k) for k in ("greeting", "polite", "closing", "forbidden")
    )
    assert (greeting.true_rate, greeting.inspected_rate) == (pytest.approx(10 / 30), pytest.approx(10 / 30))
    # Lenient inspects first on calls 10 and 25 and never deducts polite.
    assert (polite.true_rate, polite.inspected_rate) == (pytest.approx(6 / 30), pytest.approx(4 / 30))
    # Severe inspects first on sample calls with i % 3 == 2: 8 calls; calibration calls start with fair.
    assert (closing.true_rate, closing.inspected_rate) == (0.0, pytest.approx(8 / 30))
    # Test calls are 9, 19 and 29; only 29 was first inspected by severe.
    assert closing.inspected_rate_by_split["test"] == pytest.approx(1 / 3)
    assert forbidden.fatal and forbidden.true_rate == pytest.approx(1 / 30)
    assert greeting.true_rate_by_split["train"] == pytest.approx(7 / 21)


def test_scores_and_bands(stats):
    s = stats.scores
    assert s.n == 30 and sum(s.hist_counts) == 30
    assert s.band_counts["不合格"] == 1  # the forbidden call scores 0
    assert sum(s.band_counts.values()) == 30
    assert sum(s.band_shares.values()) == pytest.approx(1.0)
    assert s.truth_mean < 100


def test_emotion_mix_per_speaker(stats):
    assert stats.emotions["agent"]["neutral"] == 30 and stats.emotions["agent"]["happy"] == 30
    assert stats.emotions["customer"]["angry"] == 8
    assert stats.emotions["customer"]["neutral"] == 22 + 29
    assert stats.emotions["customer"]["unlabelled"] == 1
    assert "unlabelled" not in stats.emotions["agent"]


def test_csat_follows_scores(stats):
    assert stats.csat.n == 25 and sum(stats.csat.counts.values()) == 25
    assert stats.csat.n_paired == 25
    assert stats.csat.spearman_vs_total > 0.5


def test_severe_inspector_is_the_harshest(stats):
    severe, fair, lenient = (_inspector(stats, r) for r in ("severe", "fair", "lenient"))
    consensus = {i.id: i.bias_vs_consensus.bias for i in stats.inspectors}
    assert min(consensus, key=consensus.get) == "severe"
    assert severe.bias_vs_consensus.n == 6 and severe.bias_vs_consensus.ci_high < 0
    assert severe.bias_vs_truth.bias == pytest.approx(-6.0) and severe.bias_vs_truth.n == 6 + 8
    assert fair.bias_vs_truth.bias == pytest.approx(0.0)
    assert lenient.bias_vs_truth.bias > 0
    assert severe.profile["severity"] == -6.0


def test_inspector_misses_kinds_and_drift(stats):
    severe, fair, lenient = (_inspector(stats, r) for r in ("severe", "fair", "lenient"))
    assert lenient.miss_rate["polite"] == 1.0 and fair.miss_rate["polite"] == 0.0
    assert severe.false_alarm_rate["closing"] == 1.0 and fair.false_alarm_rate["closing"] == 0.0
    assert fair.inspections_by_kind == {"sample": 8, "calibration": 6, "recheck": 1, "appeal": 0}
    assert lenient.inspections_by_kind["appeal"] == 1
    assert severe.drift.basis == "truth" and severe.drift.slope_per_week == pytest.approx(0.0, abs=1e-9)
    assert sum(w.n for w in severe.drift.weeks) == severe.drift.n == 14


def test_drift_slope_is_points_per_week():
    errors = [(w, -1.5 * w + 2.0) for w in (0.0, 0.5, 1.0, 2.0, 3.5)]
    d = drift(errors, "truth")
    assert d.slope_per_week == pytest.approx(-1.5)
    assert [w.week for w in d.weeks] == [0, 1, 2, 3]
    assert drift([], "truth") is None
    assert drift([(1.0, 2.0)], "consensus").slope_per_week is None


def test_agreement_on_calibration_calls(stats):
    a = stats.agreement
    assert a.calibration_calls == 6 and a.inspectors == ["fair", "lenient", "severe"]
    assert -1.0 <= a.alpha_total <= 1.0
    assert a.alpha_total_ci[0] <= a.alpha_total <= a.alpha_total_ci[1]
    # Everyone deducts greeting exactly when it is there.
    assert a.item_alpha["greeting"] == pytest.approx(1.0)
    assert a.item_alpha["forbidden"] is None  # never seen on calibration calls: undefined
    pair = next(p for p in a.pairwise if (p.rater_a, p.rater_b) == ("fair", "severe"))
    assert pair.n == 6 and pair.mean_diff == pytest.approx(6.0)


def test_without_truth_or_inspector_profiles(real_stats):
    assert not real_stats.has_truth and not real_stats.has_inspector_profiles
    assert real_stats.counts.coverage_utterances == 0 and real_stats.info == {}
    assert all(it.true_rate is None for it in real_stats.items)
    assert _item(real_stats, "closing").inspected_rate == pytest.approx(8 / 30)
    severe = _inspector(real_stats, "severe")
    assert severe.bias_vs_truth is None and severe.miss_rate == {}
    assert severe.drift.basis == "consensus" and severe.drift.n == 6
    consensus = {i.id: i.bias_vs_consensus.bias for i in real_stats.inspectors}
    assert min(consensus, key=consensus.get) == "severe"
    assert real_stats.agreement.calibration_calls == 6


def test_json_round_trip(stats):
    data = stats.to_json()
    text = json.dumps(data, allow_nan=False, ensure_ascii=False)
    assert json.loads(text) == data
    assert CorpusStats.from_json(json.loads(text)).to_json() == data


def test_render_stats_prints_every_section(stats, real_stats):
    for s in (stats, real_stats):
        console = Console(record=True, width=200)
        render_stats(s, console)
        out = console.export_text()
        for heading in ("Counts", "Defect rates", "Emotion mix", "Inspectors", "Krippendorff", "Pairwise"):
            assert heading in out
        assert "severe" in out


@pytest.mark.parametrize("which", ["synth", "real"])
def test_report_writes_plots_json_and_html(which, synth_dir, real_dir, tmp_path, caplog):
    source = synth_dir if which == "synth" else real_dir
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        stats, paths = corpus_stats_report(source, tmp_path / "out", n_boot=N_BOOT)
    assert not [w for w in caught if "Glyph" in str(w.message)]
    names = [p.name for p in paths]
    assert names[0] == "stats.json" and names[-1] == "report.html"
    expected_pngs = {
        "item_rates.png",
        "score_distribution.png",
        "emotion_mix.png",
        "inspector_bias.png",
        "inspector_drift.png",
        "pairwise_spearman.png",
    }
    assert {n for n in names if n.endswith(".png")} == expected_pngs
    for p in paths:
        assert p.is_file() and p.stat().st_size > 500
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == len(expected_pngs)
    assert "<table>" in html and "severe" in html
    assert json.loads((tmp_path / "out" / "stats.json").read_text(encoding="utf-8")) == stats.to_json()
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left behind


def test_report_defaults_to_a_stats_folder_in_the_corpus(tmp_path):
    root = make_corpus(tmp_path / "c", with_truth=False)
    _, paths = corpus_stats_report(root, n_boot=50)
    assert all(p.parent == root / "stats" for p in paths)


def test_missing_calls_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"calls\.jsonl"):
        compute_corpus_stats(tmp_path)


def test_no_nan_leaks_into_results(stats):
    def walk(x):
        if isinstance(x, float):
            assert math.isfinite(x)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(stats.to_json())


def test_labels_fall_back_to_ids_and_english_without_a_cjk_font(monkeypatch, stats):
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    assert plots.plain("质检员01") == "???01"
    assert plots.band_label("优秀") == "excellent" and plots.band_label("特优") == "??"
    assert plots.item_label(_item(stats, "greeting")) == "greeting"


def test_stats_agree_with_the_generators_own_counts(tiny_corpus, tmp_path):
    """The synthetic generator and the statistics read the same contract: their counts must agree."""
    stats, _ = corpus_stats_report(tiny_corpus, tmp_path / "out", n_boot=N_BOOT)
    declared = json.loads((tiny_corpus / "corpus.json").read_text(encoding="utf-8")).get("counts", {})
    assert stats.counts.calls_total == declared.get("calls", stats.counts.calls_total)
    assert stats.counts.calls == declared.get("calls_per_split", stats.counts.calls)
    assert stats.counts.inspections == declared.get("inspections", stats.counts.inspections)
    assert sum(stats.counts.utterances.values()) == declared.get(
        "utterances", sum(stats.counts.utterances.values())
    )
    assert stats.has_truth and stats.has_inspector_profiles
    assert stats.counts.calibration_calls >= 1
    assert all(i.profile for i in stats.inspectors)


def test_html_report_escapes_text_and_cells(tmp_path):
    from callqa.evaluation.report import Section, Table, write_html_report

    table = Table("t<1>", ["a&b"], [["<script>x</script>"], [float("nan")], [None]], note="n<ote>")
    path = write_html_report("T <&>", [Section("S", "<b>bold</b>", [table])], [], tmp_path / "r.html")
    html = path.read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "T &lt;&amp;&gt;" in html
    assert ">nan<" not in html.lower()
    assert html.count("<td>—</td>") == 2
