"""Text folded for search: what a person typing on any keyboard means.

``fold`` transliterates to ASCII (unidecode: ``Carpintería`` → ``carpinteria``,
``Ñandú`` → ``nandu``), lower-cases and keeps letters and digits as words separated
by one space. Stored text and queries are folded the same way, so a search compares
plain ASCII words and behaves identically on SQLite and PostgreSQL. One typo: two
words are within one edit when the optimal-string-alignment distance (insert,
delete, substitute, or swap two neighbours) is at most 1; ``deletion_keys`` finds
such pairs by index lookups (a word and each of its one-letter deletions: two words
within one edit share a key).
"""

from __future__ import annotations

import re

from rapidfuzz.distance import OSA
from unidecode import unidecode

_NOT_WORD = re.compile(r"[^a-z0-9]+")

# Words this long or longer tolerate one typo in a search; shorter ones must be exact
# (a typo in "oro" or "pan" makes another word, not a misspelling).
TYPO_MIN_LENGTH = 5


def fold(text: str | None) -> str:
    """``text`` as space-separated lower-case ASCII words ("" for None)."""
    if not text:
        return ""
    return _NOT_WORD.sub(" ", unidecode(text).lower()).strip()


def words(text: str | None) -> list[str]:
    """The folded words of ``text``, in order."""
    return fold(text).split()


def deletion_keys(word: str) -> set[str]:
    """``word`` and every one-letter deletion of it: two words within one edit share one."""
    return {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}


def within_one_edit(a: str, b: str) -> bool:
    """At most one insertion, deletion, substitution or swap of neighbours apart."""
    return OSA.distance(a, b, score_cutoff=1) <= 1
