"""The README's curl sessions, run against the platform as processes: a reader who
copies them gets answers, and a failing call stops the session with its problem."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.platform_processes import running_platform

ROOT = Path(__file__).resolve().parents[2]
SESSIONS = ("### A first session with curl", "### The linkage loop with curl")


def readme_block(heading: str) -> str:
    """The first ``sh`` code block after ``heading`` in the README."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(re.escape(heading) + r".*?```sh\n(.*?)```", text, re.DOTALL)
    assert found, f"no sh block after {heading!r}"
    return found.group(1)


def run_session(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # -e and pipefail: any failed call (api returns 1 on a 4xx or 5xx) ends the session.
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=180
    )


@pytest.mark.skipif(subprocess.run(["which", "jq"], capture_output=True).returncode != 0, reason="no jq")
def test_the_readme_sessions_run_as_written(tmp_path: Path) -> None:
    (tmp_path / "platform").mkdir()
    with running_platform(tmp_path / "platform") as platform:
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "admin-api-key").write_text(platform.admin_key + "\n")
        script = "\n".join(readme_block(h) for h in SESSIONS)
        script = script.replace("API=http://127.0.0.1:8000", f"API={platform.url}")
        assert f"API={platform.url}" in script
        done = run_session(script, tmp_path)
        assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        out = done.stdout
        assert '"name":"Jeans Andinos Cía. Ltda."' in out  # step 4 found the supplier
        assert '"card":' in out and '"awarded"' in out and '"contracted"' in out
        ranked = [line for line in out.splitlines() if '"performance":' in line]  # step 12
        assert any("Jeans Andinos" in line and "scorecards from 1 buyer" in line for line in ranked), ranked

        # The api helper fails loudly: an unknown id stops the session with its problem.
        helper = readme_block(SESSIONS[0]).split("ADMIN=")[0]
        failing = helper + f'ADMIN="Authorization: Bearer {platform.admin_key}"\n'
        failing += f'X=$(api {platform.url}/v1/clusters/clu_unknown -H "$ADMIN" | jq -er .id)\necho reached\n'
        stopped = run_session(failing, tmp_path)
        assert stopped.returncode != 0 and "reached" not in stopped.stdout
        assert "HTTP 404" in stopped.stderr and "application/problem+json" not in stopped.stderr
