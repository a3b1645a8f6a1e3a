"""How many SMS segments a text takes: GSM-7 when every character is in its alphabet, UCS-2 otherwise."""

from __future__ import annotations

from collections.abc import Iterable

# GSM 03.38: the basic alphabet (one septet each) and its extension table (an escape and a septet: two).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")
# Characters in one segment, and in each part of a longer (concatenated) message.
SINGLE = {"GSM-7": 160, "UCS-2": 70}
PART = {"GSM-7": 153, "UCS-2": 67}


def encoding(text: str) -> str:
    """GSM-7 if the whole text fits its alphabet; one character outside it sends everything as UCS-2."""
    return "GSM-7" if all(char in GSM7_BASIC or char in GSM7_EXTENDED for char in text) else "UCS-2"


def length(text: str) -> int:
    """Length in the text's encoding: extension characters take two septets, UCS-2 counts UTF-16 units."""
    if encoding(text) == "GSM-7":
        return sum(2 if char in GSM7_EXTENDED else 1 for char in text)
    return len(text.encode("utf-16-le")) // 2


def segments(text: str) -> int:
    kind, size = encoding(text), length(text)
    if size <= SINGLE[kind]:
        return 1
    return -(-size // PART[kind])


def shortest_fit(candidates: Iterable[str]) -> str:
    """The first candidate (richest first) that fits one segment, else the one taking fewest segments."""
    options = list(candidates)
    for text in options:
        if segments(text) == 1:
            return text
    return min(options, key=segments)
