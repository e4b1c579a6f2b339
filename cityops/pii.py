"""Citizens' personal data never leaves the intake in clear text: mask it in free text, hash callers."""
from __future__ import annotations

import hashlib
import hmac
import re

# Mainland mobile (1[3-9]x, 11 digits), landline with area code, 18-char resident ID (last may be X).
# Lookarounds instead of \b: Chinese characters count as word characters, so \b misses "电话13812345678".
_ID = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)0\d{2,3}-?\d{7,8}(?!\d)")
# A name right after a self-introduction or honorific form: 我叫张三 / 姓名：李四 / 联系人王五.
_NAME = re.compile(r"((?:我叫|我是|姓名[:：]?|联系人[:：]?|本人)\s*)([\u4e00-\u9fa5]{2,3})(?=[，,。.；;、\s]|$)")
# Every number pattern above contains three consecutive digits (\d as they use it, Unicode) and every name
# follows one of these markers: one search tells most complaints apart from the four substitutions.
_NUMBER_HINT = re.compile(r"\d{3}")
_NAME_HINT = re.compile(r"我叫|我是|姓名|联系人|本人")


def mask_text(text: str) -> str:
    if _NUMBER_HINT.search(text) is None:
        return _mask_name(text)
    text = _ID.sub(lambda m: m.group()[:3] + "*" * 15, text)
    text = _MOBILE.sub(lambda m: _keep_ends(re.sub(r"\D", "", m.group())[-11:], 3, 2), text)
    text = _LANDLINE.sub(lambda m: _keep_ends(m.group(), 4, 0), text)
    return _mask_name(text)


def _mask_name(text: str) -> str:
    if _NAME_HINT.search(text) is None:
        return text
    return _NAME.sub(lambda m: m.group(1) + m.group(2)[0] + "*" * (len(m.group(2)) - 1), text)


def caller_hash(phone: str | None, key: str) -> str:
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)[-11:]
    return hmac.new(key.encode(), digits.encode(), hashlib.sha256).hexdigest()[:20]


def _keep_ends(s: str, head: int, tail: int) -> str:
    digits = re.sub(r"\D", "", s)
    return digits[:head] + "*" * (len(digits) - head - tail) + (digits[-tail:] if tail else "")
