"""What the deployment tests share: the repository's layout and its services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PORTS = {"gateway": 8000, "registry": 8001, "matching": 8002, "reporting": 8003, "events": 8004}


def image_services() -> list[str]:
    """The services the image can run: each ``services/<name>/__main__.py``, and the gateway."""
    found = sorted(p.parent.name for p in (ROOT / "services").glob("*/__main__.py"))
    return [*found, "gateway"]


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load_all_yaml(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]
