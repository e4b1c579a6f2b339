"""Citizens' personal data never leaves the intake in clear text: mask it in free text and in raw payloads,
hash callers."""
from __future__ import annotations

import codecs
import hashlib
import hmac
import re

import orjson

# Lookarounds instead of \b: Chinese characters count as word characters, so \b misses "电话13812345678".
# Mainland mobile (1[3-9]x, 11 digits), with +86 / 0086 / 86 and one space or dash between groups.
_MOBILE = re.compile(r"(?<!\d)(?:(?:\+|00)?86[\s\-－]?)?1[3-9]\d[\s\-－]?\d{4}[\s\-－]?\d{4}(?!\d)")
# Landline with its area code: 0533-2345678, 0533 2345678, (0533)2345678, with an optional extension.
_LANDLINE = re.compile(r"(?<!\d)(?:[(（]0\d{2,3}[)）]|0\d{2,3})[\s\-－]?[2-9]\d{6,7}(?:[-转]\d{1,5})?(?!\d)")
# Resident ID numbers (18 digits, the last may be X; 15 digits before 1999) and any longer run of digits:
# a citizen's number of that length is never needed in clear.
_LONG_NUMBER = re.compile(r"(?<!\d)\d{15,}[Xx]?(?!\d)")
# Bank cards written in groups (6222 0212 3456 7890 123): 16–19 digits that pass the Luhn check.
_CARD = re.compile(r"(?<!\d)\d{4}(?:[\s\-]\d{4}){3}(?:[\s\-]?\d{1,3})?(?!\d)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# A name after a self-introduction or a contact marker: 我叫张三 / 姓名：李四 / 联系人王五 / 我是赵六，.
# After the markers that always introduce a name, its 2–3 characters are taken whatever follows.
_NAME_STRONG = re.compile(r"((?:我叫|我名叫|名字叫|名字是|姓名|联系人|本人叫)[\s:：是为]*)(?!电话|手机|方式|号码)([\u4e00-\u9fa5]{2,3})")
_NAME_WEAK = re.compile(r"((?:我是|本人|报料人|反映人)[\s:：]*)([\u4e00-\u9fa5]{2,3})(?=[，,。.；;、！!\s]|电话|手机|联系|$)")
# A surname on its own: 我姓王 / 免贵姓张 / 王先生 / 李女士.
_SURNAME = re.compile(r"((?:我|免贵|本人)姓)([\u4e00-\u9fa5])|([\u4e00-\u9fa5])(?=先生|女士|小姐|师傅|阿姨|大爷)")
# Every number pattern above holds three digits in a row (\d as they use it, Unicode); every name follows a
# marker: one search tells most complaints apart from the substitutions.
_NUMBER_HINT = re.compile(r"\d{3}")
_NAME_HINT = re.compile(r"我叫|名叫|名字|姓|联系人|我是|本人|报料人|反映人|先生|女士|小姐|师傅|阿姨|大爷")

# Fields that hold a person's name or contact, in any payload: their values are never kept.
PERSONAL_FIELDS = frozenset({"caller_name", "caller_phone", "reporter_name", "reporter_phone", "first_name",
                             "last_name", "name", "email", "phone", "contact", "id_number", "id_card"})
_FIELD_VALUE = re.compile(r'("(?:%s)"\s*:\s*)("(?:[^"\\]|\\.)*"|[^,}\]\s]+)' % "|".join(sorted(PERSONAL_FIELDS)))
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def mask_text(text: str) -> str:
    if _NUMBER_HINT.search(text) is not None:
        text = _LONG_NUMBER.sub(lambda m: m.group()[:3] + "*" * (len(m.group()) - 3), text)
        text = _CARD.sub(_card, text)
        text = _MOBILE.sub(lambda m: _keep_ends(re.sub(r"\D", "", m.group())[-11:], 3, 2), text)
        text = _LANDLINE.sub(lambda m: _keep_ends(m.group(), 4, 0), text)
    if "@" in text:
        text = _EMAIL.sub(lambda m: m.group()[0] + "***@" + m.group().rpartition("@")[2], text)
    return _mask_names(text) if _NAME_HINT.search(text) is not None else text


def _mask_names(text: str) -> str:
    text = _NAME_STRONG.sub(lambda m: m.group(1) + m.group(2)[0] + "*" * (len(m.group(2)) - 1), text)
    text = _NAME_WEAK.sub(lambda m: m.group(1) + m.group(2)[0] + "*" * (len(m.group(2)) - 1), text)
    return _SURNAME.sub(lambda m: m.group(1) + "*" if m.group(1) else "*", text)


def _card(m: re.Match) -> str:
    digits = re.sub(r"\D", "", m.group())
    return _keep_ends(digits, 4, 0) if 16 <= len(digits) <= 19 and _luhn(digits) else m.group()


def _luhn(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def caller_hash(phone: str | None, key: str) -> str:
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)[-11:]
    return hmac.new(key.encode(), digits.encode(), hashlib.sha256).hexdigest()[:20]


def _keep_ends(s: str, head: int, tail: int) -> str:
    digits = re.sub(r"\D", "", s)
    return digits[:head] + "*" * (len(digits) - head - tail) + (digits[-tail:] if tail else "")


# -- raw payloads -----------------------------------------------------------------------------------

def read_text(payload: bytes) -> tuple[str | None, str]:
    """The payload as text and the encoding it was read in, trying what Chinese sources send: UTF-8 (with or
    without a BOM), UTF-16 (BOM or NUL-padded ASCII), GB18030 (a superset of GBK), then UTF-8 with the broken
    bytes replaced. (None, "undecodable") when it is not text at all."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if payload.startswith(bom):
            return payload[len(bom):].decode(codec, errors="replace"), codec
    codecs_to_try = ["utf-8", "gb18030"]
    if payload.count(0) * 4 > len(payload):   # NUL every other byte: UTF-16 without a BOM
        codecs_to_try = ["utf-16-le" if payload[1:2] == b"\0" else "utf-16-be", *codecs_to_try]
    for codec in codecs_to_try:
        try:
            return payload.decode(codec), codec
        except UnicodeDecodeError:
            continue
    # A few broken bytes (cut short, one bad character) still make text: the reading with the fewest.
    text, codec = min(((payload.decode(c, errors="replace"), c) for c in codecs_to_try),
                      key=lambda tc: tc[0].count("\ufffd"))
    if text.count("\ufffd") * 50 <= len(text):
        return text, f"{codec}-lenient"
    return None, "undecodable"


def mask_payload(payload: bytes, limit: int) -> tuple[str | None, str]:
    """A raw message as masked text of at most `limit` characters and the encoding it was read in: JSON-escaped
    characters unescaped, the values of personal fields dropped, every string masked. (None, "undecodable") when
    the bytes are not text: then nothing of them may be kept."""
    text, encoding = read_text(payload)
    if text is None:
        return None, encoding
    if len(text) <= 64 * 1024:
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        else:
            return orjson.dumps(_mask_doc(doc)).decode()[:limit], encoding
    head = text[:limit + 256]   # masked with some context past the cut, so no number is cut in two unmasked
    head = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), head)
    head = _FIELD_VALUE.sub(lambda m: m.group(1) + '"***"', head)
    return mask_text(head)[:limit], encoding


def _mask_doc(doc):
    if isinstance(doc, dict):
        return {k: "***" if k in PERSONAL_FIELDS and v not in (None, "") else _mask_doc(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_mask_doc(v) for v in doc]
    if isinstance(doc, str):
        return mask_text(doc)
    if isinstance(doc, int) and not isinstance(doc, bool) and abs(doc) >= 1_000_000:   # a phone sent as a number
        masked = mask_text(str(doc))
        return doc if masked == str(doc) else masked
    return doc
