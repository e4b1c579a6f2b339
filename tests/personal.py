"""Generated personal data (hypothesis strategies) and the checks that none of it is readable in some output.

A secret is "readable" when its digits appear in a row (separators dropped) or a name appears whole."""
from __future__ import annotations

import re

from hypothesis import strategies as st

CJK = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), max_size=12)
PUNCT = st.sampled_from(["", "，", "。", "：", " ", "（", "）", "电话", "手机号", "身份证号", "卡号", "邮箱"])
SEP = st.sampled_from(["", " ", "-"])


def _luhn_digit(body: str) -> str:
    total = 0
    for i, d in enumerate(reversed(body)):
        n = int(d) * (1 if i % 2 else 2)
        total += n - 9 if n > 9 else n
    return str((10 - total % 10) % 10)


MOBILE_DIGITS = st.builds(lambda p, rest: f"1{p}{rest}", st.sampled_from("3456789"),
                          st.from_regex(r"[0-9]{9}", fullmatch=True))
MOBILE = st.builds(lambda prefix, d, sep: f"{prefix}{d[:3]}{sep}{d[3:7]}{sep}{d[7:]}",
                   st.sampled_from(["", "+86", "+86 ", "0086", "0086-", "86"]), MOBILE_DIGITS, SEP)
ID18 = st.builds(lambda area, y, m, d, seq, chk: f"{area}{y}{m:02d}{d:02d}{seq}{chk}",
                 st.from_regex(r"[1-9][0-9]{5}", fullmatch=True), st.integers(1920, 2025), st.integers(1, 12),
                 st.integers(1, 28), st.from_regex(r"[0-9]{3}", fullmatch=True), st.sampled_from("0123456789Xx"))
ID15 = st.builds(lambda area, y, m, d, seq: f"{area}{y:02d}{m:02d}{d:02d}{seq}",
                 st.from_regex(r"[1-9][0-9]{5}", fullmatch=True), st.integers(30, 99), st.integers(1, 12),
                 st.integers(1, 28), st.from_regex(r"[0-9]{3}", fullmatch=True))
LANDLINE = st.builds(lambda a, n, form: form.format(a=f"0{a}", n=n), st.from_regex(r"[0-9]{2,3}", fullmatch=True),
                     st.from_regex(r"[2-8][0-9]{6,7}", fullmatch=True),
                     st.sampled_from(["{a}-{n}", "{a}{n}", "{a} {n}", "({a}){n}", "（{a}）{n}"]))
CARD = st.builds(lambda body, sep: (lambda n: sep.join(n[i:i + 4] for i in range(0, len(n), 4)))(body + _luhn_digit(body)),
                 st.from_regex(r"62[0-9]{14}|62[0-9]{16}", fullmatch=True), st.sampled_from(["", " ", "-"]))
EMAIL = st.builds(lambda user, host: f"{user}@{host}.com", st.from_regex(r"[a-z][a-z0-9._]{2,11}", fullmatch=True),
                  st.from_regex(r"[a-z]{2,8}", fullmatch=True))
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华建国志红玉梅鹏飞"
NAME = st.builds(lambda s, g: s + g, st.sampled_from(SURNAMES), st.text(alphabet=GIVEN, min_size=1, max_size=2))
# How a caller puts a name into a complaint; `{}` is the name.
NAME_FORMS = st.sampled_from(["我叫{}，", "我叫{}", "姓名：{}。", "联系人{} ", "我是{}，", "本人叫{}", "我是{}电话"])
NAMED = st.builds(lambda form, name: (form.format(name), name), NAME_FORMS, NAME)
NUMBER = st.one_of(MOBILE, ID18, ID15, LANDLINE, CARD)


def digits(s: str) -> str:
    return re.sub(r"\D", "", s)


_NUMBER = re.compile(r"\d[\d\s\-()（）+]*")


def readable(secret: str, text: str) -> bool:
    """Is `secret` (a number, an e-mail or a name) readable in `text`, also with its separators changed?"""
    if secret in text:
        return True
    d = digits(secret)
    if "@" in secret or len(d) < 7:
        return False
    return any(d in digits(m.group()) for m in _NUMBER.finditer(text))


def warehouse_texts(dsn: str) -> dict[str, str]:
    """Every string column of every table of an embedded warehouse (base64 columns decoded), one text each,
    read in a child process (an embedded warehouse admits one process, and the caller may hold another)."""
    from bench.pipeline import query

    columns = query(dsn, {"c": "SELECT table, name FROM system.columns WHERE database = currentDatabase() "
                                "AND type LIKE '%String%' AND table NOT LIKE '.inner%' AND table IN "
                                "(SELECT name FROM system.tables WHERE database = currentDatabase() "
                                "AND engine LIKE '%MergeTree%')"})["c"]
    sql = {f"{t}.{c}": f"SELECT arrayStringConcat(groupArray(toString("
                       f"{'tryBase64Decode(`' + c + '`)' if c.endswith('_b64') else '`' + c + '`'})), '\\n') "
                       f"FROM `{t}`" for t, c in columns}
    return {where: rows[0][0] or "" for where, rows in query(dsn, sql).items()}
