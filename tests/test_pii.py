"""Phone and ID numbers inside Chinese text never survive masking; caller hashes are keyed and stable."""
from __future__ import annotations

import re

from hypothesis import given, settings, strategies as st

from cityops.pii import caller_hash, mask_payload, mask_text

from tests.personal import CJK, EMAIL, MOBILE_DIGITS, NAMED, NUMBER, PUNCT, readable


@settings(max_examples=300, deadline=None)
@given(before=CJK, p1=PUNCT, secret=st.one_of(NUMBER, EMAIL), p2=PUNCT, after=CJK)
def test_numbers_inside_chinese_text_are_masked(before, p1, secret, p2, after):
    """Mobiles (+86, 0086, spaces, dashes), landlines, 18- and 15-digit IDs, bank cards and e-mail addresses."""
    masked = mask_text(f"{before}{p1}{secret}{p2}{after}")
    assert not readable(secret, masked), masked   # nor with separators dropped
    assert before in masked and after in masked   # the complaint itself survives


@settings(max_examples=100, deadline=None)
@given(phone=MOBILE_DIGITS, sep=st.sampled_from(["", " ", "-"]))
def test_formatted_mobiles_are_masked(phone, sep):
    text = f"请联系+86{sep}{phone[:3]}{sep}{phone[3:7]}{sep}{phone[7:]}谢谢"
    assert phone not in re.sub(r"\D", "", mask_text(text))


@given(text=st.text(max_size=200))
def test_masking_is_idempotent(text):
    once = mask_text(text)
    assert mask_text(once) == once


def test_names_after_self_introduction_are_masked():
    assert mask_text("我叫张三，家住张店区") == "我叫张*，家住张店区"
    assert "李四" not in mask_text("联系人：李四。")
    assert mask_text("我叫张三电话13812345678") == "我叫张**话138******78"
    assert mask_text("免贵姓王，王先生说") == "免贵姓*，*先生说"
    assert mask_text("联系人电话0533-2345678") == "联系人电话0533*******"   # a marker without a name


@settings(max_examples=300, deadline=None)
@given(before=CJK, named=NAMED, after=CJK)
def test_names_in_a_complaint_are_masked(before, named, after):
    form, name = named
    assert not readable(name, mask_text(f"{before}{form}{after}"))


@settings(max_examples=300, deadline=None)
@given(before=CJK, secret=st.one_of(NUMBER, EMAIL), named=NAMED, encoding=st.sampled_from(["utf-8", "gbk", "gb18030",
                                                                                            "utf-16"]),
       as_json=st.booleans(), escaped=st.booleans(), cut=st.integers(0, 3))
def test_a_raw_payload_is_masked_whatever_its_encoding(before, secret, named, encoding, as_json, escaped, cut):
    """What a dead letter keeps of a message: GBK/GB18030/UTF-16 bytes, JSON with \\u escapes (Python's default),
    name fields, or bytes cut short are all read, and no personal datum survives in what is kept."""
    import json

    form, name = named
    text = f"{before}{form}{secret}"
    raw = json.dumps({"ticket_id": "T-1", "text": text, "caller_name": name}, ensure_ascii=escaped) if as_json \
        else f'{{"ticket_id": "T-1", "text": "{text}", "caller_name": "{name}" '   # invalid JSON
    payload = raw.encode(encoding)
    payload = payload[:len(payload) - cut] if not as_json else payload
    kept, how = mask_payload(payload, 4096)
    assert kept is not None and how != "undecodable"
    assert not readable(secret, kept) and not readable(name, kept), kept


def test_bytes_that_are_not_text_keep_nothing():
    import os

    assert mask_payload(os.urandom(2000), 4096) == (None, "undecodable")
    kept, how = mask_payload("我叫张三 13812345678".encode("gbk"), 4096)
    assert how == "gb18030" and kept == "我叫张* 138******78"


def test_caller_hash_is_keyed_stable_and_format_blind():
    a = caller_hash("13812345678", "k1")
    assert a == caller_hash("+86 138-1234-5678", "k1") and len(a) == 20
    assert a != caller_hash("13812345678", "k2")
    assert caller_hash(None, "k1") == caller_hash("", "k1") == ""


def _mask_without_hints(text: str) -> str:
    """mask_text as the substitutions alone, without the pre-checks that skip them."""
    from cityops import pii

    text = pii._LONG_NUMBER.sub(lambda m: m.group()[:3] + "*" * (len(m.group()) - 3), text)
    text = pii._CARD.sub(pii._card, text)
    text = pii._MOBILE.sub(lambda m: pii._keep_ends(re.sub(r"\D", "", m.group())[-11:], 3, 2), text)
    text = pii._LANDLINE.sub(lambda m: pii._keep_ends(m.group(), 4, 0), text)
    text = pii._EMAIL.sub(lambda m: m.group()[0] + "***@" + m.group().rpartition("@")[2], text)
    return pii._mask_names(text)


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(st.one_of(CJK, PUNCT, NUMBER, EMAIL, NAMED.map(lambda x: x[0]),
                                st.sampled_from(["１３８", "٣٤٥", "王先生", "免贵姓张", "a@b"]),
                                st.text(alphabet="0123456789-+ @.", max_size=14)), max_size=6))
def test_pre_checks_never_change_the_result(parts):
    text = "".join(parts)
    assert mask_text(text) == _mask_without_hints(text)
