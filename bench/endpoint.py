"""``POST /v1/shortlists`` through the gateway, over real HTTP, next to the engine in process.

Generates N suppliers (``catalogue_gen``), builds the engine's view, and writes it as
the matching service's local store and snapshot, as a service that had followed the
registry's feed would have left them. Then it starts registry, matching and gateway
as separate uvicorn processes on 127.0.0.1 (SQLite), times the matching process from
start to ready (a restart from the snapshot), and sends the fixed query set
(``matching_queries``) as a lead firm's integration would: keep-alive HTTP with an
API key, through the gateway, and straight to matching with a signed principal. The
same queries run in process on the same view, interleaved, and every answer over HTTP
must equal the engine's (same suppliers, order and scores), else it exits with 1.

Each request is a full shortlist: validation, the query, its storage in matching's
database (SQLite here) and the response with every criterion of every supplier.
Then ``--clients`` concurrent clients (16) send shortlists through the gateway for
``--load-seconds``: shortlists per second, per core-second of the platform's processes
(registry, matching, gateway; read with psutil), and the latencies under that load.

    python bench/endpoint.py --size 1000000 [--repeat 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

import httptools  # noqa: E402
import httpx  # noqa: E402
import psutil  # noqa: E402

from bench.catalogue_gen import DEFAULT_SEED, generate  # noqa: E402
from bench.matching import percentiles  # noqa: E402
from bench.matching_queries import BUCKETS, BenchQuery, bucket_of, make_queries  # noqa: E402
from services.common.jsontext import json_bytes  # noqa: E402
from services.common.principal import PRINCIPAL_HEADER, Principal, Role, sign_principal  # noqa: E402
from services.matching.catalogue import snapshot  # noqa: E402
from services.matching.catalogue.catalogue import View, build_view, run_query  # noqa: E402
from services.matching.catalogue.lifecycle import snapshot_folder, store_path  # noqa: E402
from services.matching.catalogue.query import Query  # noqa: E402
from services.matching.catalogue.store import CatalogueStore  # noqa: E402

SECRET = "bench-endpoint-secret-" + secrets.token_hex(16)
PYTHON = sys.executable


def request_body(q: Query) -> dict[str, Any]:
    """The API request a client sends for the engine's ``Query``."""
    constraints: dict[str, Any] = {
        "isic_codes": list(q.isic_codes),
        "hs_codes": list(q.hs_codes),
        "required_certifications": list(q.required_certifications),
        "countries": list(q.countries),
        "subdivisions": list(q.subdivisions),
        "cluster_ids": list(q.cluster_ids),
        "size_classes": list(q.size_classes),
        "exclude_supplier_ids": list(q.exclude_ids),
    }
    if q.min_monthly_capacity is not None:
        constraints["min_monthly_capacity"] = q.min_monthly_capacity
    if q.capacity_unit is not None:
        constraints["capacity_unit"] = q.capacity_unit
    if q.latitude is not None and q.longitude is not None:
        constraints["near"] = {"latitude": q.latitude, "longitude": q.longitude}
    if q.max_distance_km is not None:
        constraints["max_distance_km"] = q.max_distance_km
    criteria: dict[str, Any] = {
        "preferred_certifications": list(q.preferred_certifications),
        "weights": dict(q.weights),
    }
    if q.description:
        criteria["description"] = q.description
    if q.desired_monthly_capacity is not None:
        criteria["desired_monthly_capacity"] = q.desired_monthly_capacity
    return {
        "constraints": constraints,
        "criteria": criteria,
        "limit": q.limit,
        "include_development": q.include_development,
        "development_limit": q.development_limit,
        "on_date": q.on_date.isoformat(),
    }


def write_matching_state(view: View, records: list[Any], data_dir: Path, seq: int) -> None:
    """The store (every supplier, the cursor, the schemes) and the snapshot a follower leaves."""
    store = CatalogueStore(store_path(data_dir))
    schemes = sorted({c.scheme for r in records for c in r.certificates})
    for start in range(0, len(records), 50_000):
        chunk = records[start : start + 50_000]
        store.apply([(r.id, seq, r) for r in chunk], cursor=seq, schemes=schemes if start == 0 else ())
    store.close()
    snapshot.save(snapshot_folder(data_dir), view.main, view.text, epoch=view.text.epoch, seq=seq)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


FLOOR_BODY = b'{"floor":true}'


async def floor_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The floor: a raw ASGI app answering every request with a constant JSON body, no
    framework, served by uvicorn like the services (``python -m uvicorn bench.endpoint:floor_app``)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(FLOOR_BODY)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": FLOOR_BODY})


@contextlib.contextmanager
def service(
    module: str, env: dict[str, str], log: Path, argv: tuple[str, ...] = ("serve",), cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen([PYTHON, "-m", module, *argv], env=os.environ | env, stdout=out, stderr=out, cwd=cwd)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_ready(url: str, timeout: float = 300) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return time.perf_counter() - started
        time.sleep(0.05)
    raise SystemExit(f"{url} not ready after {timeout} s")


def answer_of_api(body: dict[str, Any]) -> tuple[int, list[tuple[str, float]]]:
    return body["eligible_count"], [(i["supplier_id"], i["score"]) for i in body["items"]]


def milliseconds(samples: list[float]) -> str:
    """p50 | p95 | p99 | max, as ``bench/matching.py`` computes them."""
    p = percentiles(samples)
    return " | ".join("-" if p[k] is None else f"{p[k]:.2f}" for k in ("p50", "p95", "p99", "max"))


VISIBILITY_TIMEOUT_S = 10.0


def probe_body(unit: str) -> dict[str, Any]:
    """A shortlist of the suppliers whose capacity is counted in ``unit`` (a probe's own
    unit, so the probe firm is the only one; a new word would not do, as the text model
    learns words only when it is refitted)."""
    return {"constraints": {"min_monthly_capacity": 1, "capacity_unit": unit}, "limit": 1}


def visible_after(gateway: httpx.Client, started: float, unit: str, firm_id: str, present: bool) -> float:
    """Seconds from ``started`` until the probe shortlist of ``unit`` shows (or no longer
    shows) ``firm_id``, asking again at once after each answer."""
    while time.perf_counter() - started < VISIBILITY_TIMEOUT_S:
        response = gateway.post("/v1/shortlists", json=probe_body(unit))
        response.raise_for_status()
        items = response.json()["items"]
        if (bool(items) and items[0]["supplier_id"] == firm_id) is present:
            return time.perf_counter() - started
    raise SystemExit(f"firm {firm_id} not {'visible' if present else 'gone'} after {VISIBILITY_TIMEOUT_S} s")


def measure_visibility(gateway: httpx.Client, count: int) -> dict[str, list[float]]:
    """Create, change and delete ``count`` firms through the gateway, as an agency's
    portal would, and time each until shortlists through the gateway reflect it: the
    registry's commit, its change feed, matching's follower (a long poll), the catalogue's
    delta and the query. The clock starts when the write is sent, so it includes the
    registry's own handling of the request."""
    response = gateway.post("/v1/agencies", json={"name": "Benchmark agency", "country": "EC"})
    response.raise_for_status()
    agency_id = response.json()["id"]
    times: dict[str, list[float]] = {"created": [], "changed": [], "deleted": []}
    for index in range(count):
        unit, changed_unit = f"probe-{index}-a", f"probe-{index}-b"
        firm = {
            "agency_id": agency_id,
            "name": f"Probe Textiles {index}",
            "roles": ["supplier"],
            "size_class": "small",
            "isic_codes": ["1410"],
            "country": "EC",
            "subdivision": "EC-I",
            "latitude": 0.33,
            "longitude": -78.21,
            "monthly_capacity": 100,
            "capacity_unit": unit,
            "capabilities": "knitted garments",
        }
        started = time.perf_counter()
        response = gateway.post("/v1/firms", json=firm)
        response.raise_for_status()
        firm_id, etag = response.json()["id"], response.headers["ETag"]
        times["created"].append(visible_after(gateway, started, unit, firm_id, present=True))
        started = time.perf_counter()
        response = gateway.patch(
            f"/v1/firms/{firm_id}",
            json={"monthly_capacity": 100, "capacity_unit": changed_unit},
            headers={"If-Match": etag},
        )
        response.raise_for_status()
        etag = response.headers["ETag"]
        times["changed"].append(visible_after(gateway, started, changed_unit, firm_id, present=True))
        started = time.perf_counter()
        gateway.delete(f"/v1/firms/{firm_id}", headers={"If-Match": etag}).raise_for_status()
        times["deleted"].append(visible_after(gateway, started, changed_unit, firm_id, present=False))
    return times


def read_firm(agency_id: str, index: int) -> dict[str, Any]:
    """The ``index``-th of the firms the hot reads list and read (also ``bench/list_page.py``'s)."""
    return {
        "agency_id": agency_id,
        "name": f"Read Textiles {index}",
        "roles": ["supplier"],
        "size_class": "small",
        "isic_codes": ["1410"],
        "country": "EC",
        "subdivision": "EC-I",
        "capabilities": "knitted garments",
    }


def measure_reads(
    gateway: httpx.Client, floor: httpx.Client, count: int, baseline: tuple[str, httpx.Client] | None = None
) -> dict[str, list[float]]:
    """The other hot reads through the gateway, interleaved: a firm, a list page, and the
    floor (the raw ASGI app behind the same gateway hop, and straight to it); with
    ``baseline`` (a revision and a client of its gateway), each through that gateway too,
    the two gateways taking turns at going first."""
    response = gateway.post("/v1/agencies", json={"name": "Reads agency", "country": "EC"})
    response.raise_for_status()
    agency_id = response.json()["id"]
    firm_ids = []
    for index in range(20):
        response = gateway.post("/v1/firms", json=read_firm(agency_id, index))
        response.raise_for_status()
        firm_ids.append(response.json()["id"])
    requests: dict[str, Callable[[int], httpx.Response]] = {
        "GET /v1/firms/{id} through the gateway": lambda i: gateway.get(f"/v1/firms/{firm_ids[i % 20]}"),
        "GET /v1/firms?limit=20 through the gateway": lambda i: gateway.get("/v1/firms", params={"limit": 20}),
        "floor: raw ASGI app through the gateway": lambda i: gateway.get("/v1/indicators"),
        "floor: raw ASGI app straight": lambda i: floor.get("/"),
    }
    if baseline is not None:
        rev, old = baseline
        requests = {
            f"GET /v1/firms/{{id}} through the gateway at {rev}": lambda i: old.get(f"/v1/firms/{firm_ids[i % 20]}"),
            f"GET /v1/firms?limit=20 through the gateway at {rev}": lambda i: old.get(
                "/v1/firms", params={"limit": 20}
            ),
            f"floor: raw ASGI app through the gateway at {rev}": lambda i: old.get("/v1/indicators"),
        } | requests
    times: dict[str, list[float]] = {label: [] for label in requests}
    order = list(requests.items())
    for index in range(count + 5):
        for label, send in order if index % 2 else order[::-1]:
            t0 = time.perf_counter()
            response = send(index)
            elapsed = time.perf_counter() - t0
            if response.status_code != 200:
                raise SystemExit(f"{label}: {response.status_code} {response.text[:300]}")
            if index >= 5:  # the first few warm the connections
                times[label].append(elapsed)
    return times


async def _shortlists_under_load(
    url: str, key: str, bodies: list[dict[str, Any]], clients: int, seconds: float
) -> tuple[list[float], int]:
    """``clients`` keep-alive connections each sending shortlists back to back for ``seconds``:
    every latency, and the answers that were not 201."""
    latencies: list[float] = []
    failed = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as client:
        deadline = time.perf_counter() + seconds

        async def one_client(first: int) -> None:
            nonlocal failed
            index = first
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                response = await client.post("/v1/shortlists", json=bodies[index % len(bodies)])
                latencies.append(time.perf_counter() - t0)
                failed += response.status_code != 201
                index += clients

        await asyncio.gather(*(one_client(i) for i in range(clients)))
    return latencies, failed


class _Answers:
    """httptools' callbacks for one connection: the answer being read is complete."""

    def __init__(self) -> None:
        self.complete = False

    def on_message_complete(self) -> None:
        self.complete = True


async def _shortlists_under_lean_load(
    url: str, key: str, bodies: list[dict[str, Any]], clients: int, seconds: float
) -> tuple[list[float], int]:
    """As ``_shortlists_under_load``, with a client that costs next to nothing: requests encoded
    once, sent on raw keep-alive connections, answers parsed by httptools (uvicorn's own C
    parser). On a two-core machine a Python HTTP client's own work (about a millisecond a
    request with httpx) takes CPU the platform would use; a load generator such as wrk
    exists for that reason."""
    address = httpx.URL(url)
    host, port = address.host, address.port or 80
    requests = []
    for body in bodies:
        payload = json_bytes(body)
        head = (
            f"POST /v1/shortlists HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        requests.append(head.encode() + payload)
    latencies: list[float] = []
    failed = 0
    deadline = time.perf_counter() + seconds

    async def one_client(first: int) -> None:
        nonlocal failed
        reader, writer = await asyncio.open_connection(host, port)
        answers = _Answers()
        parser = httptools.HttpResponseParser(answers)
        index = first
        try:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                writer.write(requests[index % len(requests)])
                answers.complete = False
                while not answers.complete:
                    data = await reader.read(1 << 16)
                    if not data:
                        raise ConnectionError("the gateway closed a keep-alive connection")
                    parser.feed_data(data)
                latencies.append(time.perf_counter() - t0)
                failed += parser.get_status_code() != 201
                index += clients
        finally:
            writer.close()

    await asyncio.gather(*(one_client(i) for i in range(clients)))
    return latencies, failed


def measure_throughput(
    url: str,
    key: str,
    bodies: list[dict[str, Any]],
    pids: list[int],
    clients: int,
    seconds: float,
    *,
    lean: bool = False,
) -> dict[str, float]:
    """Shortlists per second through the gateway under ``clients`` concurrent clients, and
    per effective core: the CPU seconds the platform's processes (``pids``) spent meanwhile.
    ``lean``: the clients of ``_shortlists_under_lean_load``, not httpx."""
    processes = [psutil.Process(pid) for pid in pids]

    def cpu() -> float:
        return sum(sum(p.cpu_times()[:2]) for p in processes)

    load = _shortlists_under_lean_load if lean else _shortlists_under_load
    cpu_before, client_before, started = cpu(), time.process_time(), time.perf_counter()
    latencies, failed = asyncio.run(load(url, key, bodies, clients, seconds))
    wall = time.perf_counter() - started
    platform_cpu, client_cpu = cpu() - cpu_before, time.process_time() - client_before
    p = percentiles(latencies)
    return {
        "requests": len(latencies),
        "failed": failed,
        "per_second": len(latencies) / wall,
        "effective_cores": platform_cpu / wall,
        "per_core_second": len(latencies) / platform_cpu if platform_cpu else 0.0,
        "client_cores": client_cpu / wall,
        "p50_ms": float(p["p50"] or 0),
        "p99_ms": float(p["p99"] or 0),
    }


def run(
    size: int,
    repeat: int,
    count: int,
    seed: int,
    database_url: str | None = None,
    changes: int = 50,
    clients: int = 16,
    load_seconds: float = 20.0,
    baseline: str | None = None,
) -> int:
    print(f"== N = {size:,}: generating and building the view", flush=True)
    records = generate(size, seed)
    started = time.perf_counter()
    view = build_view(records, seq=size, epoch=1)
    print(f"   built in {time.perf_counter() - started:.1f} s; writing the store and snapshot", flush=True)
    queries: list[BenchQuery] = make_queries(count, seed)
    with tempfile.TemporaryDirectory(prefix="lk-endpoint-") as tmp:
        root = Path(tmp)
        for name in ("registry", "matching", "gateway"):
            (root / name).mkdir()
        # Feed position 0: the benchmark's registry starts empty, and its changes (the
        # visibility probes below) must follow the generated suppliers in matching's feed.
        write_matching_state(view, records, root / "matching", seq=0)
        del records
        ports = {name: free_port() for name in ("registry", "matching", "gateway", "floor", "baseline")}
        key = "lk_bench00000000_" + secrets.token_urlsafe(32)
        common = {"PRINCIPAL_SECRET": SECRET, "ENVIRONMENT": "production", "LOG_LEVEL": "WARNING"}
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        with contextlib.ExitStack() as stack:
            stack.enter_context(
                service(
                    "uvicorn",
                    {"PYTHONPATH": str(ROOT)},
                    root / "floor.log",
                    ("bench.endpoint:floor_app", "--port", str(ports["floor"]), "--log-level", "warning"),
                )
            )
            registry = stack.enter_context(
                service(
                    "services.registry",
                    common | {"DATA_DIR": str(root / "registry"), "REGISTRY_PORT": str(ports["registry"])},
                    root / "registry.log",
                )
            )
            wait_ready(urls["registry"] + "/readyz")
            matching_process = stack.enter_context(
                service(
                    "services.matching",
                    common
                    | {
                        "DATA_DIR": str(root / "matching"),
                        "MATCHING_PORT": str(ports["matching"]),
                        "MATCHING_REGISTRY_URL": urls["registry"],
                    }
                    | ({"MATCHING_DATABASE_URL": database_url} if database_url else {}),
                    root / "matching.log",
                )
            )
            restart_s = wait_ready(urls["matching"] + "/readyz")
            gateway_env = common | {
                "GATEWAY_BOOTSTRAP_API_KEY": key,
                "GATEWAY_REGISTRY_URL": urls["registry"],
                "GATEWAY_MATCHING_URL": urls["matching"],
                "GATEWAY_REPORTING_URL": urls["floor"],  # the floor, behind /v1/indicators
                "GATEWAY_EVENTS_URL": "http://127.0.0.1:9",
                "GATEWAY_RATE_LIMIT_PER_MINUTE": "100000000",
                "GATEWAY_RATE_LIMIT_BURST": "100000000",
            }
            gateway_process = stack.enter_context(
                service(
                    "gateway",
                    gateway_env | {"DATA_DIR": str(root / "gateway"), "GATEWAY_PORT": str(ports["gateway"])},
                    root / "gateway.log",
                )
            )
            wait_ready(urls["gateway"] + "/livez")
            if baseline is not None:  # the same gateway settings, the code of another revision
                old_tree = root / "baseline-tree"
                old_tree.mkdir()
                archive = subprocess.run(["git", "archive", baseline], cwd=ROOT, check=True, capture_output=True)
                subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive.stdout, check=True)
                (root / "gateway-baseline").mkdir()
                stack.enter_context(
                    service(
                        "gateway",
                        gateway_env
                        | {
                            "PYTHONPATH": str(old_tree),
                            "DATA_DIR": str(root / "gateway-baseline"),
                            "GATEWAY_PORT": str(ports["baseline"]),
                        },
                        root / "gateway-baseline.log",
                        cwd=old_tree,
                    )
                )
                wait_ready(urls["baseline"] + "/livez")
            print(f"   matching ready {restart_s:.2f} s after its start (snapshot restore); querying", flush=True)
            bench_admin = Principal(subject="bench", role=Role.admin)

            def signed(request: httpx.Request) -> None:  # as the gateway does, per request
                request.headers[PRINCIPAL_HEADER] = sign_principal(bench_admin, SECRET)

            # "inside" is the engine's own time in the matching process (the response's took_ms):
            # what the service adds around its engine is "matching" less "inside".
            times: dict[str, list[list[float]]] = {"engine": [], "inside": [], "matching": [], "gateway": []}
            if baseline is not None:
                times["baseline"] = []
            mismatches = 0
            with (
                httpx.Client(base_url=urls["gateway"], headers={"Authorization": f"Bearer {key}"}) as gateway,
                httpx.Client(base_url=urls["baseline"], headers={"Authorization": f"Bearer {key}"}) as old_gateway,
                httpx.Client(base_url=urls["matching"], event_hooks={"request": [signed]}) as matching,
            ):
                clients_of = {"matching": matching, "gateway": gateway} | (
                    {"baseline": old_gateway} if baseline is not None else {}
                )
                for q in queries[:3]:  # warm the connections and the services' first-request paths
                    for client in clients_of.values():
                        client.post("/v1/shortlists", json=request_body(q.query))
                for series in times.values():
                    series.extend([] for _ in queries)
                for _ in range(repeat):
                    for index, q in enumerate(queries):
                        body = request_body(q.query)
                        t0 = time.perf_counter()
                        expected = run_query(view, q.query)
                        times["engine"][index].append(time.perf_counter() - t0)
                        want = (expected.eligible_count, [(r.id, r.score) for r in expected.items])
                        # The gateways take turns at going first (after matching, straight).
                        gateways = [n for n in clients_of if n != "matching"]
                        for name in ["matching", *(gateways if index % 2 else gateways[::-1])]:
                            client = clients_of[name]
                            t0 = time.perf_counter()
                            response = client.post("/v1/shortlists", json=body)
                            times[name][index].append(time.perf_counter() - t0)
                            answer = response.json() if response.status_code == 201 else None
                            if name == "matching" and answer is not None:
                                times["inside"][index].append(answer["took_ms"] / 1000)
                            if answer is None or answer_of_api(answer) != want:
                                mismatches += 1
                                got = answer_of_api(answer) if answer is not None else response.text
                                print(f"   {name} {q.name}: {response.status_code} {got} != {want}"[:600])
                print("   hot reads and the floor", flush=True)
                with httpx.Client(base_url=urls["floor"]) as floor:
                    reads = measure_reads(
                        gateway,
                        floor,
                        len(queries) * repeat,
                        (baseline, old_gateway) if baseline is not None else None,
                    )
                print(f"   {clients} concurrent clients for {load_seconds:g} s through the gateway", flush=True)
                platform = [registry.pid, matching_process.pid, gateway_process.pid]
                bodies = [request_body(q.query) for q in queries]
                loads = {
                    kind: measure_throughput(
                        urls["gateway"], key, bodies, platform, clients, load_seconds, lean=kind == "lean"
                    )
                    for kind in ("httpx", "lean")
                }
                print(f"   visibility: {changes} firms created, changed and deleted in the registry", flush=True)
                visibility = measure_visibility(gateway, changes)
        labels = [bucket_of(run_query(view, q.query).eligible_count, size) for q in queries]
    print(
        f"\n### POST /v1/shortlists over HTTP, {size:,} suppliers ({len(queries)} queries x {repeat}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)\n"
    )
    print("| path | bucket | queries | p50 ms | p95 ms | p99 ms | max ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    paths = (
        ("engine", "engine in process"),
        ("inside", "engine inside matching (took_ms)"),
        ("matching", "matching over HTTP"),
        ("gateway", "through the gateway"),
        *((("baseline", f"through the gateway at {baseline}"),) if baseline is not None else ()),
    )
    for name, label in paths:
        for bucket in (*BUCKETS, "all"):
            chosen = [i for i, b in enumerate(labels) if bucket in ("all", b)]
            samples = [t for i in chosen for t in times[name][i]]
            print(f"| {label} | {bucket} | {len(chosen)} | {milliseconds(samples)} |")
    print("\nOther hot reads, and the floor, interleaved in the same run (ms):\n")
    print("| request | count | p50 | p95 | p99 | max |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, samples in reads.items():
        print(f"| {label} | {len(samples)} | {milliseconds(samples)} |")
    print(
        f"\nUnder load: {clients} concurrent clients through the gateway for {load_seconds:g} s, httpx's "
        "then lean ones (requests encoded once, answers parsed by httptools). The platform's CPU is that of "
        "registry, matching and gateway; the clients run in this process, on the same cores:\n"
    )
    print(
        "| clients | shortlists | per second | effective cores | per core-second | p50 ms | p99 ms | failed "
        "| client cores |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind, load in loads.items():
        print(
            f"| {clients} {kind} | {load['requests']:.0f} | {load['per_second']:.0f} | "
            f"{load['effective_cores']:.2f} | {load['per_core_second']:.0f} | {load['p50_ms']:.2f} | "
            f"{load['p99_ms']:.2f} | {load['failed']:.0f} | {load['client_cores']:.2f} |"
        )
    print(f"\nMatching ready {restart_s:.2f} s after its process started (restored from the snapshot).")
    print("\nA registry change visible in shortlists through the gateway (ms from the write's request):\n")
    print("| change | count | p50 | p95 | p99 | max |")
    print("| --- | --- | --- | --- | --- | --- |")
    for kind, samples in visibility.items():
        print(f"| {kind} | {len(samples)} | {milliseconds(samples)} |")
    print(
        f"| all | {sum(map(len, visibility.values()))} | {milliseconds([t for s in visibility.values() for t in s])} |"
    )
    print(f"Answers over HTTP equal to the engine's: {'all' if mismatches == 0 else f'{mismatches} differ'}")
    return 1 if mismatches or any(load["failed"] for load in loads.values()) else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--queries", type=int, default=240)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--matching-database-url", help="matching's database (fresh and empty), e.g. on PostgreSQL; SQLite by default"
    )
    parser.add_argument("--changes", type=int, default=50, help="firms created, changed and deleted to time visibility")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients of the throughput phase")
    parser.add_argument("--load-seconds", type=float, default=20.0, help="how long the throughput phase runs")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run the gateway of git revision REV beside this tree's, before the same services, and"
        " send each shortlist and hot read through both, taking turns at going first",
    )
    args = parser.parse_args()
    return run(
        args.size,
        args.repeat,
        args.queries,
        args.seed,
        args.matching_database_url,
        args.changes,
        args.clients,
        args.load_seconds,
        args.baseline,
    )


if __name__ == "__main__":
    raise SystemExit(main())
