"""`cityops classify`: complaints on stdin → one JSON classification per line; or evaluate a labelled set."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from cityops.errors import UserError

EVALUATE_COMMAND = "cityops classify --evaluate tests/data/complaints_acceptance2.jsonl --write-doc docs/classification.md"


def register(root: typer.Typer) -> None:
    @root.command()
    def classify(
        evaluate: Optional[Path] = typer.Option(None, "--evaluate", help="labelled JSONL ({text, label, split?}): print accuracy, per-label precision/recall and the confusion table"),
        write_doc: Optional[Path] = typer.Option(None, "--write-doc", help="with --evaluate: (re)write the evaluation section of this Markdown file"),
        rules: Optional[Path] = typer.Option(None, "--rules", help="rules YAML (default: CITYOPS_CLASSIFY_RULES or the built-in rules.yaml)"),
        explain: bool = typer.Option(False, "--explain", help="add each label's score and the keywords/patterns that hit"),
        train: bool = typer.Option(False, "--train", help="retrain the model from the corpus under tests/data/ and write streams/classify/model.npz (needs scikit-learn)"),
    ) -> None:
        """Classify complaints: one per line on stdin, one JSON object per line on stdout.

        A blank or undecodable line gets {"line": n, "error": …} so output lines match input lines."""
        if train:
            _train()
            return
        clf = _classifier(rules)
        if evaluate is not None:
            _evaluate(clf, evaluate, write_doc)
        elif write_doc is not None:
            raise UserError("--write-doc needs --evaluate FILE")
        else:
            run(clf, sys.stdin.buffer, sys.stdout.buffer, explain)


def run(clf, source, sink, explain: bool = False) -> int:
    """Stream lines of bytes through the classifier; returns how many were classified."""
    import orjson

    done = 0
    for n, raw in enumerate(source, 1):
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            sink.write(orjson.dumps({"line": n, "error": "not UTF-8 text"}) + b"\n")
            continue
        if not text:
            sink.write(orjson.dumps({"line": n, "error": "empty complaint"}) + b"\n")
            continue
        c = clf.classify(text)
        row = {"label": c.label, "code": c.code, "department": c.department, "tier": c.tier,
               "time_limit_minutes": c.time_limit_minutes, "confidence": c.confidence}
        if explain:
            row["scores"] = {lab: {"score": s, "hits": hits} for lab, (s, hits) in clf.scores(text).items()}
            if clf.model is not None:
                p = clf.probabilities(text)
                row["probabilities"] = {clf.model.labels[i]: round(float(p[i]), 3) for i in p.argsort()[::-1][:3]}
        sink.write(orjson.dumps(row) + b"\n")  # orjson writes UTF-8 as is: no \u escapes
        done += 1
    sink.flush()
    return done


def _train() -> None:
    try:
        from streams.classify.train import CORPUS, train
    except ImportError as e:
        raise UserError(f"training needs scikit-learn ({e.name} is missing): pip install -e '.[test]'") from None
    try:
        figures = train()
    except (OSError, ValueError) as e:
        raise UserError(str(e)) from None
    print(f"trained on {figures['complaints']} complaints ({', '.join(p.name for p in CORPUS)}): "
          f"{figures['vocabulary']} n-grams, temperature {figures['temperature']}, "
          f"cross-validated accuracy of the model alone {figures['cv_accuracy']:.1%}; wrote {figures['path']}")


def _classifier(rules: Path | None):
    from streams.classify import Classifier
    from streams.classify.classifier import RulesError
    from streams.classify.model import ModelError

    try:
        if rules is None:
            return Classifier.default()
        from cityops.taxonomy import load_taxonomy

        return Classifier(load_taxonomy(), rules)
    except (RulesError, ModelError) as e:
        raise UserError(str(e)) from None


def _evaluate(clf, path: Path, write_doc: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    from streams.classify.evaluate import evaluate, load_examples, markdown, write_doc as write

    try:
        ev = evaluate(clf, load_examples(path))
    except (OSError, ValueError) as e:
        raise UserError(str(e)) from None
    out = Console()
    for split, (ok, n) in ev.by_split.items():
        out.print(f"{split}: {ok}/{n} = {ok / n:.1%}")
    out.print(f"[bold]overall accuracy: {ev.accuracy:.1%}[/] ({len(ev.pairs)} complaints); "
              f"sent to a wrong department: {ev.misrouted:.2%}")
    t = Table("label", "precision", "recall", "F1", "support")
    for lab, p, r, f, s in ev.per_label():
        t.add_row(lab, f"{p:.2f}", f"{r:.2f}", f"{f:.2f}", str(s))
    out.print(t)
    conf = ev.confusion()
    c = Table("true \\ predicted", *[ev.codes[lab] for lab in ev.labels], title="confusion (codes)")
    for true in ev.labels:
        c.add_row(f"{ev.codes[true]} {true}", *[str(conf[(true, p)] or "·") for p in ev.labels])
    out.print(c)
    for e, p in ev.errors():
        out.print(f"[red]✗[/] \\[{e.split}] {e.text}  [dim]{e.label} → {p}[/]", highlight=False, soft_wrap=True)
    if write_doc is not None:
        write(write_doc, markdown(ev, str(path), EVALUATE_COMMAND))
        out.print(f"wrote {write_doc}")
