"""The SSRF guard: webhooks reach public HTTP(S) endpoints only.

A URL must be ``http`` or ``https``, carry no user name or password, and its host
must resolve only to public addresses: never loopback, private (RFC 1918, IPv6 ULA),
link-local, shared (CGNAT, 100.64.0.0/10), multicast, unspecified, reserved or
documentation ranges, nor a cloud metadata address (169.254.169.254,
fd00:ec2::254). The check runs when an endpoint is created or changed, and again at
every connection: ``GuardedTransport`` resolves the host itself, checks each address
and connects to the checked address (TLS still verifies the host name), so a DNS
answer that changes after the first check (DNS rebinding) cannot reach an internal
address. An operator's allow-list (host names, addresses or CIDR blocks) lets chosen
internal targets through, e.g. a receiver on 127.0.0.1 in tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254"))
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT


class UnsafeUrl(ValueError):
    """A URL webhooks may not reach; the message says why."""


def address_problem(address: IPAddress) -> str | None:
    """Why webhooks may not connect to ``address``, or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address_problem(address.ipv4_mapped)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for test, name in (
        (address.is_loopback, "a loopback address"),
        (address.is_unspecified, "the unspecified address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (isinstance(address, ipaddress.IPv4Address) and address in _SHARED, "a shared (CGNAT) address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a public address"),
    ):
        if test:
            return name
    return None


@dataclass(frozen=True)
class UrlPolicy:
    """Which URLs webhooks may reach: public ones, and what the allow-list names."""

    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[Network, ...] = field(default=())

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> UrlPolicy:
        """Entries are host names, IP addresses or CIDR blocks (``10.0.0.0/8``)."""
        hosts: set[str] = set()
        networks: list[Network] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                hosts.add(entry.strip().lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def check_syntax(self, url: str) -> httpx.URL:
        """The parsed URL, or UnsafeUrl for a scheme, credentials or host webhooks never use."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError) as exc:
            raise UnsafeUrl(f"not a valid URL: {exc}") from None
        if parsed.scheme not in ("http", "https"):
            raise UnsafeUrl("must use http or https")
        if parsed.userinfo:
            raise UnsafeUrl("must not hold a user name or password")
        if not parsed.host:
            raise UnsafeUrl("must name a host")
        if parsed.port is not None and not 1 <= parsed.port <= 65535:
            raise UnsafeUrl("must have a port from 1 to 65535")
        if parsed.fragment:
            raise UnsafeUrl("must not hold a fragment")
        return parsed

    def allows_address(self, host: str, address: IPAddress) -> bool:
        if host.lower().rstrip(".") in self.allowed_hosts:
            return True
        if any(address in network for network in self.allowed_networks):
            return True
        return address_problem(address) is None

    async def safe_addresses(self, host: str, port: int) -> list[IPAddress]:
        """The addresses of ``host`` webhooks may connect to; UnsafeUrl if any is forbidden.

        Every address must pass, not just one: a host that resolves to a public and an
        internal address is refused, whichever the connection would pick.
        """
        addresses = await resolve(host, port)
        for address in addresses:
            if not self.allows_address(host, address):
                problem = address_problem(address) or "not allowed"
                shown = host[:100] if host == str(address) else f"{host[:100]} ({address})"
                raise UnsafeUrl(f"{shown} is {problem}; webhooks reach public addresses only")
        return addresses

    async def check(self, url: str) -> None:
        """The whole check of an endpoint's URL: syntax, then every resolved address."""
        parsed = self.check_syntax(url)
        await self.safe_addresses(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80))


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses of ``host`` (an IP literal is its own address); UnsafeUrl if it has none."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrl(f"the host {host[:100]} does not resolve ({exc})") from None
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise UnsafeUrl(f"the host {host[:100]} does not resolve")
    return found


class BlockedAddress(httpx.ConnectError):
    """A connection the SSRF guard refused (an attempt's error says why)."""


class GuardedTransport(httpx.AsyncBaseTransport):
    """Connects only to addresses the policy allows, checked at connection time.

    The host is resolved here, each address checked, and the request sent to the first
    checked address with the original ``Host`` header and TLS server name, so the
    connection goes where the check looked: no second, unchecked DNS lookup.
    """

    def __init__(self, policy: UrlPolicy, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.policy = policy
        self.inner = inner or httpx.AsyncHTTPTransport(retries=0)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        try:
            self.policy.check_syntax(str(url))
            addresses = await self.policy.safe_addresses(url.host, url.port or (443 if url.scheme == "https" else 80))
        except UnsafeUrl as exc:
            raise BlockedAddress(str(exc), request=request) from None
        address = addresses[0]
        request.url = url.copy_with(host=str(address))
        if url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": url.host}
        # The Host header was set from the original URL when the request was built.
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
