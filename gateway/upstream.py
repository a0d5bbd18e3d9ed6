"""The gateway's HTTP client to its services: pooled keep-alive HTTP/1.1 with a C parser.

httpx over h11 (pure Python) was about two thirds of the gateway's own CPU per
forwarded request (docs/benchmarks.md, "The gateway hop"). The services are the
platform's own uvicorn processes, so ``PooledClient`` speaks only what they need:
HTTP/1.1 (TLS when a base URL says ``https``), keep-alive connections per origin,
responses parsed by httptools (llhttp, already uvicorn's parser), a request head and a
small body written in one call, streamed bodies sent chunked, answers streamed back
with flow control.

``HttpxClient`` puts an ``httpx.AsyncClient`` behind the same interface: tests route
the services' base URLs to in-process apps through httpx transports (``http_mounts``).
Both raise httpx's exception classes, so the forwarder's retries, deadline and circuit
breaker are one implementation whichever client runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import urllib.parse
from collections import deque
from collections.abc import AsyncIterator
from typing import Protocol, cast

import httptools
import httpx

Headers = list[tuple[bytes, bytes]]
# A connection idle this long is closed rather than reused: uvicorn closes idle
# connections after 5 s, and reusing one it is closing would fail the request.
KEEPALIVE_SECONDS = 4.0
# Bytes of an answer held before reading from the service pauses until the client takes them.
READ_BUFFER_BYTES = 256 * 1024
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


class UpstreamResponse(Protocol):
    """An answer whose headers have arrived; its body is read with ``aiter_raw`` or ``aread``."""

    status_code: int
    headers: Headers  # names in lower case, as received otherwise

    def header(self, name: bytes) -> bytes | None: ...

    def aiter_raw(self) -> AsyncIterator[bytes]: ...

    async def aread(self) -> bytes: ...

    async def aclose(self) -> None: ...


class UpstreamClient(Protocol):
    async def send(
        self, method: str, base_url: str, target: str, headers: Headers, body: bytes | AsyncIterator[bytes]
    ) -> UpstreamResponse:
        """Send ``method target`` (path and query) to ``base_url``; return once the answer's headers are in."""
        ...

    async def aclose(self) -> None: ...


class PooledClient:
    """One per process: a pool of keep-alive connections per service origin."""

    def __init__(self, *, connect_timeout: float, read_timeout: float, max_connections: int = 100) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self._pools: dict[str, _Pool] = {}

    async def send(
        self, method: str, base_url: str, target: str, headers: Headers, body: bytes | AsyncIterator[bytes]
    ) -> UpstreamResponse:
        pool = self._pools.get(base_url)
        if pool is None:
            pool = self._pools[base_url] = _Pool(base_url, self)
        return await pool.send(method, target, headers, body)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


class _Pool:
    def __init__(self, base_url: str, client: PooledClient) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) base URL: {base_url!r}")
        self.client = client
        self.host, self.tls = parts.hostname, parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.prefix = parts.path.rstrip("/")
        self.host_header = parts.netloc.rpartition("@")[2].encode("idna")
        self.ssl_context = ssl.create_default_context() if self.tls else None
        self.idle: list[_Connection] = []
        self.slots = asyncio.Semaphore(client.max_connections)

    async def send(
        self, method: str, target: str, headers: Headers, body: bytes | AsyncIterator[bytes]
    ) -> UpstreamResponse:
        connection = await self._acquire()
        response = _Response(connection, self, method)
        try:
            head = [f"{method} {self.prefix}{target} HTTP/1.1\r\nhost: ".encode("latin-1"), self.host_header]
            for name, value in headers:
                head += (b"\r\n", name, b": ", value)
            if isinstance(body, bytes):
                if body or method not in _NO_BODY_METHODS:
                    head.append(b"\r\ncontent-length: %d" % len(body))
                head += (b"\r\n\r\n", body)
                connection.write(b"".join(head))  # one write: one segment for a small request
            else:
                head.append(b"\r\ntransfer-encoding: chunked\r\n\r\n")
                connection.write(b"".join(head))
                async for chunk in body:
                    if chunk:
                        connection.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                        await connection.drain()
                connection.write(b"0\r\n\r\n")
            await response.headers_in(self.client.read_timeout)
        except BaseException:
            response.release(reusable=False)
            raise
        return response

    async def _acquire(self) -> _Connection:
        if self.slots.locked():
            try:
                async with asyncio.timeout(self.client.connect_timeout):
                    await self.slots.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout("no connection to the service free in time") from None
        else:
            await self.slots.acquire()
        now = asyncio.get_running_loop().time()
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed and now - connection.idle_since < KEEPALIVE_SECONDS:
                return connection
            connection.close()
        try:
            async with asyncio.timeout(self.client.connect_timeout):
                _, connection = await asyncio.get_running_loop().create_connection(
                    _Connection, self.host, self.port, ssl=self.ssl_context
                )
        except TimeoutError:
            self.slots.release()
            raise httpx.ConnectTimeout(f"no connection to {self.host}:{self.port} in time") from None
        except OSError as exc:
            self.slots.release()
            raise httpx.ConnectError(f"{self.host}:{self.port}: {exc}") from None
        except BaseException:
            self.slots.release()
            raise
        return connection

    def release(self, connection: _Connection, reusable: bool) -> None:
        if reusable and not connection.closed:
            connection.idle_since = asyncio.get_running_loop().time()
            self.idle.append(connection)
        else:
            connection.close()
        self.slots.release()

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


class _Connection(asyncio.Protocol):
    """One keep-alive connection; httptools calls the ``on_*`` methods as it parses."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.response: _Response | None = None
        self._writable: asyncio.Future[None] | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.response is None:  # bytes no request asked for: the connection is not to be trusted
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.response.fail(httpx.RemoteProtocolError(f"malformed answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.response is not None:
            self.response.lost(exc)
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # httptools
    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.response is not None
        self.response.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        assert self.response is not None
        self.response.headers_done(self.parser.get_status_code(), self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        assert self.response is not None
        self.response.body_received(body)

    def on_message_complete(self) -> None:
        assert self.response is not None
        self.response.complete()

    # used by the pool
    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise httpx.WriteError("the service closed the connection")
        self.transport.write(data)

    async def drain(self) -> None:
        if self._writable is not None:
            await self._writable
            self._writable = None
        if self.closed:
            raise httpx.WriteError("the service closed the connection")

    def pause_reading(self, paused: bool) -> None:
        if self.transport is not None and not self.closed:
            if paused:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.transport.abort()  # nothing of ours left to flush: a request is whole or void
        self.closed = True


class _Response:
    """The answer to one request on one connection, filled by the connection as bytes arrive."""

    def __init__(self, connection: _Connection, pool: _Pool, method: str) -> None:
        self.connection, self.pool, self.method = connection, pool, method
        self.status_code = 0
        self.headers: Headers = []
        self.keep_alive = False
        self.done = False  # the whole answer is in
        self.released = False
        self.error: Exception | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._until_eof = False  # no length and not chunked: the body ends when the connection does
        self._interim = False  # a 1xx answer (100 Continue) is parsed: the real one follows
        self._waiter: asyncio.Future[None] | None = None
        connection.response = self

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    # fed by the connection
    def headers_done(self, status: int, keep_alive: bool) -> None:
        if 100 <= status < 200:
            self._interim = True
            self.headers.clear()
            return
        self.status_code, self.keep_alive = status, keep_alive
        self._until_eof = self.header(b"content-length") is None and self.header(b"transfer-encoding") is None
        if self.method == "HEAD":
            # llhttp cannot be told a HEAD answer has no body: take it as whole, and do not
            # reuse the connection, whose parser would wait for the body it announced.
            self.keep_alive = False
            self.complete()
        else:
            self._wake()

    def body_received(self, data: bytes) -> None:
        if self.done:
            return
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > READ_BUFFER_BYTES and not self._paused:
            self._paused = True
            self.connection.pause_reading(True)
        self._wake()

    def complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.done = True
        self._wake()

    def fail(self, error: Exception) -> None:
        if not self.done and self.error is None:
            self.error = error
        self._wake()

    def lost(self, exc: Exception | None) -> None:
        if self.done:
            return
        if self.status_code and self._until_eof and exc is None:
            self.keep_alive = False
            self.complete()
        elif not self.status_code:
            self.fail(httpx.RemoteProtocolError(f"the service closed the connection without answering ({exc})"))
        else:
            self.fail(httpx.ReadError(f"the service closed the connection mid-answer ({exc})"))

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _wait(self, timeout: float) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._waiter
        except TimeoutError:
            raise httpx.ReadTimeout(f"no answer from the service within {timeout} s") from None
        finally:
            self._waiter = None

    # used by the pool and the forwarder
    async def headers_in(self, timeout: float) -> None:
        while not self.status_code and self.error is None:
            await self._wait(timeout)
        if self.error is not None and not self.status_code:
            raise self.error
        if self.done:
            self.release(self.keep_alive)

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        try:
            while True:
                if self._chunks:
                    chunk = self._chunks.popleft()
                    self._buffered -= len(chunk)
                    if self._paused and self._buffered <= READ_BUFFER_BYTES // 2:
                        self._paused = False
                        self.connection.pause_reading(False)
                    yield chunk
                elif self.error is not None:
                    raise self.error
                elif self.done:
                    self.release(self.keep_alive)
                    return
                else:
                    await self._wait(self.pool.client.read_timeout)
        finally:
            if not self.released:
                self.release(reusable=False)  # given up half-way (the client went away)

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_raw()])

    async def aclose(self) -> None:
        if not self.released:
            self.release(self.done and self.keep_alive and not self._chunks)

    def release(self, reusable: bool) -> None:
        if self.released:
            return
        self.released = True
        if self.connection.response is self:
            self.connection.response = None
        if self._paused:
            self.connection.pause_reading(False)
        self.pool.release(self.connection, reusable)


class HttpxClient:
    """An ``httpx.AsyncClient`` behind ``UpstreamClient``: what tests route to in-process apps."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def send(
        self, method: str, base_url: str, target: str, headers: Headers, body: bytes | AsyncIterator[bytes]
    ) -> UpstreamResponse:
        request = self.client.build_request(method, base_url.rstrip("/") + target, headers=headers, content=body)
        return _HttpxResponse(await self.client.send(request, stream=True))

    async def aclose(self) -> None:
        await self.client.aclose()


class _HttpxResponse:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.status_code = response.status_code
        self.headers: Headers = [(k.lower(), v) for k, v in response.headers.raw]

    def header(self, name: bytes) -> bytes | None:
        value = self.response.headers.get(name.decode("latin-1"))
        return None if value is None else value.encode("latin-1")

    def aiter_raw(self) -> AsyncIterator[bytes]:
        return self.response.aiter_raw()

    async def aread(self) -> bytes:
        try:
            return b"".join([chunk async for chunk in self.response.aiter_raw()])
        finally:
            await self.response.aclose()

    async def aclose(self) -> None:
        with contextlib.suppress(httpx.HTTPError):
            await self.response.aclose()
