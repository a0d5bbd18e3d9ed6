"""Every indicator, defined once: what is counted, from which records, on which date.

This table is the documentation: ``GET /v1/indicators/definitions`` serves it, the
dashboard shows it and the table in docs/reporting.md is rendered from it (a test
keeps them equal). The SQL that computes each indicator is in ``service.py``, keyed the same.

Periods: a period is ``from``..``to`` (both days included, UTC; ``from`` open when
absent, ``to`` today when absent). A *flow* counts what happened in the period; a
*stock* counts what stands at the period's last day; a *cohort* follows the
linkages proposed in the period up to its last day. Requests are in scope through
the buyer's agency and their invited suppliers, scorecards through their supplier
(``scope.py``). In series, each month or
quarter is a period of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    stock = "stock"
    flow = "flow"
    cohort = "cohort"


SIZE_CLASSES = ("micro", "small", "medium", "large")
SMALL_AND_MEDIUM = ("micro", "small", "medium")
JOINT_ACTION_KINDS = (
    "joint_purchase",
    "joint_marketing",
    "shared_equipment",
    "training",
    "supplier_upgrading",
    "joint_production",
    "quality_improvement",
    "other",
)
INSTITUTION_KINDS = (
    "training_provider",
    "business_development_services",
    "business_association",
    "university",
    "centre_of_excellence",
    "local_government",
    "ngo",
    "financial_institution",
    "other",
)
ACTIVITY_KINDS = (
    "training",
    "awareness_event",
    "diffusion_event",
    "workshop",
    "exposure_visit",
    "trade_fair",
    "policy_dialogue",
    "other",
)
# A firm indicator's ownership split (overlapping: a firm attested women-owned and youth-led
# counts in both; other: claims recorded, none attested; not_recorded: no claim recorded).
OWNERSHIP = ("women_owned", "women_led", "youth_led", "other", "not_recorded")
GENDER_GROUPS = ("women", "others", "not_recorded")  # activities record how many women took part, if known
PEOPLE_GROUPS = ("entrepreneurs", "brokers", "policy_makers", "private_sector_leaders", "academics", "other")
FUNNEL_STAGES = ("proposed", "contacted", "qualified", "contracted", "active")
STAGES = (*FUNNEL_STAGES, "dropped")
CONVERSIONS = tuple(f"{a}_to_{b}" for a, b in zip(FUNNEL_STAGES, FUNNEL_STAGES[1:], strict=False))
GAP_KINDS = ("certification", "capacity")
LISTED_AS = ("ranked", "development")  # an invited supplier: ranked in the shortlist, or a development candidate
SUBMITTED_BY = ("supplier", "on_behalf")  # an answer: by the supplier's own key, or by its broker or agency
# Firms with a baseline and a current figure (see FIRM_OUTCOME_RECORDS), by the way the figure moved.
OUTCOME_FIRMS = ("reporting", "grew", "unchanged", "shrank")


@dataclass(frozen=True)
class Definition:
    key: str
    label: str
    section: str
    unit: str  # clusters, firms, jobs, networks, people, ... or "share" / "days"
    kind: Kind
    counts: str  # what is counted
    source: str  # from which records
    date: str  # which date places a record in a period
    breakdown: tuple[str, ...] = ()  # the categories of the breakdown, when there is one
    breakdown_by: str | None = None
    breakdown_unit: str | None = None  # when the categories count other things than the value (default: unit)


CLUSTERS = "Clusters and firms"
NETWORKS = "Networks"
SUPPORT = "Brokers and institutions"
ACTIVITIES = "Activities"
LINKAGES = "Linkages"
REQUESTS = "Requests and delivery"
OUTCOMES = "Firm outcomes"

SUPPORT_PERIOD = (
    "from its programme's start_date (the day the cluster was registered when it has no programme) "
    "to the programme's end_date (open when none); counted when that overlaps the period"
)

# How a firm's baseline and current figure are chosen from its firm results (registry
# /v1/firm-results), for each measure on its own: stated once, used by every outcome.
FIRM_OUTCOME_RECORDS = (
    "a firm's baseline is its earliest firm result recording the figure (earliest period end; a year before "
    "a quarter ending the same day); its current figure is from its latest result recording it whose period "
    "ends on or before the period's last day, is as long as the baseline's (a year after a year, a quarter "
    "after a quarter) and starts after the baseline's ends; a firm with both reports the figure (sales and "
    "exports: only when both are in one currency)"
)
OUTCOME_BREAKDOWN = "firms: reporting, and how many of them grew, stayed unchanged or shrank"

DEFINITIONS: tuple[Definition, ...] = (
    Definition(
        "clusters_supported",
        "Clusters supported",
        CLUSTERS,
        "clusters",
        Kind.stock,
        "Clusters in scope whose support overlaps the period.",
        "registry clusters, their programmes",
        f"support runs {SUPPORT_PERIOD}",
    ),
    Definition(
        "firms_registered",
        "Firms registered",
        CLUSTERS,
        "firms",
        Kind.stock,
        "Firms in scope registered on or before the period's last day, by size class.",
        "registry firms",
        "the day the firm record was created",
        SIZE_CLASSES,
        "size_class",
    ),
    Definition(
        "jobs_in_supported_clusters",
        "Jobs in supported clusters",
        CLUSTERS,
        "jobs",
        Kind.stock,
        "Sum of the clusters' jobs figure over the clusters counted by clusters_supported (missing: 0).",
        "registry clusters",
        "as clusters_supported",
    ),
    Definition(
        "horizontal_networks_formed",
        "Horizontal networks formed",
        NETWORKS,
        "networks",
        Kind.flow,
        "Horizontal networks in scope formed in the period, whatever their status now.",
        "registry networks (kind horizontal)",
        "formed_on; the day the record was created when absent",
    ),
    Definition(
        "horizontal_networks_active",
        "Horizontal networks active",
        NETWORKS,
        "networks",
        Kind.stock,
        "Horizontal networks in scope with status active, formed on or before the period's last day.",
        "registry networks (kind horizontal, status active: the current status)",
        "formed_on; the day the record was created when absent",
    ),
    Definition(
        "smes_in_horizontal_networks",
        "SMEs in active horizontal networks",
        NETWORKS,
        "firms",
        Kind.stock,
        "Distinct member firms of size micro, small or medium of the networks counted by horizontal_networks_active.",
        "registry networks (members), firms (size_class)",
        "as horizontal_networks_active",
    ),
    Definition(
        "vertical_networks_formed",
        "Vertical networks formed",
        NETWORKS,
        "networks",
        Kind.flow,
        "Vertical networks in scope formed in the period, whatever their status now.",
        "registry networks (kind vertical)",
        "formed_on; the day the record was created when absent",
    ),
    Definition(
        "vertical_networks_active",
        "Vertical networks active",
        NETWORKS,
        "networks",
        Kind.stock,
        "Vertical networks in scope with status active, formed on or before the period's last day.",
        "registry networks (kind vertical, status active: the current status)",
        "formed_on; the day the record was created when absent",
    ),
    Definition(
        "lead_firms_in_vertical_networks",
        "Lead firms in active vertical networks",
        NETWORKS,
        "firms",
        Kind.stock,
        "Distinct members with role lead_firm of the networks counted by vertical_networks_active.",
        "registry networks (members)",
        "as vertical_networks_active",
    ),
    Definition(
        "smes_in_vertical_networks",
        "SMEs in active vertical networks",
        NETWORKS,
        "firms",
        Kind.stock,
        "Distinct members with role supplier and size micro, small or medium of the networks counted by "
        "vertical_networks_active.",
        "registry networks (members), firms (size_class)",
        "as vertical_networks_active",
    ),
    Definition(
        "joint_actions",
        "Joint actions",
        NETWORKS,
        "actions",
        Kind.flow,
        "Joint actions of networks in scope started in the period, by kind.",
        "registry networks (joint_actions)",
        "the action's started_on; the network's formation day when absent",
        JOINT_ACTION_KINDS,
        "kind",
    ),
    Definition(
        "brokers_trained",
        "Brokers trained",
        SUPPORT,
        "brokers",
        Kind.flow,
        "Brokers (cluster development agents) in scope who completed training in the period.",
        "registry brokers",
        "trained_on",
    ),
    Definition(
        "brokers_certified",
        "Brokers certified",
        SUPPORT,
        "brokers",
        Kind.flow,
        "Brokers in scope certified in the period.",
        "registry brokers",
        "certified_on",
    ),
    Definition(
        "institutions_engaged",
        "Institutions engaged",
        SUPPORT,
        "institutions",
        Kind.stock,
        "Institutions in scope that support at least one cluster, registered on or before the period's "
        "last day, by kind.",
        "registry institutions (cluster_ids)",
        "the day the record was created",
        INSTITUTION_KINDS,
        "kind",
    ),
    Definition(
        "activities_held",
        "Activities held",
        ACTIVITIES,
        "activities",
        Kind.flow,
        "Activities in scope that started in the period, by kind.",
        "registry activities",
        "start_date",
        ACTIVITY_KINDS,
        "kind",
    ),
    Definition(
        "people_reached",
        "People reached",
        ACTIVITIES,
        "people",
        Kind.flow,
        "Participants of the activities counted by activities_held, by group (a person at two activities "
        "counts twice).",
        "registry activities (participants)",
        "start_date",
        PEOPLE_GROUPS,
        "group",
    ),
    Definition(
        "women_reached",
        "Women reached",
        ACTIVITIES,
        "people",
        Kind.flow,
        "Women among the participants of the activities counted by activities_held, as each activity "
        "records them (an activity that records no figure adds nothing; a woman at two activities counts twice).",
        "registry activities (women_participants)",
        "start_date",
    ),
    Definition(
        "people_reached_by_gender",
        "People reached by gender",
        ACTIVITIES,
        "people",
        Kind.flow,
        "The participants counted by people_reached (the value), by gender: women; others (the other "
        "participants of activities that record how many women took part); not_recorded (every participant "
        "of activities that record no figure for women).",
        "registry activities (participants, women_participants)",
        "start_date",
        GENDER_GROUPS,
        "gender",
    ),
    Definition(
        "shortlists_issued",
        "Shortlists issued",
        LINKAGES,
        "shortlists",
        Kind.flow,
        "Shortlists issued in the period that list at least one supplier in scope (every shortlist when "
        "nothing is filtered).",
        "matching shortlists",
        "the day the shortlist was issued (UTC)",
    ),
    Definition(
        "suppliers_shortlisted",
        "Suppliers shortlisted",
        LINKAGES,
        "firms",
        Kind.flow,
        "Distinct suppliers in scope ranked in (items of) the shortlists issued in the period.",
        "matching shortlists (items), registry firms",
        "the day the shortlist was issued",
    ),
    Definition(
        "linkages_by_stage",
        "Linkages by stage",
        LINKAGES,
        "linkages",
        Kind.stock,
        "Linkages with a supplier in scope proposed on or before the period's last day, by the stage they "
        "were at on that day (the last history entry dated on or before it).",
        "matching linkages (history)",
        "the dates of the stage history",
        STAGES,
        "stage",
    ),
    Definition(
        "linkage_funnel",
        "Linkage funnel",
        LINKAGES,
        "linkages",
        Kind.cohort,
        "Linkages with a supplier in scope proposed in the period (the value), and how many of them reached "
        "each stage, or a later one, by the period's last day (a skipped stage counts as passed; dropped: "
        "dropped by then).",
        "matching linkages (history)",
        "proposed: the first history entry",
        STAGES,
        "stage",
    ),
    Definition(
        "linkage_conversion",
        "Conversion between stages",
        LINKAGES,
        "share",
        Kind.cohort,
        "For each step of the funnel, the share of the linkages that reached a stage which also reached the "
        "next one (null when none reached the stage); the value is proposed to contracted.",
        "as linkage_funnel",
        "as linkage_funnel",
        CONVERSIONS,
        "step",
    ),
    Definition(
        "median_days_to_contract",
        "Median days from shortlist to contract",
        LINKAGES,
        "days",
        Kind.cohort,
        "Median, over the linkages of linkage_funnel that reached contracted (or active) by the period's "
        "last day, of the days from the supplier's proposal off the shortlist (the first history entry) to "
        "the first contracted or active entry; null when none.",
        "matching linkages (history)",
        "as linkage_funnel",
    ),
    Definition(
        "consortium_shortlists_issued",
        "Consortium shortlists issued",
        LINKAGES,
        "shortlists",
        Kind.flow,
        "Shortlists issued in the period whose consortia list at least one network in scope (ranked or as a "
        "development candidate): horizontal networks offered to a buyer as one supplier.",
        "matching shortlists (consortia)",
        "the day the shortlist was issued (UTC)",
    ),
    Definition(
        "network_linkages_by_stage",
        "Linkages with a network as the supplier",
        LINKAGES,
        "linkages",
        Kind.stock,
        "Linkages whose supplier is a network in scope (a consortium), proposed on or before the period's last "
        "day, by the stage they were at on that day, as linkages_by_stage (which counts them too).",
        "matching linkages (history, supplier kind)",
        "the dates of the stage history",
        STAGES,
        "stage",
    ),
    Definition(
        "smes_reached_through_consortia",
        "SMEs reached through consortia",
        LINKAGES,
        "firms",
        Kind.stock,
        "Distinct micro, small and medium member firms of the networks in the linkages of "
        "network_linkages_by_stage not dropped on the period's last day: the members the linkage names (those "
        "the shortlist counted, or those awarded a part by a request).",
        "matching linkages (members), registry firms (size class)",
        "as network_linkages_by_stage",
    ),
    Definition(
        "development_candidates_flagged",
        "Development candidates flagged",
        LINKAGES,
        "firms",
        Kind.flow,
        "Distinct suppliers in scope listed as development candidates (one upgradeable gap) in the shortlists "
        "issued in the period, by the kind of gap.",
        "matching shortlists (development), registry firms",
        "the day the shortlist was issued",
        GAP_KINDS,
        "gap",
    ),
    Definition(
        "certification_gaps_named",
        "Certification gaps named",
        LINKAGES,
        "gaps",
        Kind.flow,
        "Distinct (supplier, scheme) pairs named as a missing certification of a development candidate in the "
        "shortlists issued in the period.",
        "matching shortlists (development gaps)",
        "the day the shortlist was issued",
    ),
    Definition(
        "certification_gaps_closed",
        "Certification gaps closed",
        LINKAGES,
        "gaps",
        Kind.flow,
        "Of the pairs counted by certification_gaps_named, those whose supplier obtained a certificate of "
        "that scheme on or after the first day it was named in the period and on or before the period's "
        "last day.",
        "matching shortlists, registry firms (certifications)",
        "the certificate's valid_from; the day the registry first recorded it when absent",
    ),
    Definition(
        "requests_issued",
        "Requests for quotation issued",
        REQUESTS,
        "requests",
        Kind.flow,
        "Buyers' requests for quotation opened (sent to the invited suppliers) in the period that invite at "
        "least one supplier in scope, whatever their status now; drafts never opened are not counted.",
        "matching requests (status history)",
        "the first open entry of the request's history (UTC)",
    ),
    Definition(
        "invitations_sent",
        "Invitations sent",
        REQUESTS,
        "invitations",
        Kind.flow,
        "Invitations of suppliers in scope to the requests opened in the period, by whether the supplier was "
        "ranked in the shortlist or a development candidate.",
        "matching requests (invitations)",
        "as requests_issued",
        LISTED_AS,
        "listed_as",
    ),
    Definition(
        "response_rate",
        "Response rate",
        REQUESTS,
        "share",
        Kind.flow,
        "Of the invitations of suppliers in scope to the requests whose answers closed in the period, the "
        "share answered (a bid or a no-bid); null when none. Cancelled requests are left out.",
        "matching requests (invitations, answers)",
        "the day answers closed: the request's last close entry, or its respond_by deadline while it is "
        "still shown open (the next write records the close)",
    ),
    Definition(
        "bids_received",
        "Bids received",
        REQUESTS,
        "bids",
        Kind.flow,
        "Bids (not no-bids) of suppliers in scope submitted in the period, by who submitted them: the "
        "supplier itself, or its broker or agency on its behalf.",
        "matching requests (invitations, answers)",
        "the time of the answer's latest version (UTC)",
        SUBMITTED_BY,
        "submitted_by",
    ),
    Definition(
        "requests_awarded",
        "Requests awarded",
        REQUESTS,
        "requests",
        Kind.flow,
        "Requests awarded in the period (to one or more bidders) that invite at least one supplier in scope.",
        "matching requests (status history)",
        "the award entry of the request's history (UTC)",
    ),
    Definition(
        "median_days_to_award",
        "Median days from request to award",
        REQUESTS,
        "days",
        Kind.flow,
        "Median, over the requests counted by requests_awarded, of the days from the request's opening to "
        "its award; null when none.",
        "matching requests (status history)",
        "as requests_awarded",
    ),
    Definition(
        "development_candidates_awarded",
        "Awards to development candidates",
        REQUESTS,
        "firms",
        Kind.flow,
        "Awarded invitations of suppliers in scope invited as development candidates (one upgradeable gap), "
        "in the requests counted by requests_awarded.",
        "matching requests (invitations)",
        "as requests_awarded",
    ),
    Definition(
        "scorecards_counted",
        "Delivery scorecards counted",
        REQUESTS,
        "scorecards",
        Kind.flow,
        "Delivery and period scorecards of linked suppliers in scope observed in the period that count now "
        "(settled, or upheld on appeal; not under appeal or voided).",
        "matching scorecards",
        "observed_on: the delivery day, or the last day of the period scored",
    ),
    Definition(
        "delivery_quality",
        "Delivery quality",
        REQUESTS,
        "share",
        Kind.flow,
        "Mean quality (the accepted share of a delivery, or a period's quality figure) of the scorecards "
        "counted by scorecards_counted; null when none.",
        "matching scorecards",
        "as scorecards_counted",
    ),
    Definition(
        "delivery_on_time",
        "Deliveries on time",
        REQUESTS,
        "share",
        Kind.flow,
        "Mean on-time figure (1 or 0 for a delivery, a period's on-time share) of the scorecards counted by "
        "scorecards_counted; null when none.",
        "matching scorecards",
        "as scorecards_counted",
    ),
    Definition(
        "jobs_created_in_supported_clusters",
        "Jobs created in supported clusters",
        OUTCOMES,
        "jobs",
        Kind.stock,
        "Sum, over the firms in scope attached to a cluster counted by clusters_supported that report "
        "employees, of current minus baseline employees (negative: jobs lost); "
        f"{OUTCOME_BREAKDOWN}.",
        "registry firm results (employees), firms (cluster_ids), clusters",
        FIRM_OUTCOME_RECORDS,
        OUTCOME_FIRMS,
        "firms",
        "firms",
    ),
    Definition(
        "sales_change_of_network_members",
        "Change in sales of network members",
        OUTCOMES,
        "share",
        Kind.stock,
        "Median, over the member firms of networks in scope formed on or before the period's last day that "
        "report sales with a baseline above 0, of each firm's relative change (current / baseline - 1; "
        f"0.25 is +25 %); null when none; {OUTCOME_BREAKDOWN} (a baseline of 0 counts there only).",
        "registry firm results (sales, currency), networks (members)",
        FIRM_OUTCOME_RECORDS,
        OUTCOME_FIRMS,
        "firms",
        "firms",
    ),
    Definition(
        "exports_change_of_network_members",
        "Change in exports of network members",
        OUTCOMES,
        "share",
        Kind.stock,
        "As sales_change_of_network_members, for exports: the median relative change of the members "
        f"exporting at their baseline; null when none; {OUTCOME_BREAKDOWN} (firms that began to export "
        "count as grew).",
        "registry firm results (exports, currency), networks (members)",
        FIRM_OUTCOME_RECORDS,
        OUTCOME_FIRMS,
        "firms",
        "firms",
    ),
)

BY_KEY = {d.key: d for d in DEFINITIONS}
# The indicators that count firms: each is also split by size class and by ownership.
FIRM_INDICATORS = frozenset(
    {
        "firms_registered",
        "smes_in_horizontal_networks",
        "lead_firms_in_vertical_networks",
        "smes_in_vertical_networks",
        "suppliers_shortlisted",
        "smes_reached_through_consortia",
        "development_candidates_flagged",
    }
)
FIRM_SPLITS: dict[str, list[str]] = {"size_class": list(SIZE_CLASSES), "ownership": list(OWNERSHIP)}
SECTIONS = tuple(dict.fromkeys(d.section for d in DEFINITIONS))


def markdown_table() -> str:
    """The definitions as the Markdown table of docs/reporting.md."""
    lines = [
        "| indicator | kind | what is counted | from | date used | breakdown |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for d in DEFINITIONS:
        breakdown = f"{d.breakdown_by}: {', '.join(d.breakdown)}" if d.breakdown else "–"
        if d.key in FIRM_INDICATORS:
            split = "split by size class and ownership"
            breakdown = f"{breakdown}; {split}" if d.breakdown else split
        lines.append(f"| `{d.key}` {d.label} | {d.kind} | {d.counts} | {d.source} | {d.date} | {breakdown} |")
    return "\n".join(lines)
