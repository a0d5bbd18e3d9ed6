"""Text features: a TF-IDF model fitted on the catalogue, stored as posting lists."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer


def _vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(
        sublinear_tf=True,
        strip_accents="unicode",
        lowercase=True,
        token_pattern=r"(?u)\b\w\w+\b",
        dtype=np.float32,
        norm="l2",
    )


class TextModel:
    """One fitted vocabulary and IDF; the catalogue's ``epoch`` changes when it is refitted."""

    def __init__(self, vectorizer: TfidfVectorizer, epoch: int) -> None:
        self.vectorizer = vectorizer
        self.epoch = epoch
        self.vocabulary_size = len(vectorizer.vocabulary_)

    @classmethod
    def fit(cls, texts: Sequence[str], epoch: int) -> TextModel:
        vectorizer = _vectorizer()
        corpus = [t for t in texts if t.strip()] or ["empty"]
        vectorizer.fit(corpus)
        return cls(vectorizer, epoch)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        matrix: sp.csr_matrix = self.vectorizer.transform(texts)
        return matrix

    def query_vector(self, text: str | None) -> tuple[np.ndarray, np.ndarray]:
        """Term ids and l2-normalised weights of ``text``; empty when no term is known."""
        if not text or not text.strip():
            return np.empty(0, np.int32), np.empty(0, np.float64)
        row = self.vectorizer.transform([text])
        return row.indices.astype(np.int32), row.data.astype(np.float64)


class Postings:
    """The TF-IDF matrix by term (CSC): for each term, its rows and weights."""

    def __init__(self, indptr: np.ndarray, rows: np.ndarray, weights: np.ndarray) -> None:
        self.indptr = indptr
        self.rows = rows
        self.weights = weights

    @classmethod
    def from_matrix(cls, matrix: sp.csr_matrix, vocabulary_size: int) -> Postings:
        csc = sp.csc_matrix(matrix, shape=(matrix.shape[0], vocabulary_size), dtype=np.float32)
        csc.sort_indices()
        return cls(csc.indptr.astype(np.int64), csc.indices.astype(np.int32), csc.data.astype(np.float32))

    @property
    def nbytes(self) -> int:
        return int(self.indptr.nbytes + self.rows.nbytes + self.weights.nbytes)

    def scores(self, candidates: np.ndarray, terms: np.ndarray, query_weights: np.ndarray) -> np.ndarray:
        """Cosine similarity of each candidate row (sorted ids) with the query vector.

        Per term, it walks whichever is shorter: the term's posting list (looked up
        in the candidates) or the candidates (looked up in the posting list).
        """
        total = np.zeros(len(candidates), dtype=np.float64)
        if len(candidates) == 0:
            return total
        for term, query_weight in zip(terms.tolist(), query_weights.tolist(), strict=True):
            if term >= len(self.indptr) - 1:
                continue
            start, end = int(self.indptr[term]), int(self.indptr[term + 1])
            if start == end:
                continue
            rows = self.rows[start:end]
            if end - start <= len(candidates):
                positions = np.searchsorted(candidates, rows)
                positions[positions == len(candidates)] = 0
                hit = candidates[positions] == rows
                total[positions[hit]] += self.weights[start:end][hit].astype(np.float64) * query_weight
            else:
                positions = np.searchsorted(rows, candidates)
                positions[positions == len(rows)] = 0
                hit = rows[positions] == candidates
                total[hit] += self.weights[start:end][positions[hit]].astype(np.float64) * query_weight
        return total
