"""Character vocabulary for Chinese CTC models, saved inside every checkpoint and ONNX file.

Chinese ASR predicts characters: no word segmentation to disagree about, and the inventory is closed
enough (a few thousand) for a softmax. Index 0 is the CTC blank and 1 stands for characters the model
never saw, so an unseen character costs one error instead of a crash. NumPy/stdlib only: the scoring
server decodes with it and must not need torch.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

BLANK = "<blank>"
UNK = "<unk>"

#: What the model transcribes: Chinese characters, digits and Latin letters. Punctuation and spaces are
#: not spoken, so they are not targets.
_KEEP = re.compile(r"[\u4e00-\u9fff0-9a-z]")


def normalize(text: str) -> str:
    """The form text is scored in: NFKC (full-width to half-width), lower case, spoken characters only."""
    return "".join(_KEEP.findall(unicodedata.normalize("NFKC", text).lower()))


@dataclass
class CharTokenizer:
    """Maps characters to ids and back. Build it from training text with :meth:`build`."""

    chars: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.vocab = [BLANK, UNK, *self.chars]
        self.index = {c: i for i, c in enumerate(self.vocab)}

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> CharTokenizer:
        """Vocabulary from training text, sorted by frequency then code point so the ids are reproducible."""
        counts = Counter(c for t in texts for c in normalize(t))
        chars = sorted((c for c, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], c))
        return cls(chars)

    @property
    def blank_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        return [self.index.get(c, self.unk_id) for c in normalize(text)]

    def decode(self, ids: Sequence[int]) -> str:
        """Ids to text; blank is dropped and unknown characters are left out of the transcript."""
        return "".join(self.vocab[i] for i in ids if i > self.unk_id)

    def to_json(self) -> str:
        return json.dumps({"type": "char", "chars": self.chars}, ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str) -> CharTokenizer:
        obj = json.loads(data)
        if obj.get("type") != "char":
            raise ValueError(f"not a character tokenizer: type={obj.get('type')!r}")
        return cls(list(obj["chars"]))
