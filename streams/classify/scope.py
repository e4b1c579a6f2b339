"""Which parts of a complaint speak about its subject: negated, main, minor or plain spans.

Citizens correct a guess before it is made ("不是工地 … 吵的是歌厅", "不是…而是…"), name several problems
and then the one they call about ("最危险的是…", "要求先…"), or wave one away ("油烟倒还好"). `spans`
cuts the text into weighted pieces; the rules and the model score each piece and add the scores times
its weight, so a negated subject counts against its label and the main request counts double.
Plain text without any marker comes back whole, so the common case costs one regex search.
"""
from __future__ import annotations

import re

PLAIN, MAIN, MINOR, NEGATED = 1.0, 2.0, 0.5, -1.0
BACKGROUND = 0.5  # the other problems of a message that names its main one

# Clause ends: punctuation and the spaces app users type instead of it. 「…」 is a pause, not an end.
_CLAUSE = re.compile(r"[，,。.！!？?；;：:、\s①-⑳⑴-⒇]+")  # circled numbers open the items of a list
_FILLER = "…~～ \t\"'“”「」（）()"

# 是不是 asks; 不是很/不是太/不是一般 grade rather than deny; 不是…就是… lists both; 不是…吗 is a rhetorical yes.
_NEGATION = re.compile(r"(?:我不是说|并不是|而不是|(?<!是)不是|并非|算不上)(?!很|太|特别|一般|一次|一天|说)")
_NOT_NEGATION_END = re.compile(r"(?:吗|嘛|么|呢)$")
_EITHER = re.compile(r"就是")
# The correction after a negation: 而是 / 是 / 吵的是 … starting a clause, within the next few clauses.
_CORRECTION = re.compile(r"(?:而是|但是|其实是|实际上是|就是|的是|只是|(?<![但还可总于真要老凡像都也])是)")
# 「现在是…」: a correction may open with when or how it is meant.
_CORRECTION_LEAD = ("", "现在", "如今", "这回", "其实", "主要")
_MAIN = re.compile(
    r"(?:最(?:主要|要紧|要命|危险|严重|急|关键|受不了|烦|头疼|担心|怕|气人|难受)的?(?:就|还)?是|最[^的\s]{1,4}的(?:就|还)?是|"
    r"(?<!不)(?:要紧|要命|危险|麻烦|头疼|可怕|吓人|闹心|糟心)的(?:就|还)?是|主要(?:就)?是|主要说|主要反映|"
    r"关键(?:的)?是|重点是|重点说|(?<![不次])重要的(?:是)?|当务之急是|根子在|根本原因是|主要原因是|(?:毛病|问题)(?:就)?(?:出在|在于|是)|"
    r"(?:要|想)(?:反映|说|投诉|问)的(?:就)?是|主要想(?:说|问|反映)?(?:的是|是)?|诉求(?:是)?|要求先|先把|先处理|先解决|先派人|首先|优先)")
# 「1.人行道上的冰溜子（最危险，先处理）」: the mark follows the problem it names.
_MAIN_AFTER = re.compile(r"[（(](?:最|先|优先|紧急)")
# 「这个优先」, 「后面这个是主要的」: the main request named by pointing back at the problem before it.
_POINT_BACK = re.compile(r"^(?:这个|这件事?|这事|这条|后面这个|后边这个|后面|后边)\S{0,3}?(?:是主要的|是重点|是关键|最要紧|最急|"
                         r"最危险|优先|先处理|请先处理|要紧)")
# 「跟路灯没关系」 acquits what it names, as 不是 does.
_UNRELATED = re.compile(r"(?:跟|和|与)(.{1,10}?)(?:没|没有|无)(?:啥|什么|多大)?关系")
# A clause that acquits its subject (「路面挺好的」, 「路灯上礼拜修好了」) says the problem is elsewhere.
_FINE_WORDS = r"(?:挺好的?|好好的|是好的|好着呢|亮着呢|挺平整|不脏|倒是?没有了?|倒没啥|倒没事|没毛病|没问题|没啥问题|没啥事|不是问题|早修好了|修好了|早就好了|早退了)"
_FINE = re.compile(_FINE_WORDS + "$")
# 「主要说后面这个」 points back at the problem named just before it.
_BACK_REFERENCE = re.compile(r"^(?:后面|后边|后一个|后者|第二个|最后一个|最后那个)")
# A clause opening with these starts another, secondary problem: the main request has ended.
_ASIDE = re.compile(r"^(?:另外|另有|另|此外|还有|顺便|顺带|附带|再有|再就是|其他|其它|别的|至于|\d+$)")
# 「这都等雨停再说」 waves away every problem named before it, not only the last.
_PLURAL = re.compile(r"^(?:这些|这都|这俩|这两|那些|以上|上面|都)")
_MINOR = re.compile(r"(?:倒还好|还好(?!好)|也就算了|先不急|不太急|不急|不着急|是有一点|倒是其次|是小事|都是小事|不打紧|不碍事|无所谓|问题不大|"
                    r"以后再说|以后再修|以后再弄|以后再处理|下次再说|回头再说|再说吧|再说(?![^\s，,。；;！!？?])|先不说|不说了|放一放|先放放|不算啥|不算事|"
                    r"不重要|不要紧(?!的)|好说|能忍|凑合|不用管|我不管|不追究|随它去|晚点弄|可以晚点|可以缓缓|两码事|另一码事|"
                    r"慢慢弄|慢慢整改|可以等|[（(](?:不急|小事|次要|可以等|不要紧))")
_ANY = re.compile("|".join((_NEGATION.pattern, _MAIN.pattern, _MINOR.pattern, _MAIN_AFTER.pattern, _UNRELATED.pattern,
                            _POINT_BACK.pattern.removeprefix("^"),
                            f"{_FINE_WORDS}(?:{_CLAUSE.pattern}|$)")))


def spans(text: str) -> list[tuple[str, float]]:
    """The text as (piece, weight) in order; neighbours of equal weight are joined."""
    if not _ANY.search(text):
        return [(text, PLAIN)]
    clauses = [c for c in _CLAUSE.split(text) if c.strip(_FILLER)]
    out: list[tuple[str, float]] = []
    expect_correction = 0  # clauses left in which a 是… answers the last negation
    in_main = False  # the main request (or a correction) goes on in the clauses after it, until an aside
    for clause in clauses:
        bare = clause.strip(_FILLER)
        pieces, expect_correction = _clause(clause, expect_correction)
        if in_main and all(w == PLAIN for _, w in pieces) and not _ASIDE.match(bare):
            pieces = [(p, MAIN) for p, _ in pieces]
        last, weight = pieces[-1]
        if weight == MAIN and _BACK_REFERENCE.match(last.strip(_FILLER)) and out and out[-1][1] == PLAIN:
            out[-1] = (out[-1][0], MAIN)
        elif _POINT_BACK.match(bare) and out and out[-1][1] == PLAIN:
            out[-1] = (out[-1][0], MAIN)
            pieces, weight = [], PLAIN  # the pointer itself names no problem
        in_main = weight == MAIN
        if len(pieces) == 1 and weight == MINOR and _PLURAL.match(bare):
            out = [(p, MINOR if w == PLAIN else w) for p, w in out]
        elif len(pieces) == 1 and weight == MINOR and len(clause) <= 6 and out and out[-1][1] == PLAIN:
            out[-1] = (out[-1][0], MINOR)  # 「这个先不急」 waves away the clause before it
        out.extend(pieces)
    if any(w == MAIN for _, w in out):
        out = [(p, BACKGROUND if w == PLAIN else w) for p, w in out]
    return _join([(p.strip(_FILLER), w) for p, w in out if p.strip(_FILLER)])


def _clause(clause: str, expect_correction: int) -> tuple[list[tuple[str, float]], int]:
    if _FINE.search(clause):
        return [(clause, NEGATED)], 3
    unrelated = _UNRELATED.search(clause)
    if unrelated:
        return [(clause[:unrelated.start()], PLAIN), (unrelated.group(1), NEGATED)], 3
    neg = _NEGATION.search(clause)
    if neg and not _NOT_NEGATION_END.search(clause) and not _EITHER.search(clause, neg.end()):
        head, rest = clause[:neg.start()], clause[neg.end():]
        fix = _CORRECTION.search(rest)
        if fix and fix.start() > 0:  # 不是X是Y in one clause
            return _main_or_plain(head) + [(rest[:fix.start()], NEGATED), (rest[fix.end():], MAIN)], 0
        if neg.group() == "而不是":  # Y而不是X: Y is what they mean
            return [(head, MAIN), (rest, NEGATED)], 0
        return _main_or_plain(head) + [(rest, NEGATED)], 3
    if expect_correction:
        fix = _CORRECTION.search(clause)
        if fix and (clause[:fix.start()] in _CORRECTION_LEAD or fix.group() in ("的是", "而是", "但是", "其实是", "实际上是")):
            return [(clause[:fix.start()], PLAIN), (clause[fix.end():], MAIN)], 0
        return _main_or_plain(clause), expect_correction - 1
    return _main_or_plain(clause), 0


def _main_or_plain(clause: str) -> list[tuple[str, float]]:
    after = _MAIN_AFTER.search(clause)
    if after and after.start() > 0:
        return [(clause[:after.start()], MAIN)]
    m = _MAIN.search(clause)
    if m:
        return [(clause[:m.start()], PLAIN), (clause[m.end():], MAIN)]
    if _MINOR.search(clause):
        return [(clause, MINOR)]
    return [(clause, PLAIN)]


def _join(pieces: list[tuple[str, float]]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for p, w in pieces:
        if out and out[-1][1] == w:
            out[-1] = (out[-1][0] + " " + p, w)
        else:
            out.append((p, w))
    return out
