"""Complaint text → taxonomy category: a learned linear model plus the operators' weighted rules.

The model (`model.py`, character n-grams, trained from the shipped corpus) gives calibrated log-odds per
label; every rule keyword or pattern that hits adds `rules_scale` × its weight to its label, so operators
correct the model by editing `rules.yaml` (or CITYOPS_CLASSIFY_RULES). Both read the complaint through
`scope.spans`: a negated subject ("不是工地") counts against its label, the main request counts double.
The winner's probability below `min_confidence` sends the complaint to 其他, where a person triages it.
Plain substring tests are used instead of jieba: keywords are short fixed strings, segmentation errors
would hide them, and skipping the dictionary load keeps start-up and per-complaint cost tiny.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

from cityops.models.sensors import SensorKind
from cityops.taxonomy import Category, Taxonomy, load_taxonomy
from streams.classify.model import DEFAULT_MODEL, LinearModel, ModelError, gram_id, gram_ids, normalize, piece_grams
from streams.classify.scope import spans

DEFAULT_RULES = Path(__file__).parent / "rules.yaml"


@dataclass(frozen=True)
class Classification:
    label: str
    code: str
    department: str
    tier: str
    time_limit_minutes: int
    confidence: float


class RulesError(ValueError):
    """The rules file is malformed; the message names the file, line and label."""


def _load_model(path: Path | str, taxonomy: Taxonomy) -> LinearModel:
    model = LinearModel.load(path)
    labels = tuple(c.label for c in taxonomy.categories)
    if set(model.labels) != set(labels):
        missing, extra = set(labels) - set(model.labels), set(model.labels) - set(labels)
        raise ModelError(f"{path} was trained for another taxonomy (missing {sorted(missing)}, unknown "
                         f"{sorted(extra)}): add examples to the corpus and run `cityops classify --train`")
    return model


@dataclass(frozen=True)
class _Label:
    category: Category
    keywords: tuple[tuple[str, float], ...]
    patterns: tuple[tuple[re.Pattern[str], float], ...]


class Classifier:
    def __init__(self, taxonomy: Taxonomy, rules_path: Path | str = DEFAULT_RULES,
                 model_path: Path | str | None = DEFAULT_MODEL):
        """`model_path=None`: the rules alone decide (threshold, temperature), as before the model existed."""
        self.taxonomy = taxonomy
        self.rules_path = Path(rules_path)
        rules = _load_rules(self.rules_path, taxonomy)
        self.threshold: float = rules["threshold"]
        self.temperature: float = rules["temperature"]
        self.rules_scale: float = rules["rules_scale"]
        self.min_confidence: float = rules["min_confidence"]
        self._labels: tuple[_Label, ...] = rules["labels"]
        self._sensors: dict[str, Category] = rules["sensors"]
        self._other = taxonomy.other
        # Keywords of up to 3 characters are n-gram ids: one sorted search over the text's n-grams finds them
        # all (the ~700 `in` tests it replaces cost ~0.1 ms); the few longer ones are tested with `in`.
        keywords: dict[str, list[tuple[int, float]]] = {}
        for i, lab in enumerate(self._labels):
            for k, w in lab.keywords:
                keywords.setdefault(normalize(k), []).append((i, w))
        short = sorted((gram_id(k), k) for k in keywords if len(k) <= 3)
        self._keyword_ids = np.array([g for g, _ in short], np.uint64)
        self._keyword_weights = np.zeros((len(short), len(self._labels)))
        for row, (_, k) in enumerate(short):
            for i, w in keywords[k]:
                self._keyword_weights[row, i] += w
        self._long_keywords = tuple((k, tuple(v)) for k, v in keywords.items() if len(k) > 3)
        self._long_prefixes = np.array([gram_id(k[:3]) for k, _ in self._long_keywords], np.uint64)
        self._patterns = tuple((i, p, w) for i, lab in enumerate(self._labels) for p, w in lab.patterns)
        self.model = _load_model(model_path, taxonomy) if model_path is not None else None
        if self.model is not None:
            self._categories = tuple(taxonomy.by_label(lab) for lab in self.model.labels)
            self._other_index = self.model.labels.index(self._other.label)
            # rules-file order → model order, so rule scores add to the right log-odds
            self._rule_columns = np.array([self.model.labels.index(lab.category.label) for lab in self._labels], np.intp)

    @classmethod
    @lru_cache(maxsize=1)
    def default(cls) -> Classifier:
        """The process-wide classifier: the configured rules file and the shipped model, loaded and checked once."""
        from cityops.settings import get_settings

        return cls(load_taxonomy(), get_settings().classify_rules or DEFAULT_RULES)

    def scores(self, text: str) -> dict[str, tuple[float, list[str]]]:
        """Every label whose rules hit, with its score (weighted by scope, as classify adds it) and the
        keywords/patterns that hit anywhere in the text (for --explain)."""
        out: dict[str, tuple[float, list[str]]] = {}
        norm = normalize(text)
        pieces = spans(text)
        for lab in self._labels:
            hits = [k for k, _ in lab.keywords if normalize(k) in norm] + [p.pattern for p, _ in lab.patterns if p.search(text)]
            if hits:
                out[lab.category.label] = (sum(w * self._score(lab, piece) for piece, w in pieces), hits)
        return out

    def classify(self, text: str) -> Classification:
        if self.model is None:
            return self._classify_by_rules(text)
        p = self.probabilities(text)
        k = int(p.argmax())
        if p[k] < self.min_confidence and k != self._other_index:
            return self._result(self._other, 1.0 - float(p[k]))  # how likely the best guess is wrong
        return self._result(self._categories[k], float(p[k]))

    def probabilities(self, text: str) -> np.ndarray:
        """Each label's probability, in `self.model.labels` order (model log-odds + scaled rule scores)."""
        pieces = spans(text)
        grams = piece_grams(pieces)
        z = self.model.log_odds(grams)
        if self._labels:
            if len(pieces) == 1:
                rules = self._totals(pieces[0][0], grams[0][0]) * (pieces[0][1] * self.rules_scale)
            else:
                rules = sum(self._totals(piece, ids) * (w * self.rules_scale) for (piece, w), (ids, _) in zip(pieces, grams))
            z[self._rule_columns] += rules  # each label appears once in the rules file: no column twice
        e = np.exp(z - z.max())
        return e / e.sum()

    def _classify_by_rules(self, text: str) -> Classification:
        other = self.threshold  # 其他 stands at the bar; its own keywords (社保, 公交线路 …) raise it
        best: Category | None = None
        best_score = 0.0
        scored: list[float] = []
        for lab, s in zip(self._labels, self._totals(text).tolist()):
            if s <= 0:
                continue
            if lab.category is self._other:
                other = max(other, s)
            else:
                scored.append(s)
                if s > best_score:
                    best, best_score = lab.category, s
        if best is None or best_score < other:
            best, best_score = self._other, other
        else:
            scored.remove(best_score)
            scored.append(other)
        return self._result(best, _confidence(best_score, scored, self.temperature))

    def _totals(self, text: str, ids: np.ndarray | None = None) -> np.ndarray:
        """Every label's score, in rules-file order (same result as `_score` per label, faster).
        `ids`: the text's `gram_ids`, when the caller has them already."""
        totals = np.zeros(len(self._labels))
        ids = gram_ids(text) if ids is None else ids
        if len(self._keyword_ids):
            pos = np.minimum(np.searchsorted(self._keyword_ids, ids), len(self._keyword_ids) - 1)
            totals += self._keyword_weights[pos[self._keyword_ids[pos] == ids]].sum(axis=0)
        if self._long_keywords and len(ids):
            # only keywords whose first three characters occur in the text need an `in` test
            pos = np.minimum(np.searchsorted(ids, self._long_prefixes), len(ids) - 1)
            norm = normalize(text)
            for j in np.flatnonzero(ids[pos] == self._long_prefixes).tolist():
                k, entries = self._long_keywords[j]
                if k in norm:
                    for i, w in entries:
                        totals[i] += w
        for i, p, w in self._patterns:
            if p.search(text):
                totals[i] += w
        return totals

    def for_sensor(self, kind: str) -> Classification:
        """A sensor alert's class follows from the device kind; nothing to guess."""
        try:
            return self._result(self._sensors[SensorKind(kind)], 1.0)
        except (ValueError, KeyError):
            raise ValueError(f"no class for sensor kind {kind!r}; known: {', '.join(self._sensors)}") from None

    @staticmethod
    def _score(lab: _Label, text: str) -> float:
        s = 0.0
        norm = normalize(text)
        for k, w in lab.keywords:
            if normalize(k) in norm:
                s += w
        for p, w in lab.patterns:
            if p.search(text):
                s += w
        return s

    @staticmethod
    def _result(c: Category, confidence: float) -> Classification:
        return Classification(c.label, c.code, c.department, str(c.tier), c.time_limit, round(confidence, 3))


def _confidence(best: float, rivals: list[float], temperature: float) -> float:
    """Softmax share of the winner among every label that scored (其他 always competes)."""
    return 1.0 / (1.0 + sum(math.exp((s - best) / temperature) for s in rivals))


# --- rules file: load and check --------------------------------------------------------------------

_TOP_KEYS = {"threshold", "temperature", "rules_scale", "min_confidence", "sensors", "labels"}
_LABEL_KEYS = {"keywords", "patterns"}


def _load_rules(path: Path, taxonomy: Taxonomy) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise RulesError(f"cannot read classification rules {path}: {e.strerror}") from None
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        raise RulesError(f"{path}: not valid YAML: {e}".replace("\n", " ")) from None

    def err(node, msg: str) -> RulesError:
        return RulesError(f"{path}:{node.start_mark.line + 1}: {msg}")

    doc = _mapping(root, err, "the rules file")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise err(doc[min(unknown)][0], f"unknown key {min(unknown)!r}; expected {sorted(_TOP_KEYS)}")
    for key in ("threshold", "labels"):
        if key not in doc:
            raise err(root, f"missing {key!r}")
    threshold = _number(doc["threshold"][1], err, "threshold", positive=True)
    temperature = _number(doc["temperature"][1], err, "temperature", positive=True) if "temperature" in doc else 1.0
    rules_scale = _number(doc["rules_scale"][1], err, "rules_scale") if "rules_scale" in doc else 1.0
    min_confidence = _number(doc["min_confidence"][1], err, "min_confidence") if "min_confidence" in doc else 0.8
    if not 0.0 <= min_confidence < 1.0:
        raise err(doc["min_confidence"][1], f"min_confidence must be at least 0 and below 1, got {min_confidence}")

    known = {c.label for c in taxonomy.categories}
    labels = []
    for label, (knode, vnode) in _mapping(doc["labels"][1], err, "labels").items():
        if label not in known:
            raise err(knode, f"unknown label {label!r}; labels are the 小类 of the taxonomy: {', '.join(sorted(known))}")
        body = _mapping(vnode, err, f"label {label}")
        extra = set(body) - _LABEL_KEYS
        if extra:
            raise err(body[min(extra)][0], f"label {label}: unknown key {min(extra)!r}; expected keywords/patterns")
        keywords, patterns = [], []
        if "keywords" in body:
            for kw, (kn, wn) in _mapping(body["keywords"][1], err, f"{label} keywords").items():
                if not kw.strip():
                    raise err(kn, f"label {label}: empty keyword")
                keywords.append((kw, _number(wn, err, f"{label} keyword {kw!r}")))
        if "patterns" in body:
            for rx, (pn, wn) in _mapping(body["patterns"][1], err, f"{label} patterns").items():
                try:
                    compiled = re.compile(rx)
                except re.error as e:
                    raise err(pn, f"label {label}: bad regex {rx!r}: {e}") from None
                patterns.append((compiled, _number(wn, err, f"{label} pattern {rx!r}")))
        labels.append(_Label(taxonomy.by_label(label), tuple(keywords), tuple(patterns)))

    sensors: dict[str, Category] = {}
    if "sensors" in doc:
        for kind, (kn, ln) in _mapping(doc["sensors"][1], err, "sensors").items():
            if kind not in SensorKind.__members__.values():
                raise err(kn, f"unknown sensor kind {kind!r}; known: {', '.join(SensorKind)}")
            if ln.value not in known:
                raise err(ln, f"sensor {kind}: unknown label {ln.value!r}")
            sensors[SensorKind(kind)] = taxonomy.by_label(ln.value)
    return {"threshold": threshold, "temperature": temperature, "rules_scale": rules_scale,
            "min_confidence": min_confidence, "labels": tuple(labels), "sensors": sensors}


def _mapping(node, err, what: str) -> dict[str, tuple]:
    """A YAML mapping as {key: (key node, value node)}; keys kept as written (strings)."""
    if not isinstance(node, yaml.MappingNode):
        raise err(node, f"{what} must be a mapping (key: value lines)")
    out: dict[str, tuple] = {}
    for k, v in node.value:
        if not isinstance(k, yaml.ScalarNode):
            raise err(k, f"{what}: keys must be plain text")
        if k.value in out:
            raise err(k, f"{what}: {k.value!r} is listed twice")
        out[k.value] = (k, v)
    return out


def _number(node, err, what: str, positive: bool = False) -> float:
    try:
        value = float(node.value) if isinstance(node, yaml.ScalarNode) else None
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or (positive and value <= 0):
        raise err(node, f"{what}: weight must be a {'positive ' if positive else ''}number, got {getattr(node, 'value', node)!r}")
    return value
