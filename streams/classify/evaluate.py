"""Accuracy of a classifier on a labelled JSONL set, and its report as Markdown."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cityops.taxonomy import OTHER_LABEL
from streams.classify.classifier import Classifier

DOC_START = "<!-- evaluation:start (written by `cityops classify --evaluate … --write-doc …`) -->"
DOC_END = "<!-- evaluation:end -->"


@dataclass
class Example:
    text: str
    label: str
    split: str = "all"


@dataclass
class Evaluation:
    codes: dict[str, str]  # label → taxonomy code, in taxonomy order
    pairs: list[tuple[Example, str]]  # (example, predicted label)
    by_split: dict[str, tuple[int, int]] = field(default_factory=dict)  # split → (correct, total)
    misrouted_by_split: dict[str, int] = field(default_factory=dict)  # split → how many went to a wrong department

    @property
    def labels(self) -> list[str]:
        return list(self.codes)

    @property
    def accuracy(self) -> float:
        return sum(e.label == p for e, p in self.pairs) / max(len(self.pairs), 1)

    @property
    def misrouted(self) -> float:
        """Share sent to a wrong department: a wrong label other than 其他 (其他 goes to a person, who reroutes)."""
        return sum(e.label != p and p != OTHER_LABEL for e, p in self.pairs) / max(len(self.pairs), 1)

    def confusion(self) -> Counter[tuple[str, str]]:
        return Counter((e.label, p) for e, p in self.pairs)

    def per_label(self) -> list[tuple[str, float, float, float, int]]:
        """(label, precision, recall, F1, support) in taxonomy order."""
        conf = self.confusion()
        rows = []
        for lab in self.labels:
            tp = conf[(lab, lab)]
            predicted = sum(n for (_, p), n in conf.items() if p == lab)
            support = sum(n for (t, _), n in conf.items() if t == lab)
            prec = tp / predicted if predicted else 0.0
            rec = tp / support if support else 0.0
            f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
            rows.append((lab, prec, rec, f1, support))
        return rows

    def errors(self) -> list[tuple[Example, str]]:
        return [(e, p) for e, p in self.pairs if e.label != p]


def load_examples(path: Path) -> list[Example]:
    """Read `{"text", "label", "split"?}` lines; a bad line is an error naming its number."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out.append(Example(row["text"], row["label"], row.get("split", "all")))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{n}: expected a JSON object with text and label ({e})") from None
    return out


def evaluate(classifier: Classifier, examples: list[Example]) -> Evaluation:
    codes = {c.label: c.code for c in classifier.taxonomy.categories}
    unknown = {e.label for e in examples} - set(codes)
    if unknown:
        raise ValueError(f"labelled set uses labels not in the taxonomy: {', '.join(sorted(unknown))}")
    ev = Evaluation(codes, [(e, classifier.classify(e.text).label) for e in examples])
    for split in sorted({e.split for e in examples}):
        sel = [(e, p) for e, p in ev.pairs if e.split == split]
        ev.by_split[split] = (sum(e.label == p for e, p in sel), len(sel))
        ev.misrouted_by_split[split] = sum(e.label != p and p != OTHER_LABEL for e, p in sel)
    return ev


def markdown(ev: Evaluation, source: str, command: str) -> str:
    """The evaluation section of docs/classification.md."""
    lines = [DOC_START, "", f"Produced by `{command}` on `{source}` ({len(ev.pairs)} complaints).", ""]
    lines += ["| split | correct | total | accuracy | to a wrong department |", "|---|---:|---:|---:|---:|"]
    for split, (ok, n) in ev.by_split.items():
        wrong = ev.misrouted_by_split[split]
        lines.append(f"| {split} | {ok} | {n} | {ok / n:.1%} | {wrong} ({wrong / n:.1%}) |")
    ok = sum(e.label == p for e, p in ev.pairs)
    wrong = sum(ev.misrouted_by_split.values())
    lines += [f"| **overall** | {ok} | {len(ev.pairs)} | **{ev.accuracy:.1%}** | **{wrong} ({ev.misrouted:.2%})** |", "",
              "A wrong label other than 其他 sends the case to a wrong department; 其他 goes to a person, who "
              "routes it.", ""]
    lines += ["### Per label", "", "| label | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {lab} | {p:.2f} | {r:.2f} | {f:.2f} | {s} |" for lab, p, r, f, s in ev.per_label()]
    lines += ["", "### Confusion table", "",
              "Rows are the true label, columns the predicted one (taxonomy codes; `·` = 0).", ""]
    codes = ev.codes
    lines.append("| true \\ predicted | " + " | ".join(codes[lab] for lab in ev.labels) + " |")
    lines.append("|---|" + "---:|" * len(ev.labels))
    conf = ev.confusion()
    for t in ev.labels:
        cells = [str(conf[(t, p)] or "·") for p in ev.labels]
        lines.append(f"| {codes[t]} {t} | " + " | ".join(cells) + " |")
    errs = ev.errors()
    lines += ["", f"### Misclassified ({len(errs)})", ""]
    lines += ["| split | text | true | predicted |", "|---|---|---|---|"]
    lines += [f"| {e.split} | {e.text} | {e.label} | {p} |" for e, p in errs]
    return "\n".join(lines + ["", DOC_END, ""])


def write_doc(path: Path, section: str) -> None:
    """Replace the generated section of the doc, keeping the hand-written prose around it."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Complaint classification\n\n"
    start = text.find(DOC_START.split(" (")[0])  # the marker's stable prefix
    if start >= 0 and DOC_END in text[start:]:
        text = text[:start] + section.rstrip("\n") + text[start:].split(DOC_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Evaluation\n\n" + section
    path.write_text(text, encoding="utf-8")

