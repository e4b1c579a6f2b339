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
_CLAUSE = re.compile(r"[，,。.！!？?；;：:、\s]+")
_FILLER = "…~～ \t\"'“”「」（）()"

# 是不是 asks; 不是很/不是太/不是一般 grade rather than deny; 不是…就是… lists both; 不是…吗 is a rhetorical yes.
_NEGATION = re.compile(r"(?:并不是|而不是|(?<!是)不是|并非)(?!很|太|特别|一般|一次|一天|说)")
_NOT_NEGATION_END = re.compile(r"(?:吗|嘛|么|呢)$")
_EITHER = re.compile(r"就是")
# The correction after a negation: 而是 / 是 / 吵的是 … starting a clause, within the next few clauses.
_CORRECTION = re.compile(r"(?:而是|其实是|实际上是|就是|的是|只是|(?<![但还可总于真要老凡像都也])是)")
_MAIN = re.compile(
    r"(?:最(?:主要|要紧|要命|危险|严重|急|关键|受不了|烦|头疼|担心|怕|气人|难受)的?(?:就|还)?是|主要(?:就)?是|主要说|"
    r"关键(?:的)?是|重点是|重点说|重要的是|当务之急是|根子在|根本原因是|主要原因是|"
    r"要求先|先把|先处理|先解决|先派人|首先)")
# 「主要说后面这个」 points back at the problem named just before it.
_BACK_REFERENCE = re.compile(r"^(?:后面|后边|后一个|后者|第二个|最后一个|最后那个)")
# A clause opening with these starts another, secondary problem: the main request has ended.
_ASIDE = re.compile(r"^(?:另外|还有|顺便|再有|再就是|其他|其它|别的)")
_MINOR = re.compile(r"(?:倒还好|还好(?!好)|也就算了|先不急|不太急|不急|不着急|是有一点|倒是其次|是小事|都是小事|"
                    r"以后再说|以后再修|以后再弄|以后再处理|下次再说|再说吧|放一放|慢慢弄|慢慢整改|可以等)")
_ANY = re.compile(_NEGATION.pattern + "|" + _MAIN.pattern + "|" + _MINOR.pattern)


def spans(text: str) -> list[tuple[str, float]]:
    """The text as (piece, weight) in order; neighbours of equal weight are joined."""
    if not _ANY.search(text):
        return [(text, PLAIN)]
    clauses = [c for c in _CLAUSE.split(text) if c.strip(_FILLER)]
    out: list[tuple[str, float]] = []
    expect_correction = 0  # clauses left in which a 是… answers the last negation
    in_main = False  # the main request (or a correction) goes on in the clauses after it, until an aside
    for clause in clauses:
        pieces, expect_correction = _clause(clause, expect_correction)
        if in_main and all(w == PLAIN for _, w in pieces) and not _ASIDE.match(clause.strip(_FILLER)):
            pieces = [(p, MAIN) for p, _ in pieces]
        last, weight = pieces[-1]
        if weight == MAIN and _BACK_REFERENCE.match(last.strip(_FILLER)) and out and out[-1][1] == PLAIN:
            out[-1] = (out[-1][0], MAIN)
        in_main = weight == MAIN
        if len(pieces) == 1 and weight == MINOR and len(clause) <= 6 and out and out[-1][1] == PLAIN:
            out[-1] = (out[-1][0], MINOR)  # 「这个先不急」 waves away the clause before it
        out.extend(pieces)
    if any(w == MAIN for _, w in out):
        out = [(p, BACKGROUND if w == PLAIN else w) for p, w in out]
    return _join([(p.strip(_FILLER), w) for p, w in out if p.strip(_FILLER)])


def _clause(clause: str, expect_correction: int) -> tuple[list[tuple[str, float]], int]:
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
        if fix and (fix.start() == 0 or fix.group() in ("的是", "而是", "其实是", "实际上是")):
            return [(clause[:fix.start()], PLAIN), (clause[fix.end():], MAIN)], 0
        return _main_or_plain(clause), expect_correction - 1
    return _main_or_plain(clause), 0


def _main_or_plain(clause: str) -> list[tuple[str, float]]:
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
