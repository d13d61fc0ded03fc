"""How many SMS segments a text costs: GSM-7 when every character has a GSM 03.38 code,
UCS-2 (UTF-16 code units) as soon as one does not."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

from gsm0338.charset import (  # type: ignore[import-untyped]
    BASIC_CHARACTER_SET,
    BASIC_CHARACTER_SET_EXTENSION,
)

GSM_SINGLE, GSM_CONCATENATED = 160, 153
UCS2_SINGLE, UCS2_CONCATENATED = 70, 67

# Septets of each character GSM 03.38 encodes: one from the basic set, two (escape and
# code) from its extension table. Counted from the table rather than by encoding: the
# codec builds its output a byte at a time, which costs as much as the rest of composing.
SEPTETS: dict[str, int] = {
    unicodedata.lookup(name): 2 for name in BASIC_CHARACTER_SET_EXTENSION.values()
} | {unicodedata.lookup(name): 1 for name in BASIC_CHARACTER_SET.values()}


@dataclass(frozen=True)
class SegmentCount:
    encoding: Literal["GSM-7", "UCS-2"]
    units: int  # septets for GSM-7 (an escaped character takes two), UTF-16 units for UCS-2
    segments: int


def count_segments(text: str) -> SegmentCount:
    try:
        units = sum(SEPTETS[character] for character in text)
        encoding: Literal["GSM-7", "UCS-2"] = "GSM-7"
        single, concatenated = GSM_SINGLE, GSM_CONCATENATED
    except KeyError:
        units = len(text.encode("utf-16-le")) // 2
        encoding = "UCS-2"
        single, concatenated = UCS2_SINGLE, UCS2_CONCATENATED
    segments = 1 if units <= single else -(-units // concatenated)
    return SegmentCount(encoding, units, segments)
