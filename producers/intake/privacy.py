"""The public form of a citizen's report: masked text and address, coordinates to about 100 m.

Anyone may read requests.json, so the public answer shows where a problem is, not who reported it or
which door they live behind; the request store turns what it keeps into this form after its retention.
"""
from __future__ import annotations

import json
import re

from cityops.pii import mask_text

# 0.001° is 111 m north-south and 89 m east-west at Zibo's latitude: the block, not the building.
PUBLIC_DECIMALS = 3
# House, building, unit, floor and room numbers: digits anywhere, Chinese numerals before a unit word.
_NUMBERS = re.compile(r"\d+|[零〇一二两三四五六七八九十百千]+(?=号|栋|幢|座|单元|室|楼|层|户|排|弄|巷)")


def public_address(address: str | None) -> str | None:
    return None if address is None else _NUMBERS.sub("*", mask_text(address))


def rounded(degrees: float | None) -> float | None:
    return None if degrees is None else round(degrees, PUBLIC_DECIMALS)


def forgotten_event(event: str) -> str:
    """A stored AppReport (JSON) without what identifies its reporter: text masked, address and place coarse."""
    doc = json.loads(event)
    doc.pop("reporter_phone", None)
    doc["text"] = mask_text(doc["text"])
    if doc.get("address"):
        doc["address"] = public_address(doc["address"])
    for axis in ("lat", "lon"):
        if doc.get(axis) is not None:
            doc[axis] = rounded(doc[axis])
    return json.dumps(doc, ensure_ascii=False)
