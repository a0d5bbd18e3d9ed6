"""``/v1/webhook-endpoints``: where events are delivered (Standard Webhooks 1.0), and the delivery log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Query, Response
from sqlalchemy import select
from sqlmodel import col

from services.common.bounds import RecordId
from services.common.deps import IfMatchHeader, SessionDep, check_if_match, version_etag
from services.common.errors import PROBLEM_RESPONSES
from services.common.idempotency import IdempotencyDep
from services.common.ids import new_id
from services.common.pagination import Page, PageParamsDep, fetch_page, sortable
from services.common.principal import PrincipalDep, owner_key
from services.events.webhooks.access import owned_endpoint, owner_columns, require_creator
from services.events.webhooks.deps import DispatcherDep, EventTypesDep, UrlPolicyDep, WebhookSettingsDep
from services.events.webhooks.schemas import (
    DeliveryPublic,
    EndpointCreate,
    EndpointPublic,
    EndpointUpdate,
    EndpointWithSecret,
    RotateSecret,
)
from services.events.webhooks.service import (
    check_event_types,
    check_url,
    delete_endpoint,
    delivery_views,
    find_delivery,
    public,
    queue_test_event,
    requeue,
    rotate,
    with_secret,
)
from services.events.webhooks.signing import new_secret
from services.events.webhooks.tables import WebhookDelivery, WebhookEndpoint

# The fields this service's lists sort by (``sort``; see services/common/pagination.py).
ENDPOINT_SORTS = sortable(WebhookEndpoint, "created_at", "updated_at")
DELIVERY_SORTS = sortable(WebhookDelivery, "created_at", "updated_at", "next_attempt_at", "status")
router = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhooks"], responses=PROBLEM_RESPONSES)


def _wake(dispatcher: DispatcherDep, background: BackgroundTasks) -> None:
    """Nudge the dispatcher once the response (and so the transaction) is done."""
    if dispatcher is not None:
        background.add_task(dispatcher.wake)


@router.post(
    "",
    status_code=201,
    response_model=EndpointWithSecret,
    operation_id="create_webhook_endpoint",
    summary="Register a webhook endpoint (the secret is shown once)",
)
async def create_endpoint(
    body: EndpointCreate,
    session: SessionDep,
    principal: PrincipalDep,
    policy: UrlPolicyDep,
    known: EventTypesDep,
    settings: WebhookSettingsDep,
    idempotency: IdempotencyDep,
) -> Response:
    require_creator(principal)
    types = check_event_types(body.event_types, known)
    url = await check_url(policy, body.url)
    now = datetime.now(UTC)
    endpoint = WebhookEndpoint(
        id=new_id("whe"),
        **owner_columns(principal),
        url=url,
        description=body.description,
        event_types=types,
        secret=new_secret(settings.webhook_secret_bytes),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    await session.flush()
    headers = {"ETag": version_etag(endpoint.version), "Location": f"/v1/webhook-endpoints/{endpoint.id}"}
    return await idempotency.respond(201, with_secret(endpoint), headers)


@router.get(
    "",
    response_model=Page[EndpointPublic],
    operation_id="list_webhook_endpoints",
    summary="List your webhook endpoints",
)
async def list_endpoints(session: SessionDep, principal: PrincipalDep, page: PageParamsDep) -> Page[EndpointPublic]:
    require_creator(principal)
    statement = select(WebhookEndpoint)
    if not principal.is_admin:
        statement = statement.where(col(WebhookEndpoint.owner) == owner_key(principal))
    rows = await fetch_page(session, statement, key=WebhookEndpoint.id, params=page, sorts=ENDPOINT_SORTS)
    return rows.map(public)


@router.get(
    "/{endpoint_id}",
    response_model=EndpointPublic,
    operation_id="read_webhook_endpoint",
    summary="Read a webhook endpoint",
)
async def read_endpoint(
    endpoint_id: RecordId, response: Response, session: SessionDep, principal: PrincipalDep
) -> EndpointPublic:
    endpoint = await owned_endpoint(session, principal, endpoint_id)
    response.headers["ETag"] = version_etag(endpoint.version)
    return public(endpoint)


@router.patch(
    "/{endpoint_id}",
    response_model=EndpointPublic,
    operation_id="update_webhook_endpoint",
    summary="Change a webhook endpoint's URL, event types or description",
)
async def update_endpoint(
    endpoint_id: RecordId,
    body: EndpointUpdate,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    policy: UrlPolicyDep,
    known: EventTypesDep,
    if_match: IfMatchHeader = None,
) -> EndpointPublic:
    endpoint = await owned_endpoint(session, principal, endpoint_id, lock=True)
    check_if_match(if_match, endpoint.version, "webhook endpoint")
    if body.event_types is not None:
        endpoint.event_types = check_event_types(body.event_types, known)
    if body.url is not None:
        endpoint.url = await check_url(policy, body.url)
    if "description" in body.model_fields_set:
        endpoint.description = body.description
    endpoint.version += 1
    endpoint.updated_at = datetime.now(UTC)
    response.headers["ETag"] = version_etag(endpoint.version)
    return public(endpoint)


@router.delete(
    "/{endpoint_id}",
    status_code=204,
    operation_id="delete_webhook_endpoint",
    summary="Delete a webhook endpoint, its queued deliveries and their log",
)
async def remove_endpoint(endpoint_id: RecordId, session: SessionDep, principal: PrincipalDep) -> Response:
    endpoint = await owned_endpoint(session, principal, endpoint_id, lock=True)
    await delete_endpoint(session, endpoint)
    return Response(status_code=204)


async def _set_enabled(
    endpoint_id: str, enabled: bool, response: Response, session: SessionDep, principal: PrincipalDep
) -> EndpointPublic:
    endpoint = await owned_endpoint(session, principal, endpoint_id, lock=True)
    if endpoint.enabled != enabled:
        endpoint.enabled = enabled
        endpoint.disabled_reason = None if enabled else "Disabled by its owner"
        endpoint.consecutive_failures = 0
        endpoint.version += 1
        endpoint.updated_at = datetime.now(UTC)
    response.headers["ETag"] = version_etag(endpoint.version)
    return public(endpoint)


@router.post(
    "/{endpoint_id}/disable",
    response_model=EndpointPublic,
    operation_id="disable_webhook_endpoint",
    summary="Stop deliveries to an endpoint (queued ones wait until it is enabled)",
)
async def disable_endpoint(
    endpoint_id: RecordId, response: Response, session: SessionDep, principal: PrincipalDep
) -> EndpointPublic:
    return await _set_enabled(endpoint_id, False, response, session, principal)


@router.post(
    "/{endpoint_id}/enable",
    response_model=EndpointPublic,
    operation_id="enable_webhook_endpoint",
    summary="Resume deliveries to an endpoint",
)
async def enable_endpoint(
    endpoint_id: RecordId,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    dispatcher: DispatcherDep,
    background: BackgroundTasks,
) -> EndpointPublic:
    result = await _set_enabled(endpoint_id, True, response, session, principal)
    _wake(dispatcher, background)
    return result


@router.post(
    "/{endpoint_id}/rotate-secret",
    response_model=EndpointWithSecret,
    operation_id="rotate_webhook_secret",
    summary="Replace the signing secret; the old one also signs during a grace period",
)
async def rotate_secret(
    endpoint_id: RecordId,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    settings: WebhookSettingsDep,
    body: RotateSecret | None = None,
) -> EndpointWithSecret:
    endpoint = await owned_endpoint(session, principal, endpoint_id, lock=True)
    grace = settings.webhook_rotation_grace_seconds
    if body is not None and body.grace_seconds is not None:
        grace = body.grace_seconds
    rotate(endpoint, grace_seconds=grace, secret_bytes=settings.webhook_secret_bytes)
    response.headers["ETag"] = version_etag(endpoint.version)
    return with_secret(endpoint)


@router.post(
    "/{endpoint_id}/test",
    status_code=202,
    response_model=DeliveryPublic,
    operation_id="send_webhook_test_event",
    summary="Send a webhook.test event to the endpoint now",
)
async def send_test_event(
    endpoint_id: RecordId,
    session: SessionDep,
    principal: PrincipalDep,
    dispatcher: DispatcherDep,
    background: BackgroundTasks,
) -> DeliveryPublic:
    endpoint = await owned_endpoint(session, principal, endpoint_id)
    delivery = queue_test_event(session, endpoint)
    await session.flush()
    _wake(dispatcher, background)
    return (await delivery_views(session, [delivery]))[0]


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=Page[DeliveryPublic],
    operation_id="list_webhook_deliveries",
    summary="The endpoint's deliveries, each with every attempt (status, latency, response excerpt)",
)
async def list_deliveries(
    endpoint_id: RecordId,
    session: SessionDep,
    principal: PrincipalDep,
    page: PageParamsDep,
    status: Annotated[Literal["pending", "succeeded", "failed"] | None, Query()] = None,
) -> Page[DeliveryPublic]:
    endpoint = await owned_endpoint(session, principal, endpoint_id)
    statement = select(WebhookDelivery).where(col(WebhookDelivery.endpoint_id) == endpoint.id)
    if status is not None:
        statement = statement.where(col(WebhookDelivery.status) == status)
    rows = await fetch_page(session, statement, key=WebhookDelivery.id, params=page, sorts=DELIVERY_SORTS)
    return Page(items=await delivery_views(session, rows.items), next_cursor=rows.next_cursor, total=rows.total)


@router.get(
    "/{endpoint_id}/deliveries/{delivery_id}",
    response_model=DeliveryPublic,
    operation_id="read_webhook_delivery",
    summary="One delivery and its attempts",
)
async def read_delivery(
    endpoint_id: RecordId, delivery_id: RecordId, session: SessionDep, principal: PrincipalDep
) -> DeliveryPublic:
    endpoint = await owned_endpoint(session, principal, endpoint_id)
    delivery = await find_delivery(session, endpoint, delivery_id)
    return (await delivery_views(session, [delivery]))[0]


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/replay",
    status_code=202,
    response_model=DeliveryPublic,
    operation_id="replay_webhook_delivery",
    summary="Send a delivery again (same webhook-id and body)",
)
async def replay_delivery(
    endpoint_id: RecordId,
    delivery_id: RecordId,
    session: SessionDep,
    principal: PrincipalDep,
    dispatcher: DispatcherDep,
    background: BackgroundTasks,
) -> DeliveryPublic:
    endpoint = await owned_endpoint(session, principal, endpoint_id)
    delivery = await find_delivery(session, endpoint, delivery_id)
    requeue(delivery, endpoint)
    await session.flush()
    _wake(dispatcher, background)
    return (await delivery_views(session, [delivery]))[0]
