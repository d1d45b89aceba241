"""Finding and masking personal numbers (phone, resident ID, bank card) in call transcripts and logs.

Customer phone, ID and card numbers are personal data: transcripts, logs and exports carry them masked
unless a caller explicitly asks for raw text. ASR writes a number in Arabic digits, in Chinese digits read
one by one (一三八…, 幺 for 1, 两 for 2, 〇/零 for 0) or a mix, and often splits it into groups with
spaces, hyphens or commas. So detection works on *digit characters*, not on ``\\d``:

1. A **block** is a maximal run of digit characters (any mix of scripts). A block is never split, so an
   18-digit ID is never read as a phone number inside it, and a 12-digit order number stays whole (and,
   matching no kind, unmasked).
2. Blocks separated only by a short separator (1–3 spaces, or one hyphen/dash/comma with up to two spaces
   around it) form a **chain**. A chain may hold one number written in groups (``138-1234-5678``) or
   several numbers in a list (``13812345678，13987654321``), or a number plus an unrelated neighbour
   (``…五六七八，一会儿``).
3. Each chain is cut, at block boundaries only, into spans whose digits have the length and shape of a
   kind. Among all cuts we keep the one that covers the most digits (then the fewest spans), so a list
   of two numbers is two spans and a stray neighbour digit does not spoil the number beside it.
4. A span of several groups may not start or end with a one-digit group, unless every group is one digit
   (a number spelled out digit by digit) or it is a mobile number, whose exact shape a stray digit cannot
   fit (幺 三八 一二三四 五六七八). Numbers are written in groups of two or more digits, while a
   lone digit next to one is almost always a word (``…9999，一会儿``, ``两，…``): without this rule the kinds
   with a range of lengths (landline 10–12, card 16–19) would swallow it.
5. A chain glued to a Latin letter or underscore (``b03091117631e`` inside an MLflow run id, a hash, a
   file name) is part of an identifier, not a spoken number, and is left alone; the ID's check digit X
   is the one letter a number may end in.

Lengths and shapes (digits after normalising to ASCII):

- ``phone``: mobile ``1[3-9]`` + 9 digits, optionally prefixed ``86``/``0086`` (a ``+`` before ``86`` is
  part of the span); landline: 10–12 digits starting ``0`` (area code + 7–8 digits, with or without
  the separator).
- ``id``: 17 digits + a digit or X (``X``/``x``/``叉``). An 18-digit run without X is an ``id`` when
  digits 7–14 read as a birth date (18xx–20xx, valid month and day), otherwise a ``card``: both are
  masked alike, the kind only says which it most likely is.
- ``card``: 16, 17 or 19 digits (and 18 digits that are not a plausible ID).

Everything else is left alone on purpose: short numbers (工号, 尾号, amounts with units, dates, counts)
and runs of other lengths, including 13–15 digit runs that are not a ``86``-prefixed mobile (no kind of
ours has that length; masking them would hide order and ticket numbers inspectors need). Landlines
without an area code (7–8 digits) are not found either: they cannot be told apart from other numbers.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Final

__all__ = ["PII_KINDS", "PiiLogFilter", "PiiSpan", "find_pii", "mask_pii"]

#: The kinds :func:`find_pii` reports.
PII_KINDS: Final = ("phone", "id", "card")

# Digit characters in the scripts ASR produces, with their ASCII value. ○ (U+25CB) stands in for 〇 in
# some ASR output and hand-typed text.
_ZH_DIGITS: Final = {
    "〇": "0", "零": "0", "○": "0",
    "一": "1", "幺": "1",
    "二": "2", "两": "2",
    "三": "3", "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9",
}  # fmt: skip
_FULLWIDTH_DIGITS: Final = {chr(0xFF10 + i): str(i) for i in range(10)}
_DIGIT_CHARS: Final = frozenset("0123456789") | _ZH_DIGITS.keys() | _FULLWIDTH_DIGITS.keys()
#: Characters that may stand for the ID check digit X, and only as the last character of an ID.
_X_CHARS: Final = frozenset("Xx叉")
_PLUS_CHARS: Final = frozenset("+＋")
#: Characters of identifiers (run ids, hashes, names): a digit chain touching one is not a number.
_WORD_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_SPACE_CHARS: Final = " \t\u00a0\u3000"
_SEP_PUNCT: Final = "-‐‑‒–—－,，"
#: Digits to ASCII, separators dropped: turns a whole chain into the digit string its kind is judged on.
_NORMALISE: Final = str.maketrans(
    {**_ZH_DIGITS, **_FULLWIDTH_DIGITS, **dict.fromkeys(_SPACE_CHARS + _SEP_PUNCT)}
)

# Character classes are built from the same tables as the normalisation so the two cannot drift apart.
_DIGIT_CLASS: Final = "[" + "".join(sorted(_DIGIT_CHARS)) + "]"
_SPACE: Final = "[" + re.escape(_SPACE_CHARS) + "]"
_BLOCK_RE: Final = re.compile(_DIGIT_CLASS + "+")
# Separators between digit groups: 1-3 spaces, or one hyphen/dash/comma with up to two spaces around it.
# Non-empty and disjoint from the digit class, so a chain (blocks joined by separators) matches in linear
# time: there is only one way to split a chain into blocks and separators.
_SEP: Final = rf"(?:{_SPACE}{{1,3}}|{_SPACE}{{0,2}}[{re.escape(_SEP_PUNCT)}]{_SPACE}{{0,2}})"
_CHAIN_RE: Final = re.compile(rf"{_DIGIT_CLASS}+(?:{_SEP}{_DIGIT_CLASS}+)*")
# The X of an ID is not followed by an ASCII letter (that would be a word such as "XL", not a check digit).
_X_END_RE: Final = re.compile(r"[Xx叉](?![A-Za-z])")

_MOBILE_RE: Final = re.compile(r"(?:(?:00)?86)?1[3-9]\d{9}")
_LANDLINE_RE: Final = re.compile(r"0\d{9,11}")
# Region (six digits, first 1–9); birth date YYYYMMDD; three sequence digits and the check digit.
_ID_DATE_RE: Final = re.compile(r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{4}")
_ID_X_RE: Final = re.compile(r"\d{17}X")
_CARD_LENGTHS: Final = frozenset({16, 17, 18, 19})
#: Longest digit string of any kind (a card); longer candidates are never tried, bounding work per block.
_MAX_DIGITS: Final = 19
#: Shortest digit string of any kind (a landline); chains with fewer digits are skipped at once.
_MIN_DIGITS: Final = 10


@dataclass(frozen=True)
class PiiSpan:
    """One personal number found in a text.

    ``start``/``end`` are offsets into the original text, so callers can mask, highlight or align the span
    with word timestamps. ``text`` is the raw number and is left out of ``repr`` so that logging or printing
    a span does not leak it.
    """

    kind: str
    start: int
    end: int
    text: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class _Block:
    start: int
    end: int  # end of the digit characters, before any X
    digits: str  # normalised to ASCII
    x_end: int | None  # end offset including a trailing X/叉, when one follows the digits


def _classify(digits: str) -> str | None:
    """Return the kind whose length and shape the normalised digit string has, or None."""
    if digits.endswith("X"):
        return "id" if _ID_X_RE.fullmatch(digits) else None
    if _MOBILE_RE.fullmatch(digits) or _LANDLINE_RE.fullmatch(digits):
        return "phone"
    if len(digits) == 18 and _ID_DATE_RE.fullmatch(digits):
        return "id"
    if len(digits) in _CARD_LENGTHS:
        return "card"
    return None


def _best_cut(text: str, chain: list[_Block]) -> list[PiiSpan]:
    """Cut a chain into spans covering the most digits, then using the fewest spans (dynamic programming).

    Cutting at every block boundary and taking any classifiable run of blocks handles several numbers in a
    list and a number with a stray neighbour; maximising coverage is what stops a greedy longest match
    from gluing a landline and half a mobile into a "card". Work is bounded: a candidate never exceeds
    ``_MAX_DIGITS`` digits, so each block starts at most that many candidates.
    """
    n = len(chain)
    # best[i] = (digits covered, -spans) for chain[i:]; choice[i] = the span taken at i (None: skip block i).
    best: list[tuple[int, int]] = [(0, 0)] * (n + 1)
    choice: list[tuple[int, int, str] | None] = [None] * (n + 1)
    for i in range(n - 1, -1, -1):
        best[i], choice[i] = best[i + 1], None
        digits = ""
        longest_group = 0
        for j in range(i, n):
            digits += chain[j].digits
            longest_group = max(longest_group, len(chain[j].digits))
            if len(digits) > _MAX_DIGITS:
                break
            if len(digits) < _MIN_DIGITS:
                continue
            lone_end = (
                j > i and longest_group > 1 and (len(chain[i].digits) == 1 or len(chain[j].digits) == 1)
            )
            readings = [(digits, chain[j].end)]
            if chain[j].x_end is not None:  # with the check digit X first: it is the longer reading
                readings.insert(0, (digits + "X", chain[j].x_end))
            for reading, end in readings:
                kind = _classify(reading)
                if kind is None:
                    continue
                if lone_end and not _MOBILE_RE.fullmatch(reading):
                    break  # a lone digit at either end is a neighbouring word, not a group (rule 4)
                covered, neg_spans = best[j + 1]
                score = (covered + len(reading), neg_spans - 1)
                if score > best[i]:
                    best[i], choice[i] = score, (j, end, kind)
                break
    spans: list[PiiSpan] = []
    i = 0
    while i < n:
        picked = choice[i]
        if picked is None:
            i += 1
            continue
        j, end, kind = picked
        spans.append(_span(text, chain[i].start, kind, end))
        i = j + 1
    return spans


def _span(text: str, start: int, kind: str, end: int) -> PiiSpan:
    """Make the span ``start:end``; in "+86 138…" the plus belongs to the number too."""
    if (
        kind == "phone"
        and start > 0
        and text[start - 1] in _PLUS_CHARS
        and text[start:end].translate(_NORMALISE).startswith("86")
    ):
        start -= 1
    return PiiSpan(kind, start, end, text[start:end])


def find_pii(text: str) -> list[PiiSpan]:
    """Find phone, ID and card numbers in ``text``; spans are non-overlapping and in text order.

    Linear in the length of the text: one regex scan for chains; most chains (一, 两, 十五, 工号 digits) are
    dropped by length at once, a chain holding one number is classified whole, and only the rare chain
    holding several is cut by :func:`_best_cut`.
    """
    spans: list[PiiSpan] = []
    for m in _CHAIN_RE.finditer(text):
        start, end = m.span()
        if end - start < _MIN_DIGITS:
            continue
        digits = m.group().translate(_NORMALISE)
        if len(digits) < _MIN_DIGITS:
            continue
        # One block, or groups with no lone digit at either end: the chain can be judged whole (fast path).
        whole_ok = len(digits) == end - start or (
            text[start + 1] in _DIGIT_CHARS and text[end - 2] in _DIGIT_CHARS
        )
        # An X is neither a digit nor a separator, so it can only follow the chain's last block.
        x = _X_END_RE.match(text, end)
        if (start > 0 and text[start - 1] in _WORD_CHARS) or (
            not x and end < len(text) and text[end] in _WORD_CHARS
        ):
            continue  # part of an identifier (rule 5)
        readings = [(digits + "X", x.end())] if x else []
        readings.append((digits, end))
        for reading, reading_end in readings if whole_ok else ():
            kind = _classify(reading)
            if kind is not None:  # the whole chain as one span covers every digit: nothing can beat it
                spans.append(_span(text, start, kind, reading_end))
                break
        else:
            blocks = [
                _Block(b.start(), b.end(), b.group().translate(_NORMALISE), None)
                for b in _BLOCK_RE.finditer(text, start, end)
            ]
            if x:
                last = blocks[-1]
                blocks[-1] = _Block(last.start, last.end, last.digits, x.end())
            spans.extend(_best_cut(text, blocks))
    return spans


def mask_pii(text: str, keep_last: int = 4, mask_char: str = "*") -> str:
    """Replace the digits of every personal number by ``mask_char``, keeping the last ``keep_last`` digits.

    One character is replaced by one character, so the masked text has the same length and every offset
    (word timestamps, highlighted spans, other detectors' results) still points at the same place.
    Separators and a leading ``+`` are kept, so the masked number still reads as a number of its kind.
    The last few digits are what agents and customers use to confirm a number (尾号), so keeping them is
    safe and useful; ``keep_last=0`` masks every digit.
    """
    if len(mask_char) != 1:
        raise ValueError(f"mask_char must be one character so offsets stay valid, got {mask_char!r}")
    if keep_last < 0:
        raise ValueError(f"keep_last must be >= 0, got {keep_last}")
    spans = find_pii(text)
    if not spans:
        return text
    chars = list(text)
    for span in spans:
        positions = [
            k
            for k in range(span.start, span.end)
            if text[k] in _DIGIT_CHARS or (text[k] in _X_CHARS and k == span.end - 1)
        ]
        for k in positions[: max(len(positions) - keep_last, 0)]:
            chars[k] = mask_char
    return "".join(chars)


class PiiLogFilter(logging.Filter):
    """Mask personal numbers in log records, so nothing a handler writes leaks them.

    The record's message is formatted (``msg % args``), masked, and stored back with ``args`` cleared, in
    place: every handler that sees the record afterwards sees the masked text. Exception and stack text
    are formatted and masked as well, since exception messages often quote the offending value.

    Attach it to *handlers* (``handler.addFilter(PiiLogFilter())``): a filter on a logger only sees records
    logged on that very logger, not those propagated from its children. The filter never drops a record,
    so it takes no logger ``name`` (a named :class:`logging.Filter` would drop records from other loggers).
    """

    def __init__(self, keep_last: int = 4, mask_char: str = "*") -> None:
        super().__init__()
        self.keep_last = keep_last
        self.mask_char = mask_char

    def _mask(self, text: str) -> str:
        return mask_pii(text, keep_last=self.keep_last, mask_char=self.mask_char)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            # A bad format string would make the handler print msg and args raw in its error report;
            # keep both, masked, so the record still says what went wrong.
            message = f"{record.msg!s} args={record.args!r}"
        record.msg = self._mask(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self._mask(record.stack_info)
        return True
