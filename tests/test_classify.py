"""Complaint classifier: hard pairs, 其他 fallback, confidence, rules-file checks, sensors, CLI, accuracy."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st
from typer.testing import CliRunner

from cityops.models.sensors import SensorKind
from cityops.taxonomy import load_taxonomy
from streams.classify import Classification, Classifier
from streams.classify.classifier import RulesError
from streams.classify.evaluate import evaluate, load_examples

DATA = Path(__file__).parent / "data"
LABELLED = DATA / "complaints_labelled.jsonl"
CORPUS = DATA / "complaints_corpus.jsonl"
DEV = DATA / "complaints_dev.jsonl"  # the first held-out set: its errors were studied, so it trains now
DEV2 = DATA / "complaints_dev2.jsonl"  # the first acceptance set: run once, then studied, so it trains now
CORPUS2 = DATA / "complaints_corpus2.jsonl"
TRAINING = [LABELLED, CORPUS, DEV, DEV2, CORPUS2]
# Judged on, never tuned on: written by other hands from the taxonomy alone, before the last round of tuning.
ACCEPTANCE = DATA / "complaints_acceptance2.jsonl"


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return Classifier.default()


# Sentences that are not in the labelled set: the rules must generalise to them.
HARD_PAIRS = [
    ("晚上八点以后滨河路边全是烤串的摊子，烟呛得走不了路", "露天烧烤"),
    ("那家烧烤店把炉子摆到门前人行道上烤羊肉串", "露天烧烤"),
    ("楼下烧烤店的排烟管道没装净化器，油烟全往我家灌", "油烟污染"),
    ("一楼餐馆的油烟从厨房窗户直接排出来，熏得楼上没法晾衣服", "油烟污染"),
    ("每天傍晚有小贩推着三轮车在人行道上卖水果", "占道经营"),
    ("菜贩子把菜摆在马路边上卖，车都过不去", "占道经营"),
    ("小超市把货架和饮料箱子摆到店门外人行道上", "店外经营"),
    ("那家饭馆天天把桌椅摆在门前人行道上营业", "店外经营"),
    ("有人在河堤上倒了一堆装修垃圾，没人清理", "暴露垃圾"),
    ("小区门口的垃圾桶满了两天，垃圾都溢到地上了", "垃圾满溢"),
    ("这条路好几天没人扫了，路面上全是落叶和烟头", "道路保洁"),
    ("路面坑坑洼洼，到处是裂缝，骑车颠得厉害", "道路破损"),
    ("马路中间突然塌陷出一个大坑，下面是空的", "路面塌陷"),
    ("楼下KTV每天半夜唱歌，噪音大得睡不着", "噪声扰民"),
    ("工地夜里还在打桩施工，噪音吵得睡不着", "施工扰民"),
    ("电线杆上贴满了办证的小广告", "非法小广告"),
    ("楼顶的大广告牌被风吹得摇摇晃晃，怕掉下来", "违规户外广告"),
]

# Phrasings that sent complaints to the wrong department or to 其他 (issue 26), and the three new labels.
REAL_PHRASING = [
    ("路灯杆上挂满了商家的广告道旗", "违规户外广告"),
    ("屋里烤炉的烟全从后窗排风扇排到我们楼道里 不是在外面摆摊烤的", "油烟污染"),
    ("不是工地 工地晚上早停了 吵的是…歌厅", "噪声扰民"),
    ("不是流动摊贩 是那家超市自己把货架搬到门外人行道上卖", "店外经营"),
    ("共青团路上好几个大坑 车开过去咣咣的", "道路破损"),
    ("雨水篦子被压碎了掉下去一半", "井盖缺损"),
    ("下雪以后人行道上全是冰 滑得站不住", "积雪结冰"),
    ("好几辆轿车天天停在人行道上 人都走不了", "机动车乱停放"),
    ("有人在路边树上拉绳子晒被子", "乱挂乱晒"),
]

OUT_OF_SCOPE = [
    "我想咨询一下公积金提取的流程",
    "3路公交车发车间隔太长了，能不能加车",
    "孩子上小学的学区是怎么划分的",
    "暖气不热，供暖公司不管",
    "网购的衣服商家不给退款",
    "今天天气真好",
    "",
]


@pytest.mark.parametrize("text,label", HARD_PAIRS)
def test_hard_pairs(clf, text, label):
    assert clf.classify(text).label == label


@pytest.mark.parametrize("text,label", REAL_PHRASING)
def test_real_phrasing(clf, text, label):
    assert clf.classify(text).label == label


@pytest.mark.parametrize("text,negated,main", [
    ("不是流动摊贩 是那家超市自己把货架搬到门外", ["流动摊贩"], ["那家超市自己把货架搬到门外"]),
    ("不是工地，工地晚上早停了，吵的是歌厅", ["工地"], ["歌厅"]),
    ("屋里的烟排到楼道里 不是在外面摆摊烤的", ["在外面摆摊烤的"], []),
    ("不是垃圾而是绿地被踩坏了", ["垃圾"], ["绿地被踩坏了"]),
    ("路灯坏了 井盖也松了 最危险的是井盖", [], ["井盖"]),
    ("这几件事要求先处理积水，路灯的事不急", [], ["处理积水"]),
    ("这不是扰民吗", [], []),                     # a rhetorical question affirms
    ("路灯不是不亮就是一闪一闪", [], []),           # 不是…就是… lists both
    ("灯是暗了点 垃圾箱也旧 都不打紧 要紧的是那个路面", [], ["那个路面"]),
    ("摆摊的 垃圾 可最吓人的是没盖的窨井", [], ["没盖的窨井"]),
    ("路面挺好的 毛病出在中间那块铁盖子", ["路面挺好的"], ["中间那块铁盖子"]),
    ("路灯上礼拜修好了 问题是旁边的树被砍了", ["路灯上礼拜修好了"], ["旁边的树被砍了"]),
    ("市民来电反映门口摆摊 诉求：尽快处理井盖", [], ["尽快处理井盖"]),
    ("这路好好的修了又挖", [], []),                # 好好的 inside a clause describes, it does not acquit
    ("跟路灯没关系，路灯亮着呢，问题是电缆井的盖子没了", ["路灯 路灯亮着呢"], ["电缆井的盖子没了"]),
    ("路没问题，是有辆报废的车扔在路边", ["路没问题"], ["有辆报废的车扔在路边"]),
    ("1.人行道上的冰溜子（最危险，先处理）；2.路边有辆车乱停", [], ["人行道上的冰溜子"]),
    ("主要反映：路面积尘严重；另有个别路灯不亮。请优先安排路面清扫", [], ["路面积尘严重", "安排路面清扫"]),
    ("门口垃圾桶满了 树枝也断了 这都等雨停再说 现在就是路上水太深", [], []),
    ("胡同里树被砍了 灯也暗 我主要想说的是路面全是窟窿眼", [], ["路面全是窟窿眼"]),
    ("门口垃圾桶满了，这个优先；旁边井盖有点响，可以晚点弄", [], ["门口垃圾桶满了"]),
    ("门口单车乱停 还有那个轮胎店把轮胎堆在人行道上 后面这个是主要的", [], ["还有那个轮胎店把轮胎堆在人行道上"]),
    ("次要的：路边几辆单车倒了。重要的：人行道上一大片油污", [], ["人行道上一大片油污"]),
    ("①路边有坑（不急）②电动车停得乱（小事）③马路中间晒麦子（最危险）", [], ["马路中间晒麦子"]),
    ("他没盖房，算不上违建，但是把绿化带铲平了", ["违建"], ["把绿化带铲平了"]),
    ("我不是说油烟，是他家门口的音箱", ["油烟"], ["他家门口的音箱"]),
    ("摆摊的倒是没有了，现在是几辆货车占着", ["摆摊的倒是没有了"], ["几辆货车占着"]),
])
def test_scope_of_negation_and_main_request(text, negated, main):
    from streams.classify.scope import NEGATED, MAIN, spans

    parts = spans(text)
    assert [s for s, w in parts if w == NEGATED] == negated
    assert [s for s, w in parts if w == MAIN] == main


def test_a_plural_wave_sets_aside_every_problem_before_it():
    from streams.classify.scope import MINOR, spans

    parts = dict(spans("门口垃圾桶满了 树枝也断了 这都等雨停再说 现在就是路上水太深"))
    assert parts["门口垃圾桶满了 树枝也断了 这都等雨停再说"] == MINOR
    assert parts["现在就是路上水太深"] > MINOR


def test_taxonomy_has_the_three_new_labels():
    tax = load_taxonomy()
    assert tax.by_label("积雪结冰").department == "环卫"
    assert tax.by_label("机动车乱停放").department == "城管执法"
    assert tax.by_label("乱挂乱晒").department == "城管执法"


@pytest.mark.parametrize("text", ["嗯", "你好", "喂喂 听得到吗", "asdfgh", "我要反映个事情 就是那个 怎么说呢", "12345"])
def test_low_confidence_goes_to_a_person(clf, text):
    assert clf.classify(text).label == "其他"


def test_shipped_model_is_what_the_corpus_trains(tmp_path):
    """The model file is generated by `cityops classify --train`; retraining from the shipped corpus reproduces it."""
    from streams.classify.model import DEFAULT_MODEL, LinearModel
    from streams.classify.train import CORPUS, train

    assert CORPUS == TRAINING
    out = tmp_path / "model.npz"
    train(TRAINING, out)
    fresh, shipped = LinearModel.load(out), LinearModel.load(DEFAULT_MODEL)
    assert fresh.labels == shipped.labels and (fresh.vocabulary == shipped.vocabulary).all()
    assert fresh.corpus_digest == shipped.corpus_digest, "corpus changed: run `cityops classify --train`"
    assert abs(fresh.weights - shipped.weights).max() < 1e-3
    assert abs(fresh.temperature - shipped.temperature) < 1e-3


def test_start_up_and_per_complaint_cost():
    """The worker builds a classifier at start and calls it on every text: both must stay cheap.
    CPU time, not wall time, so other work on a shared machine does not count; the bounds are 3-5× the
    figures in docs/benchmarks-classify.md, to catch a slow path, not to benchmark."""
    import time

    from cityops.taxonomy import load_taxonomy as fresh_taxonomy

    texts = [e.text for e in load_examples(LABELLED) + load_examples(CORPUS)]
    t0 = time.process_time()
    clf = Classifier(fresh_taxonomy())
    start = time.process_time() - t0
    t0 = time.process_time()
    for t in texts:
        clf.classify(t)
    per_call = (time.process_time() - t0) / len(texts)
    assert start < 0.5, f"start-up {start:.2f} s"
    assert per_call < 600e-6, f"{per_call * 1e6:.0f} µs per complaint"


@pytest.mark.parametrize("text", OUT_OF_SCOPE)
def test_other_is_the_fallback(clf, text):
    c = clf.classify(text)
    assert (c.label, c.code, c.department) == ("其他", "9999", "12345热线分拨")


def test_result_carries_the_taxonomy_row(clf):
    c = clf.classify("人民路上的井盖没了，太危险")
    cat = load_taxonomy().by_label("井盖缺损")
    assert c == Classification("井盖缺损", cat.code, cat.department, "street", cat.time_limit, c.confidence)
    assert c.time_limit_minutes == 60


def test_confidence_is_lower_when_labels_compete(clf):
    clear = clf.classify("路灯不亮，一闪一闪的，灯杆也歪了")
    mixed = clf.classify("路灯不亮，垃圾桶也满了")
    assert clear.confidence > mixed.confidence


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_confidence_in_unit_interval_for_any_text(clf, text):
    c = clf.classify(text)
    assert 0.0 <= c.confidence <= 1.0
    assert c.label in {cat.label for cat in load_taxonomy().categories}


EXPECTED_SENSORS = {"manhole": "井盖缺损", "water_depth": "道路积水", "cooking_fume": "油烟污染",
                    "noise": "噪声扰民", "bin_fill": "垃圾满溢", "street_light": "路灯故障"}


def test_every_sensor_kind_maps_to_its_class(clf):
    assert set(EXPECTED_SENSORS) == {k.value for k in SensorKind}
    for kind, label in EXPECTED_SENSORS.items():
        c = clf.for_sensor(kind)
        assert (c.label, c.confidence) == (label, 1.0)
    assert clf.for_sensor(SensorKind.manhole).code == "B0101"


def test_unknown_sensor_kind_is_a_clear_error(clf):
    with pytest.raises(ValueError, match="no class for sensor kind 'radar'"):
        clf.for_sensor("radar")


# --- rules file checks --------------------------------------------------------------------------------

def _rules(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "rules.yaml"
    p.write_text(body, encoding="utf-8")
    return p


@pytest.mark.parametrize("body,message", [
    ("threshold: 3\nlabels:\n  噪音扰民:\n    keywords: {吵: 2}\n", r"rules.yaml:3: unknown label '噪音扰民'"),
    ("threshold: 3\nlabels:\n  露天烧烤:\n    keywords: {烧烤: 4}\n    patterns:\n      '(路边|街边': 3\n",
     r"rules.yaml:6: label 露天烧烤: bad regex '\(路边\|街边'"),
    ("threshold: 3\nlabels:\n  路灯故障:\n    keywords: {路灯: lots}\n", r"rules.yaml:4: 路灯故障 keyword '路灯': weight must be"),
    ("threshold: 3\nlabels:\n  路灯故障:\n    keywords: {路灯: 4, 路灯: 2}\n", r"rules.yaml:4: .*'路灯' is listed twice"),
    ("threshold: 3\nlabels:\n  路灯故障:\n    words: {路灯: 4}\n", r"rules.yaml:4: label 路灯故障: unknown key 'words'"),
    ("threshold: 0\nlabels: {}\n", r"rules.yaml:1: threshold: weight must be a positive number"),
    ("threshhold: 3\nlabels: {}\n", r"rules.yaml:1: unknown key 'threshhold'"),
    ("labels: {}\n", r"missing 'threshold'"),
    ("threshold: 3\nsensors:\n  radar: 井盖缺损\nlabels: {}\n", r"rules.yaml:3: unknown sensor kind 'radar'"),
    ("threshold: 3\nlabels: [路灯故障]\n", r"rules.yaml:2: labels must be a mapping"),
    ("threshold: 3\nlabels: {a: [\n", r"not valid YAML"),
])
def test_bad_rules_file_is_named_with_its_line(tmp_path, body, message):
    with pytest.raises(RulesError, match=message):
        Classifier(load_taxonomy(), _rules(tmp_path, body))


def test_missing_rules_file(tmp_path):
    with pytest.raises(RulesError, match="cannot read classification rules"):
        Classifier(load_taxonomy(), tmp_path / "nope.yaml")


def test_other_rules_file_is_used(tmp_path):
    rules = _rules(tmp_path, "threshold: 2\nlabels:\n  路灯故障:\n    keywords: {黑: 2}\n")
    clf = Classifier(load_taxonomy(), rules, model_path=None)  # rules alone, no learned model
    assert clf.classify("这里晚上好黑").label == "路灯故障"
    assert clf.classify("路灯坏了").label == "其他"  # only this file's words count


def test_operators_rules_overrule_the_model(tmp_path):
    """A keyword an operator adds wins over what the model learned: the rules stay the way to correct it."""
    text = "人行道上停满了私家车"
    assert Classifier.default().classify(text).label == "机动车乱停放"
    rules = _rules(tmp_path, "threshold: 3\nlabels:\n  占道经营:\n    keywords: {私家车: 30}\n")
    assert Classifier(load_taxonomy(), rules).classify(text).label == "占道经营"


# --- the labelled sets and accuracy --------------------------------------------------------------------

def test_training_corpus_covers_every_label_and_never_the_acceptance_set():
    labels = {c.label for c in load_taxonomy().categories}
    corpus = [e for p in TRAINING for e in load_examples(p)]
    heldout = load_examples(ACCEPTANCE)
    texts = [e.text for e in corpus]
    assert len(set(texts)) == len(texts), "duplicate complaints in the training corpus"
    assert {e.label for e in corpus} == labels
    for label in labels:
        assert sum(e.label == label for e in corpus) >= 30, label
    assert not set(texts) & {e.text for e in heldout}, "an acceptance complaint is in the training corpus"


def _char_pairs(text: str) -> set[str]:
    from streams.classify.model import normalize

    t = normalize(text).replace(" ", "")
    return {t[i:i + 2] for i in range(len(t) - 1)}


def test_acceptance_set_is_unlike_every_training_complaint():
    """No complaint of the set shares more than 45 % of its character pairs with a training complaint:
    a near copy of a training sentence would measure memory, not understanding."""
    training = [_char_pairs(e.text) for p in TRAINING for e in load_examples(p)]
    close = []
    for e in load_examples(ACCEPTANCE):
        pairs = _char_pairs(e.text)
        share = max(len(pairs & t) / max(len(pairs), 1) for t in training)
        if share > 0.45:
            close.append((e.text, round(share, 2)))
    assert not close


def test_acceptance_set_is_broad_and_clean():
    heldout = load_examples(ACCEPTANCE)
    labels = {c.label for c in load_taxonomy().categories}
    assert len(heldout) >= 300
    assert len({e.text for e in heldout}) == len(heldout)
    assert {e.label for e in heldout} == labels
    assert {e.split for e in heldout} == {"colloquial", "call", "angry", "negation", "multi"}
    assert min(sum(e.label == label for e in heldout) for label in labels) >= 10


@pytest.fixture(scope="module")
def acceptance(clf):
    return evaluate(clf, load_examples(ACCEPTANCE))


def test_acceptance_accuracy(acceptance):
    """Issue 26's bar: at least 95 % of the acceptance complaints right."""
    assert acceptance.accuracy >= 0.95, [(e.text, e.label, p) for e, p in acceptance.errors()]


def test_acceptance_misrouting_no_worse_than_measured(acceptance):
    """5 of 351 (1.42 %) went to a wrong department when the set was first run; more is a regression."""
    wrong = [(e.text, e.label, p) for e, p in acceptance.errors() if p != "其他"]
    assert len(wrong) <= 5, wrong


def test_acceptance_misrouting_meets_the_bar(acceptance):
    """Issue 26's bar: at most 2 % sent to a wrong department (a wrong label other than 其他)."""
    assert acceptance.misrouted <= 0.02


def test_training_corpus_is_learned(clf):
    ev = evaluate(clf, [e for p in TRAINING for e in load_examples(p)])
    assert ev.accuracy >= 0.97 and ev.misrouted <= 0.01, [(e.text, e.label, p) for e, p in ev.errors()]


# --- the command ---------------------------------------------------------------------------------------

def test_cli_classifies_stdin_line_by_line():
    from cityops.cli import root

    stdin = "楼下烧烤摊天天开到半夜\n\n我的社保怎么转移\n   \n人民路井盖没了\n"
    result = CliRunner().invoke(root, ["classify"], input=stdin)
    assert result.exit_code == 0, result.output
    assert "\\u" not in result.output  # UTF-8 as is
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r.get("label") for r in rows] == ["露天烧烤", None, "其他", None, "井盖缺损"]
    assert rows[1] == {"line": 2, "error": "empty complaint"} and rows[3]["line"] == 4
    for r in (rows[0], rows[2], rows[4]):
        assert set(r) == {"label", "code", "department", "tier", "time_limit_minutes", "confidence"}


def test_cli_evaluate_writes_the_doc_section(tmp_path):
    from cityops.cli import root

    doc = tmp_path / "classification.md"
    doc.write_text("# Prose kept\n\n<!-- evaluation:start -->\nold\n<!-- evaluation:end -->\n\ntail kept\n", encoding="utf-8")
    result = CliRunner().invoke(root, ["classify", "--evaluate", str(LABELLED), "--write-doc", str(doc)])
    assert result.exit_code == 0, result.output
    assert "overall accuracy" in result.output and "heldout" in result.output
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Prose kept") and text.rstrip().endswith("tail kept") and "old" not in text
    assert "| 露天烧烤 |" in text and "true \\ predicted" in text and "**overall**" in text


def test_cli_reports_a_bad_rules_file_in_one_line(tmp_path):
    bad = _rules(tmp_path, "threshold: 3\nlabels:\n  噪音扰民:\n    keywords: {吵: 2}\n")
    env = {**os.environ, "CITYOPS_CLASSIFY_RULES": str(bad)}
    p = subprocess.run([sys.executable, "-c", "from cityops.cli import main; main()", "classify"],
                       input="吵\n", capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 2
    assert "unknown label '噪音扰民'" in p.stderr and "Traceback" not in p.stderr



@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="烧烤油烟路灯井盖垃圾桶满溢施工噪音小广告社保公交店门口摊贩 abc", max_size=80))
def test_fast_scoring_matches_the_plain_rule_reading(clf, text):
    """classify() scores via a substring index; --explain reads the rules one by one: they must agree."""
    assert list(clf._totals(text)) == pytest.approx([clf._score(lab, text) for lab in clf._labels])
