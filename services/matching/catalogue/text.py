"""Text features: a TF-IDF model fitted on the catalogue, stored as posting lists."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from pyroaring import BitMap
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from services.matching.catalogue.bitmaps import as_array, bitmap_of, count_groups


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
        self._idf32 = self.idf.astype(np.float32)  # as ``Postings.build`` reads it
        self._token = re.compile(vectorizer.token_pattern)

    @classmethod
    def fit(cls, texts: Sequence[str], epoch: int) -> TextModel:
        vectorizer = _vectorizer()
        corpus = [t for t in texts if t.strip()] or ["empty"]
        vectorizer.fit(corpus)
        return cls(vectorizer, epoch)

    def counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Term counts of ``texts`` (the first step of ``transform``); a few texts are counted
        here, as ``query_vector`` does, without scikit-learn's per-call validation."""
        if len(texts) > FEW_TEXTS:
            matrix: sp.csr_matrix = CountVectorizer.transform(self.vectorizer, texts)
            return matrix
        vocabulary = self.vectorizer.vocabulary_
        indptr, indices, data = [0], [], []
        for text in texts:
            counts: dict[int, int] = {}
            for token in self._analyze(text):
                index = vocabulary.get(token)
                if index is not None:
                    counts[index] = counts.get(index, 0) + 1
            for index in sorted(counts):
                indices.append(index)
                data.append(counts[index])
            indptr.append(len(indices))
        shape = (len(texts), self.vocabulary_size)
        return sp.csr_matrix(
            (np.array(data, dtype=self.vectorizer.dtype), np.array(indices, dtype=np.int32), np.array(indptr)),
            shape=shape,
        )

    def document(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Term ids (ascending) and TF-IDF weights (float32) of one document: bit for bit the
        weights ``Postings`` gives its row in a segment (``Postings.build`` and ``weights``),
        without building one (reverse matching scores one changed supplier)."""
        counts = self.counts([text])
        counts.sum_duplicates()
        counts.data = counts.data.astype(np.float32)
        idf = self._idf32
        norm = _document_norms(counts, idf)[0]
        weights = (_tfidf(counts.data, idf[counts.indices]).astype(np.float64) / norm).astype(np.float32)
        return counts.indices.astype(np.int32), weights

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        matrix: sp.csr_matrix = self.vectorizer.transform(texts)
        return matrix

    def query_vector(self, text: str | None) -> tuple[np.ndarray, np.ndarray]:
        """Term ids and l2-normalised weights of ``text``; empty when no term is known.

        The same float32 operations as ``TfidfVectorizer.transform`` on one document
        (counts, ``log`` + 1, times idf, l2 norm summed in double as sklearn's
        ``_inplace_csr_row_normalize_l2``), without sklearn's per-call validation,
        which costs far more than the computation for one short text (figures in
        docs/benchmarks.md).
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

    def query_words(self, text: str | None) -> dict[int, str]:
        """The known terms of ``text`` by term id, each as the text first writes it
        (``Carpintería`` for the term ``carpinteria``): the words a card says matched."""
        words: dict[int, str] = {}
        for match in self._token.finditer(text or ""):
            word = match.group()
            for token in self._analyze(word):
                index = self.vectorizer.vocabulary_.get(token)
                if index is not None:
                    words.setdefault(index, word)
        return words


FEW_TEXTS = 8  # up to this many texts are counted without scikit-learn (a delta of one change, an alert's supplier)
COUNTED_TERMS = 8  # rows are told apart by how many query terms they hold up to this many
# Above a weight's float32 rounding (2**-24 of it) and the float64 sums: a row's
# similarity bound from its norm is scaled up by this much to stay above the similarity.
NUMERATOR_MARGIN = 1 + 1e-6
WEAK_TERM = 0.5  # a term whose product is below this share of the largest is weak (see ``holding_counts``)
WEIGHT_SLICE = 1 << 22  # postings whose weights are computed at once when building


def _document_norms(counts: sp.csr_matrix, idf: np.ndarray) -> np.ndarray:
    """Each document's l2 norm (float64; 1.0 when empty) from its float32 counts.

    The squares are added in each row's term order, as scikit-learn adds them, one
    position of every row at a time (no float64 array of every posting).
    """
    if counts.shape[0] == 1:  # one document (reverse matching's one-row segments): the same adds, in one pass
        x = _tfidf(counts.data, idf[counts.indices])
        total = 0.0
        for square in (x * x).astype(np.float64).tolist():
            total += square
        return np.array([math.sqrt(total) if total else 1.0])
    lengths = np.diff(counts.indptr)
    sums = np.zeros(counts.shape[0], dtype=np.float64)
    for position in range(int(lengths.max(initial=0))):
        rows = np.flatnonzero(lengths > position)
        at = counts.indptr[rows] + position
        x = _tfidf(counts.data[at], idf[counts.indices[at]])
        sums[rows] += (x * x).astype(np.float64)
    norms: np.ndarray = np.where(sums == 0.0, 1.0, np.sqrt(sums))
    return norms


class Postings:
    """The TF-IDF matrix by term, stored as what its weights are computed from.

    A weight is ``float32(x / norm)``: ``x = float32((1 + log tf) x idf)`` of the term's
    count in the document, ``norm`` the document's l2 norm (a double), exactly as
    scikit-learn's ``TfidfVectorizer`` computes it. Nearly every count is 1, where ``x``
    is the term's idf, so each term keeps a roaring bitmap of the rows holding it (about
    1.5 bytes a posting) and only its postings with a larger count as (row, count); each
    document keeps its norm. Weights are recomputed, bit for bit, for the postings a
    query reads, and the bitmaps tell how many of a query's terms each row holds without
    reading any posting (``holding_counts``).
    """

    def __init__(
        self,
        terms: list[BitMap],
        repeat_indptr: np.ndarray,
        repeat_rows: np.ndarray,
        repeat_counts: np.ndarray,
        norms: np.ndarray,
        idf: np.ndarray,
        max_weights: np.ndarray,
    ) -> None:
        self.terms = terms  # per term: the rows holding it
        self.repeat_indptr = repeat_indptr  # int64 per term, into the two arrays below
        self.repeat_rows = repeat_rows  # int32, ascending per term: postings whose count is above 1
        self.repeat_counts = repeat_counts  # uint8 (uint16 when a count passes 255)
        self.norms = norms  # float64 per document (1.0 when empty)
        self.idf = idf  # float32 per term
        self.max_weights = max_weights  # float32 per term: its largest weight (0 when unused)
        self.max_numerators = self._max_numerators()  # float64 per term: its largest (1 + log tf) x idf

    def _max_numerators(self) -> np.ndarray:
        """Each term's largest ``x`` (its weight before the division by the norm), from its
        largest count: 1 unless the term has repeated postings."""
        largest = np.ones(len(self.idf), dtype=np.float32)
        repeated = np.flatnonzero(np.diff(self.repeat_indptr))
        if len(repeated):
            largest[repeated] = np.maximum.reduceat(self.repeat_counts, self.repeat_indptr[repeated])
        numerators: np.ndarray = _tfidf(largest, self.idf).astype(np.float64)
        return numerators

    @classmethod
    def build(cls, counts: sp.csr_matrix, idf: np.ndarray) -> Postings:
        """From a documents x terms count matrix (``CountVectorizer.transform``).

        Weights are computed a slice of terms at a time: the whole matrix of them (with
        its float64 intermediates) would take many times the postings' own memory at
        ten million suppliers (docs/matching.md).
        """
        counts = sp.csr_matrix(counts)
        counts.sum_duplicates()  # canonical: sorted, unique indices per row
        counts.data = counts.data.astype(np.float32)
        idf32 = idf.astype(np.float32)
        norms = _document_norms(counts, idf32)
        csc = counts.tocsc()
        del counts
        csc.sort_indices()
        indptr, indices, data = csc.indptr, csc.indices, csc.data
        vocabulary = csc.shape[1]
        max_weights = np.zeros(vocabulary, dtype=np.float32)
        low = 0
        while low < vocabulary:
            # terms [low, high): at least one, at most WEIGHT_SLICE postings unless one term has more
            high = max(low + 1, int(np.searchsorted(indptr, indptr[low] + WEIGHT_SLICE, side="right")) - 1)
            high = min(high, vocabulary)
            start, end = int(indptr[low]), int(indptr[high])
            lengths = np.diff(indptr[low : high + 1])
            used = np.flatnonzero(lengths)
            if len(used):
                term_of = np.repeat(np.arange(low, high), lengths)
                weights = (
                    _tfidf(data[start:end], idf32[term_of]).astype(np.float64) / norms[indices[start:end]]
                ).astype(np.float32)
                max_weights[low + used] = np.maximum.reduceat(weights, indptr[low + used] - start)
            low = high
        unused = BitMap()  # shared by the terms no row holds (most of them in a small delta); never changed
        terms = [unused] * vocabulary  # only the held terms are visited: a small delta holds few
        for term in np.flatnonzero(np.diff(indptr)).tolist():
            bitmap = bitmap_of(indices[indptr[term] : indptr[term + 1]])
            bitmap.run_optimize()
            terms[term] = bitmap
        repeated = np.flatnonzero(data > 1)  # few: nearly every count is 1
        repeated_terms = np.searchsorted(indptr, repeated, side="right") - 1
        top = int(data.max(initial=0))
        return cls(
            terms,
            np.concatenate([[0], np.cumsum(np.bincount(repeated_terms, minlength=vocabulary))]).astype(np.int64),
            indices[repeated].astype(np.int32),
            data[repeated].astype(np.uint8 if top <= np.iinfo(np.uint8).max else np.uint16),
            norms,
            idf32,
            max_weights,
        )

    def verify(self, matrix: sp.csr_matrix | None) -> None:
        """Raise unless the weights equal scikit-learn's ``matrix`` (its first documents), bit for bit."""
        if matrix is None or matrix.nnz == 0:
            return
        csc = sp.csc_matrix(matrix, dtype=np.float32)
        csc.sort_indices()
        first = BitMap()
        first.add_range(0, matrix.shape[0])
        for term in np.flatnonzero(np.diff(csc.indptr)).tolist():
            expected = csc.data[csc.indptr[term] : csc.indptr[term + 1]]
            rows = csc.indices[csc.indptr[term] : csc.indptr[term + 1]]
            held = as_array(self.terms[term] & first) if term < len(self.terms) else np.empty(0, np.int64)
            if not (np.array_equal(held, rows) and np.array_equal(self.weights(term, held), expected)):
                raise RuntimeError(f"TF-IDF weights of term {term} differ from scikit-learn's")

    @property
    def nbytes(self) -> int:
        parts = (self.repeat_indptr, self.repeat_rows, self.repeat_counts, self.norms, self.idf, self.max_weights)
        return int(sum(part.nbytes for part in parts) + sum(len(bitmap.serialize()) for bitmap in self.terms))

    def weights(self, term: int, rows: np.ndarray) -> np.ndarray:
        """The TF-IDF weights (float32) of ``term`` in ``rows`` (ascending, each holding the term)."""
        x = np.full(len(rows), self.idf[term], dtype=np.float32)  # (1 + log 1) x idf
        start, end = int(self.repeat_indptr[term]), int(self.repeat_indptr[term + 1])
        if start < end and len(rows):
            # Each row looked up among the term's repeated postings (not the other way
            # round: a common term has far more of them than a batch has rows).
            repeats = self.repeat_rows[start:end]
            at = np.minimum(np.searchsorted(repeats, rows), len(repeats) - 1)
            found = repeats[at] == rows
            x[found] = _tfidf(self.repeat_counts[start:end][at[found]].astype(np.float32), self.idf[term])
        weights: np.ndarray = (x.astype(np.float64) / self.norms[rows]).astype(np.float32)
        return weights

    def scores(self, candidates: np.ndarray, terms: np.ndarray, query_weights: np.ndarray) -> np.ndarray:
        """Cosine similarity of each candidate row (ascending) with the query vector.

        Each query term's bitmap is intersected with the candidates', so only the
        postings of candidates are read. A row's sum is 0.0 plus its terms' products in
        query-term order, as scikit-learn's sparse product adds them.
        """
        total = np.zeros(len(candidates), dtype=np.float64)
        if len(candidates) == 0:
            return total
        chosen = bitmap_of(candidates)
        for term, query_weight in zip(terms.tolist(), query_weights.tolist(), strict=True):
            if term >= len(self.terms):
                continue
            hit = as_array(self.terms[term] & chosen)
            if len(hit):
                total[np.searchsorted(candidates, hit)] += self.weights(term, hit).astype(np.float64) * query_weight
        return total

    def holding_counts(
        self, terms: np.ndarray, query_weights: np.ndarray, chosen: BitMap
    ) -> list[tuple[BitMap, float, float]]:
        """``chosen`` split by how many of the query's terms each row holds, with two bounds
        of the similarity of a row in each part: the sum of that many of the largest
        products (query weight x the term's largest weight), at most 1; and a ``scale``,
        where ``scale / norm`` bounds a row of that ``norm`` (``row_ceilings``). Rows
        holding ``COUNTED_TERMS`` or more share one part, bounded by the sums of all. Rows
        holding one term are two parts: those holding a weak term and the rest.
        """
        known = [(t, q) for t, q in zip(terms.tolist(), query_weights.tolist(), strict=True) if t < len(self.terms)]
        product_of = {t: q * float(self.max_weights[t]) for t, q in known}
        numerator_of = {t: q * float(self.max_numerators[t]) for t, q in known}
        products = sorted(product_of.values(), reverse=True)
        numerators = sorted(numerator_of.values(), reverse=True)
        groups = count_groups(chosen, [self.terms[t] for t, _ in known], most=COUNTED_TERMS)
        # Rows holding one weak term (a product below half the largest, often a common term's)
        # are bounded by the weak terms' largest, not a rarer term's: without this, a broad
        # query whose rows mostly hold one common term scores far more rows (docs/benchmarks.md).
        strongest = products[0] if products else 0.0
        weak = [t for t, product in product_of.items() if product < WEAK_TERM * strongest]
        parts: list[tuple[BitMap, float, float]] = []
        for rows, count in groups:
            if count == 1 < COUNTED_TERMS and weak:  # (at COUNTED_TERMS = 1 the part holds one or more)
                weak_rows = rows & BitMap.union(*(self.terms[t] for t in weak))
                if weak_rows:
                    bound, scale = max(product_of[t] for t in weak), max(numerator_of[t] for t in weak)
                    parts.append((weak_rows, min(1.0, bound), NUMERATOR_MARGIN * scale))
                rows = rows - weak_rows
                if not rows:
                    continue
            count = count if count < COUNTED_TERMS else len(known)
            parts.append((rows, min(1.0, sum(products[:count])), NUMERATOR_MARGIN * sum(numerators[:count])))
        return parts

    def row_ceilings(self, scales: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Upper bounds of the similarity of ``rows`` from their parts' ``scale``s.

        A weight is ``x / norm`` rounded to float32 and ``x`` is at most the term's largest,
        so a row's similarity is at most the sum of its terms' query weight x largest
        ``x``, over its norm: tight for the long descriptions whose largest weights are
        far below the term's largest anywhere.
        """
        ceilings: np.ndarray = np.minimum(scales / self.norms[rows], 1.0)
        return ceilings
