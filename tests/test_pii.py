"""Phone and ID numbers inside Chinese text never survive masking; caller hashes are keyed and stable."""
from __future__ import annotations

import re

from hypothesis import given, settings, strategies as st

from cityops.pii import caller_hash, mask_text

CJK = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), max_size=12)
PUNCT = st.sampled_from(["", "，", "。", "：", " ", "（", "）", "电话", "手机号", "身份证号"])
MOBILE = st.builds(lambda p, rest: f"1{p}{rest}", st.sampled_from("3456789"), st.from_regex(r"\d{9}", fullmatch=True))
ID = st.builds(lambda area, y, m, d, seq, chk: f"{area}{y}{m:02d}{d:02d}{seq}{chk}",
               st.from_regex(r"[1-9]\d{5}", fullmatch=True), st.integers(1920, 2025), st.integers(1, 12),
               st.integers(1, 28), st.from_regex(r"\d{3}", fullmatch=True), st.sampled_from("0123456789Xx"))
LANDLINE = st.builds(lambda a, n: f"0{a}-{n}", st.from_regex(r"\d{2,3}", fullmatch=True),
                     st.from_regex(r"[2-8]\d{6,7}", fullmatch=True))
SECRET = st.one_of(MOBILE, ID, LANDLINE)


@settings(max_examples=300, deadline=None)
@given(before=CJK, p1=PUNCT, secret=SECRET, p2=PUNCT, after=CJK)
def test_numbers_inside_chinese_text_are_masked(before, p1, secret, p2, after):
    masked = mask_text(f"{before}{p1}{secret}{p2}{after}")
    assert secret not in masked
    assert re.sub(r"\D", "", secret) not in re.sub(r"\D", "", masked)   # nor with separators dropped
    assert before in masked and after in masked   # the complaint itself survives


@settings(max_examples=100, deadline=None)
@given(phone=MOBILE, sep=st.sampled_from(["", " ", "-"]))
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


def test_caller_hash_is_keyed_stable_and_format_blind():
    a = caller_hash("13812345678", "k1")
    assert a == caller_hash("+86 138-1234-5678", "k1") and len(a) == 20
    assert a != caller_hash("13812345678", "k2")
    assert caller_hash(None, "k1") == caller_hash("", "k1") == ""


def _mask_without_hints(text: str) -> str:
    """mask_text as the four substitutions alone, without the pre-checks that skip them."""
    from cityops import pii

    text = pii._ID.sub(lambda m: m.group()[:3] + "*" * 15, text)
    text = pii._MOBILE.sub(lambda m: pii._keep_ends(re.sub(r"\D", "", m.group())[-11:], 3, 2), text)
    text = pii._LANDLINE.sub(lambda m: pii._keep_ends(m.group(), 4, 0), text)
    return pii._NAME.sub(lambda m: m.group(1) + m.group(2)[0] + "*" * (len(m.group(2)) - 1), text)


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(st.one_of(CJK, PUNCT, SECRET, st.sampled_from(["我叫张三", "联系人：李四。", "姓名王五 ", "１３８", "٣٤٥"]),
                                st.text(alphabet="0123456789-+ ", max_size=14)), max_size=6))
def test_pre_checks_never_change_the_result(parts):
    text = "".join(parts)
    assert mask_text(text) == _mask_without_hints(text)
