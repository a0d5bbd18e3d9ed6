"""One If-Match rule for every service's writes (registry records, buyer standards, linkages)."""

from __future__ import annotations

import pytest

from services.common.deps import check_if_match, etag_matches, version_etag
from services.common.errors import PreconditionFailed, PreconditionRequired


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('"3"', True),
        ('W/"3"', True),  # weak comparison, as RFC 9110 allows for If-None-Match reads
        ('"2", "3"', True),  # a list names any of its ETags
        ("*", True),
        ('"2"', False),
        ('"33"', False),
        ("3", False),  # unquoted: not an ETag
    ],
)
def test_an_etag_header_names_a_version(header: str, matches: bool) -> None:
    assert etag_matches(header, version_etag(3)) is matches


def test_a_write_without_if_match_is_428_and_with_a_stale_one_412() -> None:
    with pytest.raises(PreconditionRequired):
        check_if_match(None, 3, "linkage")
    with pytest.raises(PreconditionFailed, match="now at version 3"):
        check_if_match('"2"', 3, "linkage")
    check_if_match('"1", "3"', 3, "linkage")  # the version read is among them: no error
