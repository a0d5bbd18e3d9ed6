"""The feed contract: every field a follower reads is one its publisher shows."""

from __future__ import annotations

import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel, create_model

from services.common import feeds
from services.common.feeds import FeedContractError, FeedRecord, FirmRecord, read_record
from services.matching.alerts.schemas import CertificateExpiringPublic, StandardsMatchPublic
from services.matching.linkages.schemas import LinkagePublic
from services.matching.requests.schemas import RequestPublic
from services.matching.scorecards.schemas import ScorecardPublic
from services.matching.shortlists.schemas import ShortlistPublic
from services.registry.activities.schemas import ActivityPublic
from services.registry.agencies.schemas import AgencyPublic
from services.registry.brokers.schemas import BrokerPublic
from services.registry.clusters.schemas import ClusterPublic
from services.registry.duplicates.service import MergeChange
from services.registry.firm_results.schemas import FirmResultPublic
from services.registry.firms.schemas import FirmPublic
from services.registry.institutions.schemas import InstitutionPublic
from services.registry.networks.schemas import NetworkPublic
from services.registry.programmes.schemas import ProgrammePublic


class MatchingChange(BaseModel):
    """What matching's feed adds to each public record (``services.matching.publish``)."""

    owner: str
    firm_id: str | None


class ChangeAgency(BaseModel):
    """The change's own ``agency_id``, which followers add to records that name none."""

    agency_id: str | None


# Each feed record and the public schema its publisher's feed carries.
PUBLISHED: dict[type[FeedRecord], list[type[BaseModel]]] = {
    feeds.AgencyRecord: [AgencyPublic],
    feeds.ProgrammeRecord: [ProgrammePublic],
    feeds.ClusterRecord: [ClusterPublic],
    feeds.FirmRecord: [FirmPublic],
    feeds.RegisteredFirmRecord: [FirmPublic],
    feeds.InstitutionRecord: [InstitutionPublic],
    feeds.BrokerRecord: [BrokerPublic],
    feeds.NetworkRecord: [NetworkPublic],
    feeds.ActivityRecord: [ActivityPublic],
    feeds.FirmResultRecord: [FirmResultPublic],
    feeds.FirmMergeRecord: [MergeChange],
    feeds.ShortlistRecord: [ShortlistPublic, MatchingChange],
    feeds.LinkageRecord: [LinkagePublic, MatchingChange],
    feeds.RequestRecord: [RequestPublic, MatchingChange, ChangeAgency],
    feeds.ScorecardRecord: [ScorecardPublic, MatchingChange],
    feeds.StandardsMatchRecord: [StandardsMatchPublic],
    feeds.CertificateExpiringRecord: [CertificateExpiringPublic],
}


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The models inside ``annotation`` (``X``, ``X | None``, ``list[X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        return [model for argument in typing.get_args(annotation) for model in _models(argument)]
    return []


def _nullable(annotation: Any) -> bool:
    return annotation is None or type(None) in typing.get_args(annotation)


def unpublished(record: type[BaseModel], published: list[type[BaseModel]], path: str = "") -> list[str]:
    """The fields of ``record`` (nested ones too) the published models do not show as it reads them."""
    shown = {name: field for model in published for name, field in model.model_fields.items()}
    missing = []
    for name, field in record.model_fields.items():
        where = f"{path}{name}"
        if name not in shown:
            missing.append(f"{where}: not published")
            continue
        if _nullable(shown[name].annotation) and not _nullable(field.annotation):
            missing.append(f"{where}: published as nullable")
        nested, published_nested = _models(field.annotation), _models(shown[name].annotation)
        for model in nested:
            if not published_nested:
                missing.append(f"{where}: published without fields")
            else:
                missing += unpublished(model, published_nested, f"{where}.")
    return missing


@pytest.mark.parametrize("record", list(PUBLISHED), ids=lambda record: record.__name__)
def test_every_field_a_follower_reads_is_published(record: type[FeedRecord]) -> None:
    assert unpublished(record, PUBLISHED[record]) == []


def test_every_feed_record_is_checked() -> None:
    records = {
        value
        for value in vars(feeds).values()
        if isinstance(value, type) and issubclass(value, FeedRecord) and value.__module__ == feeds.__name__
    }
    nested: set[type[BaseModel]] = set()
    pending: list[type[BaseModel]] = list(PUBLISHED)
    while pending:
        inner = [model for field in pending.pop().model_fields.values() for model in _models(field.annotation)]
        pending += [model for model in inner if model not in nested]
        nested.update(inner)
    bases = {feeds.FeedRecord, feeds.RegistryRecord}
    assert records - bases - nested == set(PUBLISHED)


def test_a_renamed_field_is_caught() -> None:
    """What the check above is for: the registry renames ``size_class``, and matching's
    and reporting's records no longer fit."""
    fields: dict[str, Any] = {
        ("size_category" if name == "size_class" else name): (field.annotation, field)
        for name, field in FirmPublic.model_fields.items()
    }
    renamed = create_model("RenamedFirmPublic", **fields)
    assert unpublished(FirmRecord, [renamed]) == ["size_class: not published"]
    assert unpublished(feeds.RegisteredFirmRecord, [renamed]) == ["size_class: not published"]


def test_a_record_without_a_field_is_refused_by_name() -> None:
    firm = {"id": "frm_1", "name": "Tiruppur Knits", "roles": ["supplier"], "country": "IN"}
    with pytest.raises(FeedContractError) as refused:
        read_record(FirmRecord, firm)
    message = str(refused.value)
    assert message.startswith("FirmRecord 'frm_1' breaks the feed contract: ")
    assert "size_class: Field required" in message and "country" not in message
