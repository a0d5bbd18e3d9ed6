"""The parts of webhook delivery that need no service: signatures, the SSRF guard, retry delays."""

from __future__ import annotations

import ipaddress
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from standardwebhooks import Webhook

from services.events.settings import EventsSettings
from services.events.webhooks.retries import next_delay, retry_after_seconds
from services.events.webhooks.settings import WebhookSettings, parse_schedule
from services.events.webhooks.signing import new_secret, signature_header
from services.events.webhooks.ssrf import BlockedAddress, GuardedTransport, UnsafeUrl, UrlPolicy, address_problem
from tests.events.receiver import Receiver


@pytest.mark.parametrize("size", [24, 32, 64])
def test_signatures_verify_with_the_standardwebhooks_package(size: int) -> None:
    secret, other = new_secret(size), new_secret(size)
    assert secret.startswith("whsec_")
    body = b'{"type":"firm.created","timestamp":"2026-12-07T00:00:00Z","data":{"id":"frm_1"}}'
    timestamp = int(datetime.now(UTC).timestamp())
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(timestamp)}
    both = signature_header([secret, other], "evt_1", timestamp, body)
    assert len(both.split(" ")) == 2
    for key in (secret, other):
        assert Webhook(key).verify(body, headers | {"webhook-signature": both})["data"] == {"id": "frm_1"}
    only_new = signature_header([other], "evt_1", timestamp, body)
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(secret).verify(body, headers | {"webhook-signature": only_new})


def test_secret_sizes_outside_the_spec_are_refused() -> None:
    for size in (16, 65):
        with pytest.raises(ValueError):
            new_secret(size)


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.5.4", "private"),
        ("fd12::1", "private"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "CGNAT"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
    ],
)
def test_internal_addresses_are_refused(address: str, problem: str) -> None:
    assert problem in (address_problem(ipaddress.ip_address(address)) or "")


def test_public_addresses_pass() -> None:
    for address in ("93.184.215.14", "2606:4700::6810:84e5", "8.8.8.8"):
        assert address_problem(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/hooks", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("https://user:pw@example.com/hooks", "user name or password"),
        ("http://127.0.0.1:8080/hooks", "loopback"),
        ("http://localhost/hooks", "loopback"),
        ("http://10.0.0.5/hooks", "private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/latest", "metadata"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://0.0.0.0:80/", "unspecified"),
        ("http://2130706433/", "loopback"),  # 127.0.0.1 as one number, as resolvers read it
        ("http://0x7f.0.0.1/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://[::ffff:a9fe:a9fe]/", "metadata"),  # 169.254.169.254, IPv4-mapped
        ("http://example.com:99999/", "port"),
        ("http://no-such-host.invalid/hooks", "does not resolve"),
    ],
)
async def test_urls_webhooks_may_not_reach(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrl, match=reason):
        await UrlPolicy().check(url)


async def test_the_allow_list_lets_named_hosts_and_networks_through() -> None:
    policy = UrlPolicy.from_entries(["127.0.0.0/8", "internal.example"])
    await policy.check("http://127.0.0.1:9/hooks")
    await policy.check("http://localhost:9/hooks")  # resolves into the allowed network
    with pytest.raises(UnsafeUrl, match="private"):
        await policy.check("http://10.0.0.1/hooks")
    assert policy.allows_address("internal.example", ipaddress.ip_address("10.0.0.1"))


async def test_the_transport_checks_again_at_connection_time() -> None:
    """A host that passed at registration but resolves inside now (DNS rebinding) is refused
    when connecting; the allow-list lets a real receiver through, to the address checked."""
    receiver = Receiver()
    await receiver.start()
    try:
        url = f"http://localhost:{receiver.port}/hooks"
        async with httpx.AsyncClient(transport=GuardedTransport(UrlPolicy())) as client:
            with pytest.raises(BlockedAddress, match="loopback"):
                await client.post(url, content=b"{}")
        assert receiver.received == []
        async with httpx.AsyncClient(transport=GuardedTransport(UrlPolicy.from_entries(["127.0.0.1/32"]))) as client:
            response = await client.post(url, content=b"{}")
        assert response.status_code == 200
        assert receiver.received[0].headers["host"] == f"localhost:{receiver.port}"
    finally:
        await receiver.stop()


def test_retry_schedule_and_jitter() -> None:
    delays = parse_schedule("5s, 5m,30m,2h,5h,10h,14h,20h,24h")
    assert delays[:3] == (5, 300, 1800) and sum(delays) / 86400 == pytest.approx(3.15, abs=0.01)  # about three days
    rng = random.Random(7)
    for failures, step in enumerate(delays, start=1):
        delay = next_delay(delays, failures, jitter=0.1, rng=rng)
        assert delay is not None and 0.9 * step <= delay <= 1.1 * step
    assert next_delay(delays, len(delays) + 1, jitter=0.1) is None
    assert next_delay(delays, 1, jitter=0, retry_after=120) == 120  # longer than the step: honoured
    assert next_delay(delays, 1, jitter=0, retry_after=10**9, retry_after_max=3600) == 3600
    with pytest.raises(ValueError, match="'5 parsecs'"):
        parse_schedule("5s,5 parsecs")
    with pytest.raises(ValueError):
        WebhookSettings(webhook_retry_schedule="soon")


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 12, 7, tzinfo=UTC)
    assert retry_after_seconds("30", now) == 30
    assert retry_after_seconds(format_datetime(now + timedelta(minutes=2), usegmt=True), now) == 120
    assert retry_after_seconds("later", now) is None
    assert retry_after_seconds(None, now) is None


def test_allowed_hosts_setting_reads_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTS_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1/32, hooks.internal")
    assert EventsSettings().webhook_allowed_hosts == ["127.0.0.1/32", "hooks.internal"]
