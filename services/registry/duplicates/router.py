"""``/v1/duplicates``: the review queue of likely duplicate firms, merges and their undo."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, or_, select

from services.common.bounds import Flag, QueryShare, RecordId
from services.common.deps import SessionDep
from services.common.errors import PROBLEM_RESPONSES, Conflict, Forbidden, NotFound, invalid_field
from services.common.pagination import ListQuery, Page, fetch_page, sortable
from services.common.principal import Principal, PrincipalDep, Role
from services.registry.agencies.models import Agency
from services.registry.duplicates.consumer import check_position
from services.registry.duplicates.models import DuplicateCandidate, DuplicateMerge, DuplicatePolicy
from services.registry.duplicates.service import merge_firms, undo_merge
from services.registry.firms.models import Firm
from services.registry.firms.schemas import FirmPublic

router = APIRouter(prefix="/v1/duplicates", tags=["duplicates"], responses=PROBLEM_RESPONSES)
Status = Literal["open", "merged", "distinct"]


class Reason(BaseModel):
    code: str = Field(description="e.g. name_similar, same_national_id, near, same_street_address, different_sector")
    detail: str
    weight: float = Field(description="Log-odds contribution to the score (negative: evidence against)")


class CandidatePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    firm_a: str
    firm_b: str
    agency_a: str
    agency_b: str
    score: float = Field(description="Probability-like score in [0, 1]; pairs from 0.5 on are listed")
    same_national_id: bool
    reasons: list[Reason]
    status: Status
    source: str = Field(description="create, update, undo or import:<job id>")
    detected_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    merge_id: str | None


class CandidateDetail(CandidatePublic):
    firms: list[FirmPublic] = Field(description="The two firms as they are now (a merged one is gone)")


class MergePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    candidate_id: str | None
    survivor_id: str
    merged_id: str
    agency_id: str
    automatic: bool
    merged_by: str
    merged_at: datetime
    repointed: list[dict[str, str]] = Field(description="Records that referred to the merged firm, now to the survivor")
    undone_at: datetime | None
    undone_by: str | None


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    survivor_id: RecordId | None = Field(default=None, description="The firm that remains (default: the older one)")


class PolicyPublic(BaseModel):
    agency_id: str
    auto_merge_same_national_id: bool = Field(
        description="Imports merge a new firm into the agency's firm with the same national id (scheme and value)"
    )


class PolicyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auto_merge_same_national_id: Flag


class CandidateQuery(ListQuery):
    status: Status | None = None
    firm_id: RecordId | None = None
    import_id: RecordId | None = Field(default=None, description="Found by this import job")
    agency_id: RecordId | None = None
    min_score: QueryShare | None = None


class MergeQuery(ListQuery):
    firm_id: RecordId | None = None


def _reviewer(principal: Principal) -> None:
    if principal.role not in (Role.admin, Role.agency):
        raise Forbidden(f"Role '{principal.role}' does not review duplicates")


def _visible(principal: Principal, statement: Select[Any]) -> Select[Any]:
    _reviewer(principal)
    if principal.is_admin:
        return statement
    return statement.where(
        or_(DuplicateCandidate.agency_a == principal.agency_id, DuplicateCandidate.agency_b == principal.agency_id)  # type: ignore[arg-type]
    )


def merge_public(merge: DuplicateMerge) -> MergePublic:
    return MergePublic(
        id=merge.id,
        candidate_id=merge.candidate_id,
        survivor_id=merge.survivor_id,
        merged_id=merge.merged_id,
        agency_id=merge.agency_id,
        automatic=merge.automatic,
        merged_by=merge.merged_by,
        merged_at=merge.merged_at,
        repointed=[{"entity": r["entity"], "id": r["id"]} for r in merge.snapshot.get("repointed", [])],
        undone_at=merge.undone_at,
        undone_by=merge.undone_by,
    )


async def _candidate(session: SessionDep, principal: Principal, candidate_id: str) -> DuplicateCandidate:
    _reviewer(principal)
    candidate = await session.get(DuplicateCandidate, candidate_id, with_for_update=True)
    if candidate is None or not (principal.is_admin or principal.agency_id in (candidate.agency_a, candidate.agency_b)):
        raise NotFound(f"No duplicate candidate with id '{candidate_id}'")
    return candidate


def _decider(principal: Principal, candidate: DuplicateCandidate) -> None:
    if not all(principal.can_write_for_agency(a) for a in (candidate.agency_a, candidate.agency_b)):
        raise Forbidden("One of the firms belongs to another agency; an admin decides this pair")


@router.get(
    "", operation_id="list_duplicates", response_model=Page[CandidatePublic], summary="List likely duplicate pairs"
)
async def list_candidates(
    request: Request, session: SessionDep, principal: PrincipalDep, query: Annotated[CandidateQuery, Query()]
) -> Page[CandidatePublic]:
    params = query.page_params(request.app.state.settings)
    statement = _visible(principal, select(DuplicateCandidate))
    if query.status is not None:
        statement = statement.where(DuplicateCandidate.status == query.status)  # type: ignore[arg-type]
    if query.firm_id is not None:
        statement = statement.where(
            or_(DuplicateCandidate.firm_a == query.firm_id, DuplicateCandidate.firm_b == query.firm_id)  # type: ignore[arg-type]
        )
    if query.import_id is not None:
        statement = statement.where(DuplicateCandidate.source == f"import:{query.import_id}")  # type: ignore[arg-type]
    if query.agency_id is not None:
        statement = statement.where(
            or_(DuplicateCandidate.agency_a == query.agency_id, DuplicateCandidate.agency_b == query.agency_id)  # type: ignore[arg-type]
        )
    if query.min_score is not None:
        statement = statement.where(DuplicateCandidate.score >= query.min_score)  # type: ignore[arg-type]
    sorts = sortable(DuplicateCandidate, "score", "detected_at", "status")
    rows = await fetch_page(session, statement, key=DuplicateCandidate.id, params=params, sorts=sorts)  # type: ignore[arg-type,unused-ignore]
    return rows.map(CandidatePublic.model_validate)


class CheckPartition(BaseModel):
    partition: str = Field(description="The partition's cursor: duplicates, or duplicates:I/N with N replicas")
    checked_through: int = Field(description="Sequence number of the last change on the feed it has checked")
    lag: int = Field(description="Changes on the feed it has not checked yet")


class CheckStatus(BaseModel):
    head: int = Field(description="Sequence number of the last change on the registry's feed")
    checked_through: int = Field(description="The least advanced partition's position")
    lag: int = Field(description="Changes not yet checked by every partition (0: the review queue is current)")
    partitions: list[CheckPartition]


@router.get(
    "/check",
    operation_id="read_duplicate_check",
    response_model=CheckStatus,
    summary="How far the duplicate check has come behind the writes",
)
async def read_check(request: Request, session: SessionDep, _principal: PrincipalDep) -> CheckStatus:
    """Firms are checked for duplicates behind their writes, by a consumer of the registry's
    change feed: pairs appear in the queue once ``lag`` is 0 (or the partition passed the write)."""
    position = await check_position(session, request.app.state.settings.duplicates_partitions)
    return CheckStatus(
        head=position.head,
        checked_through=position.checked_through,
        lag=position.lag,
        partitions=[
            CheckPartition(partition=name, checked_through=checked, lag=max(0, position.head - checked))
            for name, checked in position.positions.items()
        ],
    )


@router.get(
    "/policy", operation_id="read_duplicate_policy", response_model=PolicyPublic, summary="An agency's duplicate policy"
)
async def read_policy(
    session: SessionDep, principal: PrincipalDep, agency_id: Annotated[RecordId | None, Query()] = None
) -> PolicyPublic:
    agency = _policy_agency(principal, agency_id)
    policy = await session.get(DuplicatePolicy, agency)
    return PolicyPublic(
        agency_id=agency, auto_merge_same_national_id=bool(policy and policy.auto_merge_same_national_id)
    )


@router.put(
    "/policy",
    operation_id="update_duplicate_policy",
    response_model=PolicyPublic,
    summary="Choose whether imports merge exact national-id matches",
)
async def write_policy(
    body: PolicyUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    agency_id: Annotated[RecordId | None, Query()] = None,
) -> PolicyPublic:
    agency = _policy_agency(principal, agency_id)
    if await session.get(Agency, agency) is None:
        raise invalid_field("agency_id", f"no agency with id '{agency}'", "unknown_reference", "query")
    policy = await session.get(DuplicatePolicy, agency, with_for_update=True)
    now = datetime.now(UTC)
    if policy is None:
        policy = DuplicatePolicy(agency_id=agency, updated_at=now)
        session.add(policy)
    policy.auto_merge_same_national_id = body.auto_merge_same_national_id
    policy.updated_at = now
    await session.flush()
    return PolicyPublic(agency_id=agency, auto_merge_same_national_id=policy.auto_merge_same_national_id)


def _policy_agency(principal: Principal, requested: str | None) -> str:
    _reviewer(principal)
    if principal.is_admin:
        if requested is None:
            raise invalid_field("agency_id", "required for an admin", "missing", "query")
        return requested
    if requested is not None and requested != principal.agency_id:
        raise Forbidden("An agency sets its own policy only")
    assert principal.agency_id is not None
    return principal.agency_id


@router.get("/merges", operation_id="list_merges", response_model=Page[MergePublic], summary="List merges")
async def list_merges(
    request: Request, session: SessionDep, principal: PrincipalDep, query: Annotated[MergeQuery, Query()]
) -> Page[MergePublic]:
    _reviewer(principal)
    params = query.page_params(request.app.state.settings)
    statement = select(DuplicateMerge)
    if not principal.is_admin:
        statement = statement.where(DuplicateMerge.agency_id == principal.agency_id)  # type: ignore[arg-type]
    if query.firm_id is not None:
        statement = statement.where(
            or_(DuplicateMerge.survivor_id == query.firm_id, DuplicateMerge.merged_id == query.firm_id)  # type: ignore[arg-type]
        )
    sorts = sortable(DuplicateMerge, "merged_at")
    rows = await fetch_page(session, statement, key=DuplicateMerge.id, params=params, sorts=sorts)  # type: ignore[arg-type,unused-ignore]
    return rows.map(merge_public)


async def _merge(session: SessionDep, principal: Principal, merge_id: str) -> DuplicateMerge:
    _reviewer(principal)
    merge = await session.get(DuplicateMerge, merge_id, with_for_update=True)
    if merge is None or not (principal.is_admin or merge.agency_id == principal.agency_id):
        raise NotFound(f"No merge with id '{merge_id}'")
    return merge


@router.get("/merges/{merge_id}", operation_id="read_merge", response_model=MergePublic, summary="Read a merge")
async def read_merge(merge_id: RecordId, session: SessionDep, principal: PrincipalDep) -> MergePublic:
    return merge_public(await _merge(session, principal, merge_id))


@router.post("/merges/{merge_id}/undo", operation_id="undo_merge", response_model=MergePublic, summary="Undo a merge")
async def undo(merge_id: RecordId, session: SessionDep, principal: PrincipalDep) -> MergePublic:
    """The merged firm comes back with its id and data, records that referred to it do again,
    and the pair returns to the queue as open. 409 if a repointed record changed since."""
    merge = await _merge(session, principal, merge_id)
    return merge_public(await undo_merge(session, merge, principal=principal))


@router.get(
    "/{candidate_id}",
    operation_id="read_duplicate",
    response_model=CandidateDetail,
    summary="A duplicate pair with both firms",
)
async def read_candidate(candidate_id: RecordId, session: SessionDep, principal: PrincipalDep) -> CandidateDetail:
    candidate = await _candidate(session, principal, candidate_id)
    firms = [await session.get(Firm, firm_id) for firm_id in (candidate.firm_a, candidate.firm_b)]
    return CandidateDetail(
        **CandidatePublic.model_validate(candidate).model_dump(),
        firms=[FirmPublic.model_validate(f, from_attributes=True) for f in firms if f is not None],
    )


@router.post(
    "/{candidate_id}/merge",
    operation_id="merge_duplicate",
    response_model=MergePublic,
    summary="Merge the pair into one firm",
)
async def merge(
    candidate_id: RecordId, session: SessionDep, principal: PrincipalDep, body: MergeRequest | None = None
) -> MergePublic:
    """The survivor keeps its id and data; every record referring to the other firm (network
    members, ...) is repointed to it; the other firm is deleted. All of it reaches the change feed,
    and ``POST /v1/duplicates/merges/{id}/undo`` reverses it."""
    candidate = await _candidate(session, principal, candidate_id)
    _decider(principal, candidate)
    if candidate.status != "open":
        raise Conflict(f"This pair is {candidate.status} already")
    survivor = (body.survivor_id if body else None) or candidate.firm_a
    if survivor not in (candidate.firm_a, candidate.firm_b):
        raise invalid_field("survivor_id", "must be one of the pair's two firms", "invalid")
    merged = candidate.firm_b if survivor == candidate.firm_a else candidate.firm_a
    result = await merge_firms(
        session, survivor_id=survivor, merged_id=merged, principal=principal, candidate=candidate
    )
    return merge_public(result)


@router.post(
    "/{candidate_id}/distinct",
    operation_id="mark_duplicate_distinct",
    response_model=CandidatePublic,
    summary="Mark the pair as two firms",
)
async def distinct(candidate_id: RecordId, session: SessionDep, principal: PrincipalDep) -> CandidatePublic:
    candidate = await _candidate(session, principal, candidate_id)
    _decider(principal, candidate)
    if candidate.status != "open":
        raise Conflict(f"This pair is {candidate.status} already")
    candidate.status = "distinct"
    candidate.decided_at = datetime.now(UTC)
    candidate.decided_by = principal.subject
    await session.flush()
    return CandidatePublic.model_validate(candidate)
