"""How many SMS segments a text costs: GSM-7 when every character has a GSM 03.38 code,
UCS-2 (UTF-16 code units) as soon as one does not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import gsm0338  # type: ignore[import-untyped]  # noqa: F401  (registers the codec)

GSM_SINGLE, GSM_CONCATENATED = 160, 153
UCS2_SINGLE, UCS2_CONCATENATED = 70, 67


@dataclass(frozen=True)
class SegmentCount:
    encoding: Literal["GSM-7", "UCS-2"]
    units: int  # septets for GSM-7 (an escaped character takes two), UTF-16 units for UCS-2
    segments: int


def count_segments(text: str) -> SegmentCount:
    try:
        units = len(text.encode("gsm03.38"))
        encoding: Literal["GSM-7", "UCS-2"] = "GSM-7"
        single, concatenated = GSM_SINGLE, GSM_CONCATENATED
    except UnicodeEncodeError:
        units = len(text.encode("utf-16-le")) // 2
        encoding = "UCS-2"
        single, concatenated = UCS2_SINGLE, UCS2_CONCATENATED
    segments = 1 if units <= single else -(-units // concatenated)
    return SegmentCount(encoding, units, segments)
