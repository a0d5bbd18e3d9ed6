"""Firm search: ``q`` on ``GET /v1/firms``.

Every word of the query must start a word of the firm's name, place (locality and
subdivision) or capabilities, accents and case folded (``carpinteria`` finds
``Carpintería``); the last word may be a prefix still being typed. A word of
``TYPO_MIN_LENGTH`` letters or more also finds the whole words one typo away. With
no ``sort``, results come by relevance tiers (``search_firms``): as typed before one
typo away; name before place before capabilities; then by id.

The folded columns (``Firm.search_*``) are written with the firm (``search_columns``),
and the words go into ``search_words`` by deletion key (``index_words``), so the
same plain SQL (``LIKE``) answers identically on SQLite and PostgreSQL. Tier by tier, a
page stops reading once full (``fetch_tiered_page``), so a broad prefix costs no more
than a narrow word.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import pycountry
from sqlalchemy import ColumnElement, Select, String, Table, and_, bindparam, false, literal, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bulk import chunks, one_of
from services.common.db import insert_or_skip, is_postgres
from services.common.folding import TYPO_MIN_LENGTH, deletion_keys, fold, within_one_edit
from services.common.pagination import Tiers
from services.registry.firms.models import Firm, SearchWord

MAX_QUERY_WORDS = 8  # a longer query is cut here: each word costs a condition
MAX_INDEXED_WORD = 40  # longer "words" (codes, URLs) are searched by prefix only, never by typo

_WORDS: Table = SearchWord.__table__  # type: ignore[attr-defined]
_FIRMS: Table = Firm.__table__  # type: ignore[attr-defined]
_INSERT_WORDS = text(
    f"INSERT INTO {_WORDS.name} (key, word) SELECT * FROM unnest(:keys, :words) ON CONFLICT DO NOTHING"
).bindparams(bindparam("keys", type_=ARRAY(String)), bindparam("words", type_=ARRAY(String)))


@functools.lru_cache(maxsize=8192)
def _subdivision_name(code: str | None) -> str:
    if not code:
        return ""
    subdivision = pycountry.subdivisions.get(code=code)  # type: ignore[no-untyped-call]
    return str(subdivision.name) if subdivision is not None else ""


def _padded(text: str) -> str:
    return f" {text} " if text else ""


@functools.lru_cache(maxsize=65536)
def _folded_place(locality: str | None, subdivision: str | None) -> str:
    # Folded once per place, not per firm: a register's firms share a few thousand places.
    return _padded(" ".join(p for p in (fold(locality), fold(_subdivision_name(subdivision))) if p))


def search_columns(values: dict[str, Any]) -> dict[str, str]:
    """The folded search columns of a firm from its column values (name, locality,
    subdivision, capabilities)."""
    return {
        "search_name": _padded(fold(values.get("name"))),
        "search_place": _folded_place(values.get("locality"), values.get("subdivision")),
        "search_text": _padded(fold(values.get("capabilities"))),
    }


def _indexable(words: Iterable[str]) -> set[str]:
    return {w for w in words if TYPO_MIN_LENGTH - 1 <= len(w) <= MAX_INDEXED_WORD}


def document_words(document: dict[str, Any]) -> set[str]:
    """The words of a firm document that typo matching may need."""
    return column_words(search_columns(document))


def column_words(columns: dict[str, Any]) -> set[str]:
    """The words typo matching may need, from a firm's folded search columns (``search_columns``)."""
    return _indexable(" ".join(columns[name] for name in ("search_name", "search_place", "search_text")).split())


def index_words_rows(words: Iterable[str]) -> list[dict[str, str]]:
    """The ``search_words`` rows of ``words``: one per deletion key of each."""
    return [{"key": key, "word": word} for word in sorted(words) for key in sorted(deletion_keys(word))]


async def index_words(session: AsyncSession, words: set[str]) -> None:
    """Add the words not yet in ``search_words``, with their deletion keys."""
    await add_words(session, await unindexed_words(session, words))


async def unindexed_words(session: AsyncSession, words: set[str]) -> set[str]:
    """Those of ``words`` not yet in ``search_words``."""
    known: set[str] = set()
    for chunk in chunks(sorted(words), 5000):
        # A word indexed has its own row (key = word): one array parameter, not two IN lists.
        statement = select(_WORDS.c.word).where(one_of(session, _WORDS.c.key, chunk), _WORDS.c.word == _WORDS.c.key)
        known |= set((await session.scalars(statement)).all())
    return words - known


async def add_words(session: AsyncSession, words: set[str]) -> None:
    """Add ``words`` (found unindexed) to ``search_words``, with their deletion keys."""
    rows = index_words_rows(words)
    if rows and is_postgres(session):
        # One statement of two arrays: a bulk import adds thousands of rows a batch, which
        # executemany sends as a statement each. Another writer may add the same word
        # meanwhile: the second copy is dropped (ON CONFLICT, as insert_or_skip).
        await session.execute(_INSERT_WORDS, {"keys": [r["key"] for r in rows], "words": [r["word"] for r in rows]})
        return
    for chunk in chunks(rows, 5000):
        await session.execute(insert_or_skip(session, _WORDS), list(chunk))


async def on_firms_written(session: AsyncSession, op: str, written: Sequence[tuple[str, str, Any]]) -> None:
    """The ``firms_written`` handler: index the words of created and updated firms."""
    if op == "deleted":
        return
    words: set[str] = set()
    for _id, _agency, document in written:
        if document is not None:
            words |= document_words(document)
    await index_words(session, words)


async def _typo_variants(session: AsyncSession, terms: Sequence[str]) -> dict[str, list[str]]:
    """For each term long enough, the indexed words one edit away from it (itself excluded)."""
    long_terms = [t for t in terms if len(t) >= TYPO_MIN_LENGTH]
    if not long_terms:
        return {}
    keys = sorted(set().union(*(deletion_keys(t) for t in long_terms)))
    candidates = set((await session.scalars(select(_WORDS.c.word).where(_WORDS.c.key.in_(keys)))).all())
    return {t: sorted(w for w in candidates if w != t and within_one_edit(t, w)) for t in long_terms}


def _like(column: ColumnElement[str], pattern: str) -> ColumnElement[bool]:
    """``column LIKE pattern`` with the pattern written into the SQL: each search is then
    planned for its own words (a reused prepared statement's generic plan cannot know
    that ' ma%' matches most firms and ' ludh%' few, and took 300 ms where the custom
    plan takes 5). Patterns hold only folded letters, digits, spaces and %."""
    return column.like(literal(pattern, literal_execute=True))


def _like_any(column: ColumnElement[str], patterns: Sequence[str]) -> ColumnElement[bool]:
    return or_(*(_like(column, p) for p in patterns)) if patterns else false()


async def search_firms(session: AsyncSession, statement: Select[Any], query: Any) -> tuple[Select[Any], Tiers | None]:
    """Narrow ``statement`` to the firms matching ``query.q``; the relevance tiers with it.

    Tiers, best first: the name starts with the first word and holds every word as
    typed; the name holds every word as typed; name or place do; any field does; and
    last, the firms found only by allowing one typo in some word. Within a tier, by id.
    Few tiers keep each page's queries few and cheap (each excludes the better tiers).
    """
    terms = list(dict.fromkeys(fold(query.q).split()))[:MAX_QUERY_WORDS] if query.q else []
    if not terms:
        return statement, None
    variants = await _typo_variants(session, terms)
    name, place, text = _FIRMS.c.search_name, _FIRMS.c.search_place, _FIRMS.c.search_text

    def typed(column: ColumnElement[str], term: str) -> ColumnElement[bool]:
        return _like(column, f"% {term}%")  # starts a word: a prefix, or the whole word

    def near(column: ColumnElement[str], term: str) -> ColumnElement[bool]:
        return or_(typed(column, term), _like_any(column, [f"% {w} %" for w in variants.get(term, [])]))

    def every(match: Any, *columns: ColumnElement[str]) -> ColumnElement[bool]:
        return and_(*(or_(*(match(column, term) for column in columns)) for term in terms))

    anywhere = every(near, name, place, text)
    conditions = [
        and_(_like(name, f" {terms[0]}%"), every(typed, name)),
        every(typed, name),
        every(typed, name, place),
        every(typed, name, place, text),
    ]
    if any(variants.values()):  # some word has neighbours one typo away: they come last
        conditions.append(anywhere)
    return statement.where(anywhere), Tiers(tuple(conditions))
