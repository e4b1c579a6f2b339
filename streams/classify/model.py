"""The learned half of the classifier: character n-grams → a linear model's calibrated log-odds per label.

Weights are trained by `cityops classify --train` (streams/classify/train.py, scikit-learn) from the
labelled corpus shipped under tests/data/ and written to `model.npz` beside this module; reading them needs
numpy only, so the worker and `cityops classify` never import scikit-learn and nothing is downloaded.
Features are the 1- to 3-character substrings of the text, once per weighted piece from `scope.spans`
(a negated piece subtracts its n-grams, a main request counts double), tf-idf weighted and L2-normalised:
the same function serves training and classification, so the two cannot drift apart.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_MODEL = Path(__file__).parent / "model.npz"
NGRAMS = (1, 2, 3)
# Rows are scaled to unit length, but never by less than this: a two-character "在吗" carries too little
# evidence to be as sure as a full sentence (a typical complaint's tf-idf norm is 30-45, the 1st percentile 15).
NORM_FLOOR = 15.0
_SEP = re.compile(r"[，,。.！!？?；;：:、…~～\s\"'“”「」（）()]+")
# Every digit reads as 0: a number's value says nothing of the class, and 「12345」 alone must not look like
# the angry complaints that name the hotline.
_DIGITS = str.maketrans("123456789０１２３４５６７８９", "0" * 19)


class ModelError(ValueError):
    """The model file is missing or unreadable; the message says how to rebuild it."""


def normalize(text: str) -> str:
    """Case folded, punctuation and space runs one space, digits 0: the text n-grams and keywords are read from."""
    return _SEP.sub(" ", text.lower()).strip().translate(_DIGITS)


def gram_id(gram: str) -> int:
    """The id `gram_ids` gives a 1- to 3-character string."""
    v = 0
    for ch in gram:
        v = (v << 21) | ord(ch)
    return v


def gram_ids(piece: str) -> np.ndarray:
    """The distinct 1- to 3-character n-grams of a piece as sorted uint64 ids, computed without a Python loop.

    Characters are code points (< 2**21), so an n-gram's id is its code points side by side in 21-bit
    fields: exact, no hashing collisions, and no two lengths share an id since no character is 0.
    Case is folded and every run of punctuation or space becomes one space (a clause boundary)."""
    a = np.frombuffer(normalize(piece).encode("utf-32-le"), np.uint32).astype(np.uint64)
    if len(a) < 3:
        parts = [a, (a[:-1] << 21) | a[1:]] if len(a) == 2 else [a]
    else:
        parts = [a, (a[:-1] << 21) | a[1:], (a[:-2] << 42) | (a[1:-1] << 21) | a[2:]]
    return np.unique(np.concatenate(parts))


def features(grams: list[tuple[np.ndarray, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, values): each n-gram once, valued by the summed weight of the pieces it occurs in."""
    if len(grams) == 1:
        ids, w = grams[0]
        return ids, np.full(len(ids), w)
    ids = np.concatenate([g for g, _ in grams])
    unique, inverse = np.unique(ids, return_inverse=True)
    return unique, np.bincount(inverse, weights=np.concatenate([np.full(len(g), w) for g, w in grams]))


def piece_grams(pieces: list[tuple[str, float]]) -> list[tuple[np.ndarray, float]]:
    return [(gram_ids(piece), w) for piece, w in pieces]


@dataclass
class LinearModel:
    labels: tuple[str, ...]
    vocabulary: np.ndarray   # (V,) sorted n-gram ids (see gram_ids)
    idf: np.ndarray          # (V,)
    weights: np.ndarray      # (V, K) float32: half the memory traffic of the row gather, no label changes
    bias: np.ndarray         # (K,)
    temperature: float       # calibration: logits / temperature are the log-odds
    corpus_digest: str       # sha256 of the corpus files the weights came from

    def log_odds(self, grams: list[tuple[np.ndarray, float]]) -> np.ndarray:
        """Calibrated log-odds per label (softmax gives probabilities), in `labels` order."""
        ids, values = features(grams)
        pos = np.searchsorted(self.vocabulary, ids)
        pos[pos == len(self.vocabulary)] = 0
        known = self.vocabulary[pos] == ids
        if not known.any():
            return self.bias / self.temperature
        idx = pos[known]
        x = values[known] * self.idf[idx]
        norm = max(math.sqrt(float(x @ x)), NORM_FLOOR)
        return ((x / norm).astype(np.float32) @ self.weights[idx] + self.bias) / self.temperature

    def save(self, path: Path) -> None:
        meta = {"labels": list(self.labels), "temperature": self.temperature, "corpus_digest": self.corpus_digest,
                "ngrams": list(NGRAMS), "norm_floor": NORM_FLOOR, "digits": "0"}
        with open(path, "wb") as f:  # a file object: numpy would otherwise append .npz to the name
            np.savez_compressed(f, vocabulary=self.vocabulary.astype(np.uint64), idf=self.idf.astype(np.float32),
                                weights=self.weights.astype(np.float32), bias=self.bias.astype(np.float32),
                                meta=np.array(json.dumps(meta, ensure_ascii=False)))

    @classmethod
    def load(cls, path: Path | str) -> LinearModel:
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                if (tuple(meta["ngrams"]), meta["norm_floor"], meta.get("digits")) != (NGRAMS, NORM_FLOOR, "0"):
                    raise ModelError(f"{path}: trained with other features ({meta['ngrams']}, norm floor "
                                     f"{meta['norm_floor']}); rebuild it with `cityops classify --train`")
                return cls(tuple(meta["labels"]), z["vocabulary"], z["idf"].astype(np.float64),
                           z["weights"], z["bias"].astype(np.float64), float(meta["temperature"]),
                           meta["corpus_digest"])
        except (OSError, KeyError, ValueError) as e:
            if isinstance(e, ModelError):
                raise
            raise ModelError(f"cannot read classification model {path} ({e}); "
                             "rebuild it with `cityops classify --train`") from None
