"""Text features: a TF-IDF model fitted on the catalogue, stored as posting lists."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer


def _vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(
        sublinear_tf=True,
        strip_accents="unicode",
        lowercase=True,
        token_pattern=r"(?u)\b\w\w+\b",
        dtype=np.float32,
        norm="l2",
    )


def _tfidf(counts: np.ndarray, idf: np.ndarray | np.floating) -> np.ndarray:
    """``(1 + log count) x idf`` in float32, the operations of scikit-learn's sublinear tf."""
    x: np.ndarray = np.log(counts)
    x += np.float32(1.0)
    x *= idf
    return x


class TextModel:
    """One fitted vocabulary and IDF; the catalogue's ``epoch`` changes when it is refitted."""

    def __init__(self, vectorizer: TfidfVectorizer, epoch: int) -> None:
        self.vectorizer = vectorizer
        self.epoch = epoch
        self.vocabulary_size = len(vectorizer.vocabulary_)
        self._analyze = vectorizer.build_analyzer()
        self._idf = vectorizer.idf_
        self.idf: np.ndarray = vectorizer.idf_

    @classmethod
    def fit(cls, texts: Sequence[str], epoch: int) -> TextModel:
        vectorizer = _vectorizer()
        corpus = [t for t in texts if t.strip()] or ["empty"]
        vectorizer.fit(corpus)
        return cls(vectorizer, epoch)

    def counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Term counts of ``texts`` (the first step of ``transform``)."""
        matrix: sp.csr_matrix = CountVectorizer.transform(self.vectorizer, texts)
        return matrix

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        matrix: sp.csr_matrix = self.vectorizer.transform(texts)
        return matrix

    def query_vector(self, text: str | None) -> tuple[np.ndarray, np.ndarray]:
        """Term ids and l2-normalised weights of ``text``; empty when no term is known.

        The same float32 operations as ``TfidfVectorizer.transform`` on one document
        (counts, ``log`` + 1, times idf, l2 norm summed in double as sklearn's
        ``_inplace_csr_row_normalize_l2``), without sklearn's per-call validation,
        which costs about 0.5 to 1 ms; this takes about 20 us.
        """
        empty = np.empty(0, np.int32), np.empty(0, np.float64)
        if not text or not text.strip():
            return empty
        vocabulary = self.vectorizer.vocabulary_
        counts: dict[int, int] = {}
        for token in self._analyze(text):
            index = vocabulary.get(token)
            if index is not None:
                counts[index] = counts.get(index, 0) + 1
        if not counts:
            return empty
        indices = np.array(sorted(counts), dtype=np.int32)
        data = np.array([counts[i] for i in indices.tolist()], dtype=self.vectorizer.dtype)
        np.log(data, out=data)
        data += 1.0
        data *= self._idf[indices]
        norm = 0.0
        for square in (data * data).tolist():  # sequential double sum (not math.fsum, not 3.12's sum)
            norm += square
        if norm != 0.0:
            data = (data.astype(np.float64) / math.sqrt(norm)).astype(self.vectorizer.dtype)
        return indices, data.astype(np.float64)


class Postings:
    """The TF-IDF matrix by term (CSC), stored as what its weights are computed from.

    A weight is ``float32(x / norm)``: ``x = float32((1 + log tf) x idf)`` of the term's
    count in the document, ``norm`` the document's l2 norm (a double), exactly as
    scikit-learn's ``TfidfVectorizer`` computes it. So each posting keeps its row and
    count (5 bytes instead of 8), and each document its norm; weights are recomputed,
    bit for bit, for the postings a query reads.
    """

    def __init__(
        self,
        indptr: np.ndarray,
        rows: np.ndarray,
        counts: np.ndarray,
        norms: np.ndarray,
        idf: np.ndarray,
        max_weights: np.ndarray | None = None,
    ) -> None:
        self.indptr = indptr  # int64 per term
        self.rows = rows  # int32, ascending per term
        self.counts = counts  # uint8 (uint16 when a count passes 255)
        self.norms = norms  # float64 per document (1.0 when empty)
        self.idf = idf  # float32 per term
        if max_weights is None:
            max_weights = np.zeros(len(indptr) - 1, dtype=np.float32)
            used = np.flatnonzero(np.diff(indptr))
            if len(used):
                term_of = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
                x = _tfidf(counts.astype(np.float32), idf[term_of])
                every = (x.astype(np.float64) / norms[rows]).astype(np.float32)
                max_weights[used] = np.maximum.reduceat(every, indptr[used])
        self.max_weights = max_weights  # float32 per term: its largest weight (0 when unused)

    @classmethod
    def build(cls, counts: sp.csr_matrix, idf: np.ndarray) -> Postings:
        """From a documents x terms count matrix (``CountVectorizer.transform``)."""
        counts = sp.csr_matrix(counts, dtype=np.float32)
        counts.sum_duplicates()  # canonical: sorted, unique indices per row
        x = _tfidf(counts.data, idf[counts.indices].astype(np.float32))
        squares = (x * x).astype(np.float64)
        lengths = np.diff(counts.indptr)
        sums = np.zeros(counts.shape[0], dtype=np.float64)
        for position in range(int(lengths.max(initial=0))):  # each row's squares in order, as scikit-learn adds them
            rows = np.flatnonzero(lengths > position)
            sums[rows] += squares[counts.indptr[rows] + position]
        norms = np.where(sums == 0.0, 1.0, np.sqrt(sums))
        csc = counts.tocsc()
        csc.sort_indices()
        top = int(csc.data.max(initial=0))
        return cls(
            csc.indptr.astype(np.int64),
            csc.indices.astype(np.int32),
            csc.data.astype(np.uint8 if top <= np.iinfo(np.uint8).max else np.uint16),
            norms,
            idf.astype(np.float32),
        )

    def verify(self, matrix: sp.csr_matrix | None) -> None:
        """Raise unless the weights equal scikit-learn's ``matrix`` (its first documents), bit for bit."""
        if matrix is None or matrix.nnz == 0:
            return
        csc = sp.csc_matrix(matrix, dtype=np.float32)
        csc.sort_indices()
        for term in np.flatnonzero(np.diff(csc.indptr)).tolist():
            start, end = int(self.indptr[term]), int(self.indptr[term + 1])
            stop = int(np.searchsorted(self.rows[start:end], matrix.shape[0]))
            expected = csc.data[csc.indptr[term] : csc.indptr[term + 1]]
            rows = csc.indices[csc.indptr[term] : csc.indptr[term + 1]]
            if not (
                np.array_equal(self.rows[start : start + stop], rows)
                and np.array_equal(self.weights(term, slice(0, stop)), expected)
            ):
                raise RuntimeError(f"TF-IDF weights of term {term} differ from scikit-learn's")

    @property
    def nbytes(self) -> int:
        parts = (self.indptr, self.rows, self.counts, self.norms, self.idf, self.max_weights)
        return int(sum(part.nbytes for part in parts))

    def weights(self, term: int, positions: slice | np.ndarray) -> np.ndarray:
        """The TF-IDF weights (float32) of the postings of ``term`` at ``positions``."""
        start = int(self.indptr[term])
        if isinstance(positions, slice):
            positions = slice(start + (positions.start or 0), start + positions.stop)
        else:
            positions = positions + start
        x = _tfidf(self.counts[positions].astype(np.float32), self.idf[term])
        weights: np.ndarray = (x.astype(np.float64) / self.norms[self.rows[positions]]).astype(np.float32)
        return weights

    def scores(self, candidates: np.ndarray, terms: np.ndarray, query_weights: np.ndarray) -> np.ndarray:
        """Cosine similarity of each candidate row (sorted ids) with the query vector.

        Per term: when the candidates are few next to the posting list (or spread thin),
        each is looked up in it; otherwise the list is matched against a dense mask of
        the candidates and added into a dense accumulator (one pass, no binary search).
        Either way a row's sum is 0.0 plus its terms' products in query-term order, so
        the result does not depend on the path taken.
        """
        m = len(candidates)
        total = np.zeros(m, dtype=np.float64)
        if m == 0:
            return total
        dense: np.ndarray | None = None
        last = int(candidates[-1])
        for term, query_weight in zip(terms.tolist(), query_weights.tolist(), strict=True):
            if term >= len(self.indptr) - 1:
                continue
            start, end = int(self.indptr[term]), int(self.indptr[term + 1])
            if start == end:
                continue
            rows = self.rows[start:end]
            if m * 20 < end - start or m * 64 < last:  # few candidates, or spread thin: look each up
                positions = np.searchsorted(rows, candidates)
                positions[positions == len(rows)] = 0
                hit = rows[positions] == candidates
                products = self.weights(term, positions[hit]).astype(np.float64) * query_weight
                if dense is None:
                    total[hit] += products
                else:
                    dense[candidates[hit]] += products
            else:
                if dense is None:
                    dense = np.zeros(last + 1, dtype=np.float64)
                    dense[candidates] = total
                    wanted = np.zeros(last + 1, dtype=bool)
                    wanted[candidates] = True
                stop = int(np.searchsorted(rows, last, side="right"))
                hit = np.flatnonzero(wanted[rows[:stop]])  # weights are computed for candidates only
                dense[rows[hit]] += self.weights(term, hit).astype(np.float64) * query_weight
        return dense[candidates] if dense is not None else total

    def strongest(self, terms: np.ndarray, query_weights: np.ndarray, n: int, budget: int) -> tuple[np.ndarray, float]:
        """Bounds of the similarity without reading the longest posting lists.

        The query's terms by their largest possible product (query weight x the term's
        largest weight), strongest first, are read whole while their lists total at most
        ``budget`` postings. Returns every row's similarity over those terms (0 where it
        holds none of them) and the most the other terms add to any row.
        """
        pairs = zip(terms.tolist(), query_weights.tolist(), strict=True)
        known = sorted(
            ((t, q) for t, q in pairs if t < len(self.indptr) - 1),
            key=lambda tq: -tq[1] * float(self.max_weights[tq[0]]),
        )
        dense = np.zeros(n, dtype=np.float64)
        read, rest = 0, 0.0
        for term, query_weight in known:
            length = int(self.indptr[term + 1] - self.indptr[term])
            if read + length <= budget:
                read += length
                rows = self.rows[self.indptr[term] : self.indptr[term + 1]]
                dense[rows] += self.weights(term, slice(0, length)).astype(np.float64) * query_weight
            else:
                rest += query_weight * float(self.max_weights[term])
        return dense, rest
