"""Every indicator the dataset of ``dataset.py`` gives, worked out by hand from the definitions.

``expect(**figures)`` starts from all zeros (breakdown categories zero, medians and
shares null) and sets what the scope has: an ``int``/``float``/``None`` for a value,
or ``(value, {category: n})`` for a value and its non-zero categories.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.reporting.indicators.definitions import DEFINITIONS

# Charts and screenshots the output and browser tests keep for a reader to look at.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "reporting"
NULL_WHEN_EMPTY = {
    "median_days_to_contract",
    "linkage_conversion",
    "response_rate",
    "median_days_to_award",
    "delivery_quality",
    "delivery_on_time",
    "sales_change_of_network_members",
    "exports_change_of_network_members",
}


def expect(**figures: Any) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for d in DEFINITIONS:
        empty_value = None if d.key in NULL_WHEN_EMPTY else 0
        empty_category = None if d.key == "linkage_conversion" else 0
        breakdown = {c: empty_category for c in d.breakdown} if d.breakdown else None
        value: Any = empty_value
        given = figures.pop(d.key, None)
        if isinstance(given, tuple):
            value, categories = given
            assert breakdown is not None and set(categories) <= set(breakdown), d.key
            breakdown.update(categories)
        elif given is not None:
            value = given
        result[d.key] = {"value": value, "breakdown": breakdown}
    assert not figures, f"not indicators: {sorted(figures)}"
    return result


ALL_LINKAGES = dict(
    linkages_by_stage=(5, {"proposed": 1, "qualified": 1, "contracted": 1, "active": 1, "dropped": 1}),
    linkage_funnel=(5, {"proposed": 5, "contacted": 4, "qualified": 3, "contracted": 2, "active": 1, "dropped": 1}),
    linkage_conversion=(
        0.4,
        {
            "proposed_to_contacted": 0.8,
            "contacted_to_qualified": 0.75,
            "qualified_to_contracted": 0.6667,
            "contracted_to_active": 0.5,
        },
    ),
    median_days_to_contract=29.5,  # L1: 1 March to 9 April 2025 (39 days), L3: 5 to 25 March (20 days)
)

EVERYTHING = expect(
    clusters_supported=5,
    firms_registered=(10, {"micro": 2, "small": 4, "medium": 2, "large": 2}),
    jobs_in_supported_clusters=10500,
    horizontal_networks_formed=3,
    horizontal_networks_active=2,
    smes_in_horizontal_networks=5,
    vertical_networks_formed=2,
    vertical_networks_active=1,
    lead_firms_in_vertical_networks=1,
    smes_in_vertical_networks=2,
    joint_actions=(4, {"joint_purchase": 1, "joint_marketing": 1, "supplier_upgrading": 1, "shared_equipment": 1}),
    brokers_trained=3,
    brokers_certified=2,
    institutions_engaged=(3, {"training_provider": 1, "university": 1, "business_association": 1}),
    activities_held=(4, {"training": 1, "workshop": 1, "awareness_event": 1, "diffusion_event": 1}),
    people_reached=(
        118,
        {
            "entrepreneurs": 105,
            "brokers": 2,
            "policy_makers": 3,
            "private_sector_leaders": 5,
            "academics": 1,
            "other": 2,
        },
    ),
    women_reached=36,
    people_reached_by_gender=(118, {"women": 36, "others": 64, "not_recorded": 18}),
    shortlists_issued=3,
    suppliers_shortlisted=4,
    development_candidates_flagged=(4, {"certification": 3, "capacity": 1}),
    certification_gaps_named=3,
    certification_gaps_closed=2,
    **ALL_LINKAGES,
)

PROGRAMME_P1 = expect(
    clusters_supported=2,
    firms_registered=(4, {"micro": 1, "small": 2, "medium": 1}),
    jobs_in_supported_clusters=6000,
    horizontal_networks_formed=2,
    horizontal_networks_active=1,
    smes_in_horizontal_networks=3,
    vertical_networks_formed=1,
    vertical_networks_active=1,
    lead_firms_in_vertical_networks=1,
    smes_in_vertical_networks=2,
    joint_actions=(3, {"joint_purchase": 1, "joint_marketing": 1, "supplier_upgrading": 1}),
    brokers_trained=2,
    brokers_certified=1,
    institutions_engaged=(2, {"training_provider": 1, "university": 1}),
    activities_held=(2, {"training": 1, "workshop": 1}),
    people_reached=(41, {"entrepreneurs": 35, "brokers": 2, "policy_makers": 3, "academics": 1}),
    women_reached=9,  # A2 records no figure for women
    people_reached_by_gender=(41, {"women": 9, "others": 14, "not_recorded": 18}),
    shortlists_issued=2,
    suppliers_shortlisted=4,
    development_candidates_flagged=(2, {"certification": 1, "capacity": 1}),
    certification_gaps_named=1,
    certification_gaps_closed=0,  # F3's OEKO-TEX dates from before it was named
    linkages_by_stage=(4, {"proposed": 1, "contracted": 1, "active": 1, "dropped": 1}),
    linkage_funnel=(4, {"proposed": 4, "contacted": 3, "qualified": 2, "contracted": 2, "active": 1, "dropped": 1}),
    linkage_conversion=(
        0.5,
        {
            "proposed_to_contacted": 0.75,
            "contacted_to_qualified": 0.6667,
            "qualified_to_contracted": 1.0,
            "contracted_to_active": 0.5,
        },
    ),
    median_days_to_contract=29.5,
)

ECUADOR_LINKAGE = dict(
    shortlists_issued=1,
    suppliers_shortlisted=0,
    development_candidates_flagged=(2, {"certification": 2}),
    certification_gaps_named=2,
    certification_gaps_closed=2,
    linkages_by_stage=(1, {"qualified": 1}),
    linkage_funnel=(1, {"proposed": 1, "contacted": 1, "qualified": 1}),
    linkage_conversion=(
        0.0,
        {"proposed_to_contacted": 1.0, "contacted_to_qualified": 1.0, "qualified_to_contracted": 0.0},
    ),
)

COUNTRY_EC = expect(
    clusters_supported=2,
    firms_registered=(4, {"micro": 1, "small": 1, "medium": 1, "large": 1}),
    jobs_in_supported_clusters=3000,
    horizontal_networks_formed=1,
    horizontal_networks_active=1,
    smes_in_horizontal_networks=2,
    vertical_networks_formed=1,
    joint_actions=(1, {"shared_equipment": 1}),
    brokers_trained=1,
    brokers_certified=1,
    institutions_engaged=(1, {"business_association": 1}),
    activities_held=(1, {"diffusion_event": 1}),
    people_reached=(37, {"entrepreneurs": 30, "private_sector_leaders": 5, "other": 2}),
    women_reached=15,
    people_reached_by_gender=(37, {"women": 15, "others": 22}),
    **ECUADOR_LINKAGE,
)

CLUSTER_C1_LINKAGES = dict(
    shortlists_issued=2,
    suppliers_shortlisted=3,
    development_candidates_flagged=(2, {"certification": 1, "capacity": 1}),
    certification_gaps_named=1,
    linkages_by_stage=(3, {"contracted": 1, "active": 1, "dropped": 1}),
    linkage_funnel=(3, {"proposed": 3, "contacted": 3, "qualified": 2, "contracted": 2, "active": 1, "dropped": 1}),
    linkage_conversion=(
        0.6667,
        {
            "proposed_to_contacted": 1.0,
            "contacted_to_qualified": 0.6667,
            "qualified_to_contracted": 1.0,
            "contracted_to_active": 0.5,
        },
    ),
    median_days_to_contract=29.5,
)
C1_NETWORKS = dict(
    horizontal_networks_formed=1,
    horizontal_networks_active=1,
    smes_in_horizontal_networks=3,
    vertical_networks_formed=1,
    vertical_networks_active=1,
    lead_firms_in_vertical_networks=1,
    smes_in_vertical_networks=2,
    joint_actions=(3, {"joint_purchase": 1, "joint_marketing": 1, "supplier_upgrading": 1}),
)

CLUSTER_C1 = expect(
    clusters_supported=1,
    firms_registered=(3, {"micro": 1, "small": 2}),
    jobs_in_supported_clusters=4000,
    **C1_NETWORKS,
    brokers_trained=1,
    brokers_certified=1,
    institutions_engaged=(2, {"training_provider": 1, "university": 1}),
    activities_held=(1, {"training": 1}),
    people_reached=(23, {"entrepreneurs": 20, "brokers": 2, "academics": 1}),
    women_reached=9,
    people_reached_by_gender=(23, {"women": 9, "others": 14}),
    **CLUSTER_C1_LINKAGES,
)

SUBDIVISION_IN_TN = expect(  # firms, institutions and activities by their own place; networks by their cluster's
    clusters_supported=1,
    firms_registered=(4, {"micro": 1, "small": 2, "large": 1}),
    jobs_in_supported_clusters=4000,
    **C1_NETWORKS,
    brokers_trained=1,
    brokers_certified=1,
    institutions_engaged=(1, {"training_provider": 1}),
    activities_held=(1, {"training": 1}),
    people_reached=(23, {"entrepreneurs": 20, "brokers": 2, "academics": 1}),
    women_reached=9,
    people_reached_by_gender=(23, {"women": 9, "others": 14}),
    **CLUSTER_C1_LINKAGES,
)

SECTOR_14 = expect(  # clusters C1 (1430) and C4 (1410)
    clusters_supported=2,
    firms_registered=(5, {"micro": 2, "small": 3}),
    jobs_in_supported_clusters=7000,
    horizontal_networks_formed=2,
    horizontal_networks_active=2,
    smes_in_horizontal_networks=5,
    vertical_networks_formed=2,
    vertical_networks_active=1,
    lead_firms_in_vertical_networks=1,
    smes_in_vertical_networks=2,
    joint_actions=(4, {"joint_purchase": 1, "joint_marketing": 1, "supplier_upgrading": 1, "shared_equipment": 1}),
    brokers_trained=2,
    brokers_certified=2,
    institutions_engaged=(3, {"training_provider": 1, "university": 1, "business_association": 1}),
    activities_held=(2, {"training": 1, "diffusion_event": 1}),
    people_reached=(60, {"entrepreneurs": 50, "brokers": 2, "private_sector_leaders": 5, "academics": 1, "other": 2}),
    women_reached=24,
    people_reached_by_gender=(60, {"women": 24, "others": 36}),
    shortlists_issued=3,
    suppliers_shortlisted=3,
    development_candidates_flagged=(4, {"certification": 3, "capacity": 1}),
    certification_gaps_named=3,
    certification_gaps_closed=2,
    linkages_by_stage=(4, {"qualified": 1, "contracted": 1, "active": 1, "dropped": 1}),
    linkage_funnel=(4, {"proposed": 4, "contacted": 4, "qualified": 3, "contracted": 2, "active": 1, "dropped": 1}),
    linkage_conversion=(
        0.5,
        {
            "proposed_to_contacted": 1.0,
            "contacted_to_qualified": 0.75,
            "qualified_to_contracted": 0.6667,
            "contracted_to_active": 0.5,
        },
    ),
    median_days_to_contract=29.5,
)

MARCH_2025 = expect(  # from=2025-03-01 to=2025-03-31: nothing registered yet (records are created today)
    clusters_supported=3,  # C1 and C2 (P1 from January), C4 (P3 from 1 March)
    jobs_in_supported_clusters=9000,
    horizontal_networks_formed=1,
    horizontal_networks_active=2,
    smes_in_horizontal_networks=5,
    joint_actions=(1, {"joint_purchase": 1}),
    brokers_certified=1,
    linkages_by_stage=(3, {"contacted": 1, "qualified": 1, "contracted": 1}),
    linkage_funnel=(3, {"proposed": 3, "contacted": 3, "qualified": 2, "contracted": 1}),
    linkage_conversion=(
        0.3333,
        {
            "proposed_to_contacted": 1.0,
            "contacted_to_qualified": 0.6667,
            "qualified_to_contracted": 0.5,
            "contracted_to_active": 0.0,
        },
    ),
    median_days_to_contract=20,
)

UNTIL_2024 = expect(  # to=2024-12-31: only the ended Agra pilot, its activity, B3's training and N5
    clusters_supported=1,
    jobs_in_supported_clusters=1500,
    vertical_networks_formed=1,
    brokers_trained=1,
    activities_held=(1, {"awareness_event": 1}),
    people_reached=(40, {"entrepreneurs": 40}),
    women_reached=12,
    people_reached_by_gender=(40, {"women": 12, "others": 28}),
)

AGENCY_B = COUNTRY_EC  # agency B's records are exactly the Ecuadorian ones


def same(text: str, value: Any) -> bool:
    """A value as the HTML or CSV shows it (empty for null) equals the JSON value."""
    return value is None if text == "" else value is not None and float(text) == float(value)
