"""The character n-gram: a proper distribution, saved and read back, and fused into beam search."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from callqa.models.asr.decoding import LmFusion, prefix_beam_search
from callqa.models.asr.lm import BOS, CharNgram

VOCAB = ["<blank>", "<unk>", "员", "工", "公", "号", "司"]
TEXTS = [[2, 3, 5], [2, 3, 5], [4, 6], [2, 3], [4, 6, 2, 3, 5]]  # 员工号 员工号 公司 员工 公司员工号


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("context", [(), (2,), (BOS, BOS), (2, 3), (6, 6)])
def test_every_context_is_a_distribution(order: int, context: tuple[int, ...]) -> None:
    lm = CharNgram.train(TEXTS, VOCAB, order=order)
    assert math.fsum(math.exp(lm.logp(context, t)) for t in range(len(VOCAB))) == pytest.approx(1.0)


def test_context_tells_homophones_apart() -> None:
    lm = CharNgram.train(TEXTS, VOCAB, order=3)
    assert lm.logp((BOS, 2), 3) > lm.logp((BOS, 2), 4) + 1.0  # 员 -> 工, not 公
    assert lm.logp((BOS, BOS), 4) > lm.logp((3, 5), 4)  # 公 starts utterances, never follows 工号
    assert lm.score([2, 3, 5]) > lm.score([2, 4, 5])


def test_saved_model_reads_back_the_same(tmp_path: Path) -> None:
    lm = CharNgram.train(TEXTS, VOCAB, order=3)
    path = lm.save(tmp_path / "lm.json")
    again = CharNgram.load(path, VOCAB)
    assert again.score([4, 6, 2, 3]) == pytest.approx(lm.score([4, 6, 2, 3]))
    with pytest.raises(ValueError, match="different vocabulary"):
        CharNgram.load(path, [*VOCAB, "话"])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match=r"bad\.json: not a callqa character n-gram"):
        CharNgram.load(tmp_path / "bad.json")


def test_fusion_picks_the_homophone_the_text_supports() -> None:
    """The acoustics slightly prefer 公 after 员; the n-gram knows 员工."""
    frames = np.full((5, len(VOCAB)), -10.0)
    frames[0, 2] = frames[2, 5] = -0.01  # 员 _ 号 clear
    frames[1, 4], frames[1, 3] = -0.6, -0.8  # 公 a little likelier than 工
    frames[3, 0] = frames[4, 0] = -0.01
    plain = prefix_beam_search(frames, beam=4)[0][0]
    assert plain == [2, 4, 5]
    fused = prefix_beam_search(frames, beam=4, lm=LmFusion(CharNgram.train(TEXTS, VOCAB)))[0][0]
    assert fused == [2, 3, 5]
