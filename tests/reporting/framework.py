"""A results framework for programme P1 of ``dataset.py``, built through the gateway, and the
results it must give, worked out by hand (tests of the API, the exports and the page share it)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from tests.reporting.dataset import Dataset

STATEMENT = "Empleo en los clústeres de Tiruppur y Ludhiana – más trabajo decente"
VERIFICATION = "Registro de clústeres; encuesta anual a las empresas (Señal: «cooperación»)"
# Programme P1 (agency A, from 2025-01-01): clusters C1 (4000 jobs) and C2 (2000); activities A1
# (2025-01-15: 23 people, 9 women) and A2 (2025-02-20: 18 people, women not recorded).
FRAMEWORK: list[dict[str, Any]] = [
    {
        "indicator": "people_reached",
        "level": "output",
        "statement": "Entrepreneurs and support staff trained and informed",
        "baseline": {"value": 0, "date": "2024-12-31"},
        "targets": [
            {"label": "2030", "from": "2030-01-01", "to": "2030-12-31", "value": 100},
            {"label": "2025-H1", "from": "2025-01-01", "to": "2025-06-30", "value": 50},
        ],
        "means_of_verification": "Attendance lists of each activity",
    },
    {
        "indicator": "jobs_in_supported_clusters",
        "level": "impact",
        "statement": STATEMENT,
        "baseline": {"value": 5000, "date": "2024-12-31"},
        "targets": [
            {"label": "2025", "to": "2025-12-31", "value": 7000},
            {"label": "2027", "to": "2027-12-31", "value": 8000},
        ],
        "means_of_verification": VERIFICATION,
    },
    {
        "indicator": "women_reached",
        "level": "outcome",
        "statement": "Women entrepreneurs take part in cluster development",
        "baseline": {"value": 0, "date": "2024-12-31"},
        "targets": [{"label": "2025", "from": "2025-01-01", "to": "2025-12-31", "value": 20}],
        "means_of_verification": "Attendance lists recording women participants",
    },
]


def today() -> date:
    return datetime.now(UTC).date()


def expected_periods() -> dict[str, list[dict[str, Any]]]:
    """Each framework indicator's periods, worked out by hand."""
    running = min(date(2027, 12, 31), today())
    return {
        "jobs_in_supported_clusters": [
            {"label": "2025", "target": 7000, "actual": 6000, "share_achieved": 0.5, "measured_to": "2025-12-31"},
            {"label": "2027", "target": 8000, "actual": 6000, "share_achieved": 0.3333, "measured_to": str(running)},
        ],
        "women_reached": [
            {"label": "2025", "target": 20, "actual": 9, "share_achieved": 0.45, "measured_to": "2025-12-31"},
        ],
        "people_reached": [
            {"label": "2025-H1", "target": 50, "actual": 41, "share_achieved": 0.82, "measured_to": "2025-06-30"},
            {"label": "2030", "target": 100, "actual": None, "share_achieved": None, "measured_to": None},
        ],
    }


async def build(dataset: Dataset) -> dict[str, dict[str, Any]]:
    """Agency A's framework for P1, once per module (the dataset is the module's)."""
    created = getattr(dataset, "_framework", None)
    if created is None:
        created = {}
        for body in FRAMEWORK:
            created[body["indicator"]] = await dataset.post(f"/v1/results/{dataset['P1']}/indicators", body, "A")
        dataset._framework = created  # type: ignore[attr-defined]
    return dict(created)
