"""CPU per request of each platform process on a running ``make run`` stack, and idle CPU.

Latency on a shared machine moves with its load; the CPU time each process spends per
request moves much less, and it is what bounds throughput on the two cores all the
processes share. With the stack that ``make run`` starts already running (demo data
loaded), this reads every service process's CPU time (psutil) around:

- five idle seconds (long polls and background work only);
- ``--requests`` calls of each kind: ``/livez`` and ``POST /v1/shortlists`` straight to
  matching (with a signed principal, as the gateway sends), ``POST /v1/shortlists`` and
  ``GET /v1/shortlists/{id}`` through the gateway (with the admin key ``make run``
  printed), one at a time, 10 ms apart;

and prints, per kind, the median latency and the CPU milliseconds each process spent
per request (including its share of the background work during the run). Set the
gateway's rate limit high when starting the stack (``GATEWAY_RATE_LIMIT_PER_MINUTE``,
``GATEWAY_RATE_LIMIT_BURST``), or keep ``--requests`` under its burst.

    DATA_DIR=/dev/shm/stack make run            # in one shell
    .venv/bin/python bench/stack_cpu.py --data-dir /dev/shm/stack --requests 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402

from services.common.principal import PRINCIPAL_HEADER, Principal, Role, sign_principal  # noqa: E402
from services.common.settings import DEVELOPMENT_PRINCIPAL_SECRET  # noqa: E402

SERVICES = ("registry", "matching", "reporting", "events", "gateway")
BODIES: list[dict[str, Any]] = [
    {"constraints": {"isic_codes": ["1410"]}, "limit": 10},
    {"constraints": {"countries": ["EC"]}, "limit": 20, "criteria": {"description": "textile garments"}},
    {"constraints": {"countries": ["IN"], "min_monthly_capacity": 100, "capacity_unit": "pieces"}, "limit": 10},
]


def platform_processes() -> dict[str, psutil.Process]:
    """The running ``python -m <service> serve`` processes of this tree's stack, by service
    (``make run`` starts them in the tree: other trees' services on the machine are not counted)."""
    found = {}
    for process in psutil.process_iter(["cmdline", "cwd"]):
        if process.info["cwd"] != str(ROOT):
            continue
        command = " ".join(process.info["cmdline"] or [])
        for name in SERVICES:
            module = "gateway" if name == "gateway" else f"services.{name}"
            if f"-m {module} serve" in command:
                found[name] = process
    missing = set(SERVICES) - set(found)
    if missing:
        raise SystemExit(f"not running: {', '.join(sorted(missing))} (start the stack with make run)")
    return found


def cpu_seconds(processes: dict[str, psutil.Process]) -> dict[str, float]:
    return {name: sum(process.cpu_times()[:2]) for name, process in processes.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="the stack's DATA_DIR (its admin key)")
    parser.add_argument("--requests", type=int, default=200, help="requests of each kind")
    parser.add_argument("--gateway", default="http://127.0.0.1:8000")
    parser.add_argument("--matching", default="http://127.0.0.1:8002")
    args = parser.parse_args()
    processes = platform_processes()
    key = (args.data_dir / "admin-api-key").read_text().strip()
    header = sign_principal(Principal(subject="bench", role=Role.admin), DEVELOPMENT_PRINCIPAL_SECRET, ttl_seconds=290)
    matching = httpx.Client(base_url=args.matching, headers={PRINCIPAL_HEADER: header})
    gateway = httpx.Client(base_url=args.gateway, headers={"Authorization": f"Bearer {key}"})
    print(f"load average {' '.join(f'{x:.2f}' for x in psutil.getloadavg())}")
    print("| request | p50 ms | " + " | ".join(f"{name} CPU ms" for name in SERVICES) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in SERVICES) + " |")
    before = cpu_seconds(processes)
    time.sleep(5)
    after = cpu_seconds(processes)
    idle = " | ".join(f"{(after[n] - before[n]) * 1000 / 5:.1f}/s" for n in SERVICES)
    print(f"| idle, per second | | {idle} |")
    created = matching.post("/v1/shortlists", json=BODIES[1])
    created.raise_for_status()
    kinds = (
        ("`/livez`, straight to matching", matching, "GET", "/livez"),
        ("shortlist, straight to matching", matching, "POST", "/v1/shortlists"),
        ("shortlist, through the gateway", gateway, "POST", "/v1/shortlists"),
        ("`GET /v1/shortlists/{id}`, through the gateway", gateway, "GET", f"/v1/shortlists/{created.json()['id']}"),
    )
    for label, client, method, path in kinds:
        before = cpu_seconds(processes)
        times = []
        for i in range(args.requests):
            started = time.perf_counter()
            response = client.request(method, path, json=BODIES[i % len(BODIES)] if method == "POST" else None)
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            time.sleep(0.01)
        after = cpu_seconds(processes)
        per_request = " | ".join(f"{(after[n] - before[n]) * 1000 / args.requests:.2f}" for n in SERVICES)
        print(f"| {label} | {statistics.median(times):.2f} | {per_request} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
