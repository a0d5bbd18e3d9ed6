"""Events service settings (environment prefix ``EVENTS_``)."""

from __future__ import annotations

from services.common.settings import service_config
from services.events.webhooks.settings import WebhookSettings


class EventsSettings(WebhookSettings):  # the EVENTS_WEBHOOK_* settings: services/events/webhooks
    model_config = service_config("EVENTS_")

    service_name: str = "events"
    port: int = 8004
    registry_url: str = "http://127.0.0.1:8001"
    matching_url: str = "http://127.0.0.1:8002"
    feed_batch_size: int = 500
    feed_wait_seconds: float = 10.0
