"""A programme's results in the logframe layout, and as IATI 2.03 results XML.

Logframe: one row per framework indicator (impact, outcome, output), with its
baseline, then for each period (the targets' labels, by their last day) the
target, the actual and the share achieved. The same table is served as CSV and
XLSX.

IATI: one ``iati-activity`` for the programme, one ``result`` per framework
indicator (result type 1 output, 2 outcome, 3 impact; the statement as its title),
with its ``indicator``: the indicator's key as a reference of vocabulary 99 (the
reporting organisation's), the baseline, and a ``period`` per target with its
target and actual. Shares are reported as percentages (measure 2), everything
else as units (measure 1); an indicator is ascending unless a target lies below
its baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from xml.etree import ElementTree as ET

from services.reporting.results.schemas import IndicatorResults, ResultsPublic

LOGFRAME_COLUMNS = (
    "level",
    "statement",
    "indicator",
    "label",
    "unit",
    "means_of_verification",
    "baseline",
    "baseline_date",
)
RESULT_TYPES = {"output": "1", "outcome": "2", "impact": "3"}
IATI_VERSION = "2.03"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def period_labels(indicators: Sequence[IndicatorResults]) -> list[str]:
    """Every target's label once, by the last day of its period (then by label)."""
    ends: dict[str, date] = {}
    for indicator in indicators:
        for period in indicator.periods:
            ends[period.label] = min(ends.get(period.label, period.end), period.end)
    return sorted(ends, key=lambda label: (ends[label], label))


def logframe_table(body: ResultsPublic) -> tuple[list[str], list[list[Any]]]:
    labels = period_labels(body.indicators)
    header = list(LOGFRAME_COLUMNS)
    for label in labels:
        header += [f"target {label}", f"actual {label}", f"achieved {label}"]
    rows: list[list[Any]] = []
    for indicator in body.indicators:
        row: list[Any] = [
            indicator.level.value,
            indicator.statement,
            indicator.indicator,
            indicator.label,
            indicator.unit,
            indicator.means_of_verification,
            indicator.baseline.value,
            indicator.baseline.date,
        ]
        by_label = {p.label: p for p in indicator.periods}
        for label in labels:
            period = by_label.get(label)
            row += [None, None, None] if period is None else [period.target, period.actual, period.share_achieved]
        rows.append(row)
    return header, rows


def _number(value: float | int, unit: str) -> str:
    value = float(value) * 100 if unit == "share" else float(value)
    return str(int(value)) if value.is_integer() else f"{value:.4f}".rstrip("0")


def _narrative(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    ET.SubElement(element, "narrative").text = text
    return element


def iati_xml(body: ResultsPublic, agency_name: str, org_ref: str, org_type: str, today: date) -> bytes:
    """The programme as one IATI 2.03 activity carrying its results framework."""
    programme = body.programme
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    root = ET.Element("iati-activities", {"version": IATI_VERSION, "generated-datetime": now})
    activity = ET.SubElement(root, "iati-activity", {XML_LANG: "en", "last-updated-datetime": now})
    ET.SubElement(activity, "iati-identifier").text = f"{org_ref}-{programme.id}"
    _narrative(activity, "reporting-org", agency_name).attrib.update({"ref": org_ref, "type": org_type})
    _narrative(activity, "title", programme.name)
    description = _narrative(activity, "description", f"Cluster development programme {programme.name}")
    description.set("type", "1")
    _narrative(activity, "participating-org", agency_name).attrib.update({"ref": org_ref, "role": "4"})
    ended = programme.end_date is not None and programme.end_date < today
    ET.SubElement(activity, "activity-status", {"code": "4" if ended else "2"})
    ET.SubElement(activity, "activity-date", {"type": "2", "iso-date": programme.start_date.isoformat()})
    if programme.end_date is not None:
        ET.SubElement(
            activity, "activity-date", {"type": "4" if ended else "3", "iso-date": programme.end_date.isoformat()}
        )
    ET.SubElement(activity, "recipient-country", {"code": programme.country, "percentage": "100"})
    for item in body.indicators:
        result = ET.SubElement(activity, "result", {"type": RESULT_TYPES[item.level.value], "aggregation-status": "0"})
        _narrative(result, "title", item.statement)
        measure = "2" if item.unit == "share" else "1"
        falling = any(p.target < item.baseline.value for p in item.periods)  # e.g. fewer days to a contract
        indicator = ET.SubElement(result, "indicator", {"measure": measure, "ascending": "0" if falling else "1"})
        _narrative(indicator, "title", item.label)
        _narrative(indicator, "description", f"Means of verification: {item.means_of_verification}")
        ET.SubElement(indicator, "reference", {"vocabulary": "99", "code": item.indicator})
        ET.SubElement(
            indicator,
            "baseline",
            {
                "year": str(item.baseline.date.year),
                "iso-date": item.baseline.date.isoformat(),
                "value": _number(item.baseline.value, item.unit),
            },
        )
        for period in item.periods:
            element = ET.SubElement(indicator, "period")
            start = period.start if period.start is not None else programme.start_date  # cumulative: since the start
            ET.SubElement(element, "period-start", {"iso-date": min(start, period.end).isoformat()})
            ET.SubElement(element, "period-end", {"iso-date": period.end.isoformat()})
            ET.SubElement(element, "target", {"value": _number(period.target, item.unit)})
            if period.actual is not None:
                actual = ET.SubElement(element, "actual", {"value": _number(period.actual, item.unit)})
                if period.measured_to is not None and period.measured_to < period.end:
                    _narrative(actual, "comment", f"Measured to {period.measured_to.isoformat()}")
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
