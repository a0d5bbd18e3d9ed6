"""The short version of ``make fuzz``: schemathesis through the gateway.

The platform runs as processes on fresh PostgreSQL databases (``tests.platform_processes``);
schemathesis generates a few examples per operation in deterministic mode, so CI
repeats the same requests, and fails on any 5xx and on any answer the OpenAPI
document does not describe (``tests/schemathesis.toml``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.platform_processes import running_platform
from tests.support import POSTGRES_ENV

pytestmark = pytest.mark.fuzz
CONFIG = Path(__file__).parent.parent / "schemathesis.toml"
EXAMPLES = os.environ.get("FUZZ_CI_EXAMPLES", "2")


def test_schemathesis_finds_nothing_through_the_gateway(tmp_path: Path) -> None:
    if not os.environ.get(POSTGRES_ENV):
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"REQUIRE_POSTGRES=1 but {POSTGRES_ENV} is not set")
        pytest.skip(f"the fuzz test runs the platform on PostgreSQL: set {POSTGRES_ENV}")
    with running_platform(tmp_path) as platform:
        command = [
            str(Path(sys.executable).parent / "st"),
            "--config-file",
            str(CONFIG),
            "run",
            f"{platform.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {platform.admin_key}",
            "--max-examples",
            EXAMPLES,
            "--generation-deterministic",
            # The coverage phase enumerates every boundary whatever --max-examples says
            # (75 s here alone): make fuzz runs it; 405, 428 and limits have tests of their own.
            "--phases",
            "examples,fuzzing,stateful",
            "--workers",
            "2",
            "--no-color",
        ]
        run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-2000:]
