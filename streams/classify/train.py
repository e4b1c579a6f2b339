"""Train the linear model from the labelled corpus: `cityops classify --train` writes streams/classify/model.npz.

Deterministic: the same corpus files give the same weights (sorted vocabulary, lbfgs from zero, folds from
a fixed seed), and tests/test_classify.py retrains and compares. The temperature that calibrates the
log-odds is fitted on out-of-fold predictions (5 folds), so confidences are honest for unseen complaints.
scikit-learn is imported here only; classifying needs numpy alone.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from streams.classify.evaluate import Example, load_examples
from streams.classify.model import DEFAULT_MODEL, NORM_FLOOR, LinearModel, features, piece_grams
from streams.classify.scope import spans

CORPUS = [Path(__file__).resolve().parents[2] / "tests" / "data" / name
          for name in ("complaints_labelled.jsonl", "complaints_corpus.jsonl", "complaints_dev.jsonl",
                       "complaints_dev2.jsonl", "complaints_corpus2.jsonl")]
C = 10.0          # inverse L2 strength: char n-gram tf-idf rows are unit length, so weak regularisation fits
MIN_DF = 2        # an n-gram seen in one complaint only is noise, and would bloat the file
FOLDS = 5
_PUNCT = str.maketrans("", "", "，,。.！!？?；;：:、 ")


def digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()


def variants(e: Example) -> list[str]:
    """The complaint as written and, when it has punctuation, as app users type it: without any."""
    bare = e.text.translate(_PUNCT)
    return [e.text] if bare == e.text else [e.text, bare]


Row = tuple[np.ndarray, np.ndarray]  # (n-gram ids, values) of one complaint, as the classifier computes them


def _row(text: str) -> Row:
    return features(piece_grams(spans(text)))


def _design(rows: list[Row], vocabulary: np.ndarray, idf: np.ndarray):
    from scipy.sparse import csr_matrix

    data, cols, ptr = [], [], [0]
    for ids, values in rows:
        pos = np.minimum(np.searchsorted(vocabulary, ids), len(vocabulary) - 1)
        known = vocabulary[pos] == ids
        x = values[known] * idf[pos[known]]
        data.append(x / max(math.sqrt(float(x @ x)), NORM_FLOOR))
        cols.append(pos[known])
        ptr.append(ptr[-1] + int(known.sum()))
    return csr_matrix((np.concatenate(data), np.concatenate(cols), ptr), shape=(len(rows), len(vocabulary)))


def _fit(rows: list[Row], y: np.ndarray, n_labels: int):
    from sklearn.linear_model import LogisticRegression

    ids, df = np.unique(np.concatenate([r[0] for r in rows]), return_counts=True)
    vocabulary, df = ids[df >= MIN_DF], df[df >= MIN_DF]
    idf = np.log((1 + len(rows)) / (1 + df)) + 1.0
    lr = LogisticRegression(C=C, max_iter=300, tol=1e-3)  # tighter tolerances cost minutes and move no label
    lr.fit(_design(rows, vocabulary, idf), y)
    assert list(lr.classes_) == list(range(n_labels)), "every label needs examples"
    return vocabulary, idf, lr.coef_.T.copy(), lr.intercept_.copy()


def _out_of_fold(examples: list[Example], labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Logits of every original complaint from a model that never saw it (or its unpunctuated twin)."""
    from sklearn.model_selection import StratifiedKFold

    y = np.array([labels.index(e.label) for e in examples])
    logits = np.zeros((len(examples), len(labels)))
    for train_idx, test_idx in StratifiedKFold(FOLDS, shuffle=True, random_state=26).split(np.zeros(len(y)), y):
        rows, ys = _rows([examples[i] for i in train_idx], labels)
        vocabulary, idf, w, b = _fit(rows, ys, len(labels))
        x = _design([_row(examples[i].text) for i in test_idx], vocabulary, idf)
        logits[test_idx] = x @ w + b
    return logits, y


def _rows(examples: list[Example], labels: list[str]) -> tuple[list[Row], np.ndarray]:
    rows, y = [], []
    for e in examples:
        for text in variants(e):
            rows.append(_row(text))
            y.append(labels.index(e.label))
    return rows, np.array(y)


def _temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature with the least out-of-fold negative log-likelihood (grid search, 0.05 steps)."""
    def nll(t: float) -> float:
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        return float(-(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))).mean())

    return min((round(0.2 + 0.05 * i, 2) for i in range(100)), key=nll)


def train(paths: list[Path] | None = None, out: Path = DEFAULT_MODEL) -> dict:
    """Fit on the corpus, calibrate on out-of-fold logits, write the model; returns cross-validated figures."""
    from cityops.taxonomy import load_taxonomy

    paths = paths or CORPUS
    labels = [c.label for c in load_taxonomy().categories]
    examples = [e for p in paths for e in load_examples(p)]
    unknown = {e.label for e in examples} - set(labels)
    if unknown:
        raise ValueError(f"corpus uses labels not in the taxonomy: {', '.join(sorted(unknown))}")
    oof, y = _out_of_fold(examples, labels)
    temperature = _temperature(oof, y)
    rows, ys = _rows(examples, labels)
    vocabulary, idf, w, b = _fit(rows, ys, len(labels))
    LinearModel(tuple(labels), vocabulary, idf, w, b, temperature, digest(paths)).save(out)
    z = oof / temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return {"path": out, "complaints": len(examples), "vocabulary": len(vocabulary), "temperature": temperature,
            "cv_accuracy": float((p.argmax(axis=1) == y).mean()), "oof_probabilities": p, "oof_labels": y,
            "labels": labels, "examples": examples}
