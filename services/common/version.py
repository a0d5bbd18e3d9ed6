"""The platform's version: ``project.version`` of ``pyproject.toml``, the one place it is written.

Every service and the OpenAPI document report it. The file sits beside the packages in a
checkout and in the image (``/app``); an installed wheel reads its own metadata instead.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _platform_version() -> str:
    if PYPROJECT.is_file():
        with PYPROJECT.open("rb") as file:
            return str(tomllib.load(file)["project"]["version"])
    return version("linkages")


VERSION = _platform_version()
