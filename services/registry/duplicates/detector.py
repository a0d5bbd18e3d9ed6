"""The duplicate detector: firm profiles, blocking keys and scored, explained pairs.

Pure functions, no database: the registry uses them online (on every create and
import batch, with blocking keys stored in ``firm_match_keys``) and the benchmarks
use them offline on millions of records (``candidate_pairs``). Both paths share
``profile``, ``blocking_keys`` and ``score_pairs``, so the quality measured by
``make bench`` is the quality of the service.

Names are normalised before anything else: transliterated to ASCII (unidecode),
lower-cased, punctuation removed, trailing legal forms recognised and set aside
("Pvt. Ltd." = "Private Limited", "Cía. Ltda." = "Compañía Limitada"), common
abbreviations expanded ("Intl", "Mfg", "Inds") and filler words dropped. Each
name token also gets a *skeleton*, a coarse phonetic key that forgets the
spelling variants transliteration produces (Shri/Shree/Sri, Lakshmi/Laxmi,
Vinayak/Winayak) and doubled letters and vowels (most typos).

A pair's score is a log-odds sum in the Fellegi-Sunter manner: each piece of
evidence (name similarity, national ids, distance, street, postal code,
locality, sector, legal form) adds or subtracts a documented weight, missing
data adds nothing, and ``score = 1 / (1 + exp(-sum))``. Every non-zero term is
returned as a reason, so a reviewer sees why two firms were paired.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, Indel, Levenshtein
from unidecode import unidecode

from services.common.geo import distance_km, haversine_km

# A pair is a likely duplicate (review queue) from this score on.
THRESHOLD = 0.5
# Blocks (firms sharing one key) larger than this are not compared: such keys are
# too common to mean anything (every "Shree Ganesh" of a state).
MAX_BLOCK = 20
INTERCEPT = -5.0
SAME_ID = 12.0  # one legal entity: outweighs even an unrelated name (a rename, a typing error) on its own
KEY_LENGTH = 100

_NON_ALNUM = re.compile(r"[^a-z0-9]+")

# Legal forms, as token sequences after normalisation, and their canonical form.
# Families group forms that may stand for each other ("ltd" and "pvt ltd").
_LEGAL_FORMS: dict[str, tuple[str, str]] = {}
for canonical, family, variants in (
    ("pvt ltd", "ltd", "private limited|pvt ltd|pvt limited|private ltd|p ltd|pvt|pte ltd|private"),
    ("ltd", "ltd", "limited|ltd|ltd co|limited company|co ltd|company limited"),
    ("llp", "llp", "llp|limited liability partnership"),
    ("llc", "llc", "llc|l l c|limited liability company"),
    ("inc", "inc", "inc|incorporated"),
    ("corp", "inc", "corp|corporation|corpn"),
    ("plc", "plc", "plc|public limited company"),
    ("gmbh", "gmbh", "gmbh|gesellschaft mit beschrankter haftung"),
    ("sa", "sa", "sa|s a|sociedad anonima|societe anonyme"),
    ("sas", "sas", "sas|s a s|sociedad por acciones simplificada"),
    ("cia ltda", "ltda", "cia ltda|compania limitada|cia ltd|c ltda|ltda|cia|compania ltda"),
    ("srl", "srl", "srl|s r l|s de rl|s de r l|sociedad de responsabilidad limitada|sarl"),
    ("co", "co", "co|company|and co|and company|and sons|sons"),
    ("ep", "ep", "ep|empresa publica"),
    ("coop", "coop", "coop|co op|cooperative|cooperativa|cooperativa ltda"),
    ("huf", "huf", "huf|hindu undivided family"),
    ("opc", "opc", "opc|opc pvt ltd|one person company"),
):
    for variant in variants.split("|"):
        _LEGAL_FORMS[variant] = (canonical, family)
_LEGAL_MAX_TOKENS = max(len(v.split()) for v in _LEGAL_FORMS)
_LEGAL_VARIANTS = sorted(v for v in _LEGAL_FORMS if len(v) >= 5)
_LEGAL_FIRST_WORDS = frozenset(v.split()[0] for v in _LEGAL_FORMS if " " in v)
_LEGAL_LAST_WORDS = frozenset(v.split()[-1] for v in _LEGAL_FORMS if " " in v)

_ABBREVIATIONS = {
    "intl": "international",
    "int": "international",
    "mfg": "manufacturing",
    "mfrs": "manufacturers",
    "mfr": "manufacturer",
    "inds": "industries",
    "ind": "industries",
    "indus": "industries",
    "bros": "brothers",
    "engg": "engineering",
    "eng": "engineering",
    "expo": "exports",
    "exp": "exports",
    "tex": "textiles",
    "txt": "textiles",
    "ent": "enterprises",
    "entp": "enterprises",
    "assoc": "associates",
    "mkt": "marketing",
    "dist": "distributors",
    "natl": "national",
    "nac": "nacional",
    "ind.": "industries",
    "st": "saint",
    "sta": "santa",
    "sto": "santo",
}
_FILLER = frozenset("and y e et und the of de del la las los el da do dos das di du le m s ms mess".split())
_STREET_WORDS = {
    "av": "avenida",
    "avda": "avenida",
    "ave": "avenue",
    "st": "street",
    "rd": "road",
    "calle": "",
    "c": "",
    "no": "",
    "nr": "",
    "n": "",
    "num": "",
    "ln": "lane",
    "dr": "drive",
    "blvd": "boulevard",
    "pl": "place",
    "sq": "square",
    "hwy": "highway",
    "marg": "road",
    "nagar": "nagar",
}
_SKELETON_RULES = (
    ("ksh", "x"),
    ("ks", "x"),
    ("ck", "k"),
    ("sh", "s"),
    ("ph", "f"),
    ("bh", "b"),
    ("dh", "d"),
    ("th", "t"),
    ("kh", "k"),
    ("gh", "g"),
    ("ch", "c"),
    ("c", "k"),
    ("q", "k"),
    ("w", "v"),
    ("z", "j"),
    ("y", "i"),
)
_VOWELS = frozenset("aeiou")


def ascii_words(text: str) -> list[str]:
    """Lower-case ASCII words of ``text`` (transliterated: "Cía." -> ["cia"], "लक्ष्मी" -> ["lkssmii"])."""
    return _NON_ALNUM.sub(" ", unidecode(text).lower().replace("&", " and ")).split()


@lru_cache(maxsize=50_000)  # localities and units: a few thousand values among millions of firms
def place_words(text: str) -> str:
    """``text``'s ASCII words, space-separated (a locality, a capacity unit)."""
    return " ".join(ascii_words(text))


@lru_cache(maxsize=500_000)
def skeleton(token: str) -> str:
    """A coarse phonetic key of one word: spelling variants of one sound agree."""
    if len(token) > 4 and token.endswith("s"):
        token = token[:-1]  # plural
    for old, new in _SKELETON_RULES:
        token = token.replace(old, new)
    collapsed: list[str] = []
    for char in token:
        if not collapsed or collapsed[-1] != char:
            collapsed.append(char)
    if not collapsed:
        return ""
    first, rest = collapsed[0], collapsed[1:]
    return first + "".join(c for c in rest if c not in _VOWELS)


def _legal_tail(words: list[str]) -> tuple[int, tuple[str, str]] | None:
    """How many of the last words state a legal form, and which: exactly, else one typo away."""
    longest = min(_LEGAL_MAX_TOKENS, len(words) - 1)
    for n in range(longest, 0, -1):
        form = _LEGAL_FORMS.get(" ".join(words[-n:]))
        if form is not None:
            return n, form
    for n in range(longest, 0, -1):
        tail = " ".join(words[-n:])
        if len(tail) >= 5 and (n == 1 or words[-n] in _LEGAL_FIRST_WORDS or words[-1] in _LEGAL_LAST_WORDS):
            # "Limietd", "Private Litited", "Socieadd Anonima": one typo away from a legal form
            near = process.extractOne(tail, _LEGAL_VARIANTS, scorer=OSA.distance, score_cutoff=1)
            if near is not None and (" " in near[0]) == (" " in tail):
                return n, _LEGAL_FORMS[near[0]]
    return None


@lru_cache(maxsize=200_000)
def split_name(name: str) -> tuple[tuple[str, ...], str | None]:
    """The core words of a firm name and its legal form (canonical), if it states one."""
    words = ascii_words(name)
    if words[:2] == ["m", "s"] and len(words) > 2:  # "M/s Shree Ganesh" (Indian usage)
        words = words[2:]
    elif words[:1] in (["ms"], ["messrs"]) and len(words) > 1:
        words = words[1:]
    legal: str | None = None
    # A number after the legal form ("Otavalo Pvt Ltd 449") is set aside while the form is recognised.
    numbers: list[str] = []
    while len(words) > 2 and words[-1].isdigit():
        numbers.insert(0, words.pop())
    while len(words) > 1 and (found := _legal_tail(words)) is not None:
        legal = legal or found[1][0]
        words = words[: -found[0]]
    words += numbers
    core = [_ABBREVIATIONS.get(w, w) for w in words]
    core = [w for w in core if w not in _FILLER] or core
    return tuple(core), legal


def legal_family(legal: str | None) -> str | None:
    return None if legal is None else _LEGAL_FORMS[legal][1]


def normalise_street(street: str | None) -> str:
    if not street:
        return ""
    words = [_STREET_WORDS.get(w, w) for w in ascii_words(street)]
    return " ".join(sorted(w for w in words if w))


def normalise_id(scheme: str, value: str) -> str:
    return f"{_NON_ALNUM.sub('', scheme.lower()).upper()}:{_NON_ALNUM.sub('', value.lower()).upper()}"


# Bump whenever normalisation changes: stored profiles of another format are recomputed.
PROFILE_FORMAT = 2


@dataclass(slots=True)
class Profile:
    """What the detector knows of one firm, normalised once."""

    id: str
    country: str
    name: str  # the name as registered, for reasons
    core: str  # normalised name words, sorted, legal form removed
    skeleton: str  # their skeletons, sorted
    tokens: tuple[str, ...]  # distinct skeletons, longest first
    legal: str | None
    ids: dict[str, str]  # scheme -> value, normalised
    street: str
    locality: str
    postal: str
    latitude: float | None
    longitude: float | None
    isic: frozenset[str]
    numbers: tuple[str, ...] = ()  # numbers in the name ("Unit 2"): different numbers, different firms
    # Firms registered under the same name in the country (this one included): a common name
    # is weaker evidence than a rare one. Set by the blocking step from the name key's block.
    name_count: int = 1
    agency_id: str | None = None
    sector: str | None = None  # the first ISIC code given: the main activity
    products: frozenset[str] = frozenset()  # HS codes
    capacity: float | None = None  # monthly, in capacity_unit
    capacity_unit: str = ""
    certificates: frozenset[str] = frozenset()  # "SCHEME:NUMBER" ("SCHEME:" without a number)
    extra: dict[str, Any] = field(default_factory=dict)

    def pack(self) -> list[Any]:
        """The normalised fields as a JSON-ready list (``unpack`` reverses it), stored per firm
        so that comparing with a registered firm does not normalise it again."""
        return [
            PROFILE_FORMAT,
            self.id,
            self.country,
            self.name,
            self.core,
            self.skeleton,
            list(self.tokens),
            self.legal,
            self.ids,
            self.street,
            self.locality,
            self.postal,
            self.latitude,
            self.longitude,
            sorted(self.isic),
            list(self.numbers),
            self.agency_id,
            self.sector,
            sorted(self.products),
            self.capacity,
            self.capacity_unit,
            sorted(self.certificates),
        ]

    @classmethod
    def unpack(cls, packed: list[Any]) -> Profile | None:
        """The profile ``pack`` made, or None when it was packed by another version of the rules."""
        if not packed or packed[0] != PROFILE_FORMAT:
            return None
        p = packed
        # Positionally, in the order of the fields: a check unpacks several profiles for each firm
        # it files, and 22 keyword arguments took three times as long.
        return cls(
            p[1],  # id
            p[2],  # country
            p[3],  # name
            p[4],  # core
            p[5],  # skeleton
            tuple(p[6]),  # tokens
            p[7],  # legal
            p[8],  # ids
            p[9],  # street
            p[10],  # locality
            p[11],  # postal
            p[12],  # latitude
            p[13],  # longitude
            frozenset(p[14]) if p[14] else _NO_CODES,  # isic
            tuple(p[15]),  # numbers
            1,  # name_count: set by the blocking step
            p[16],  # agency_id
            p[17],  # sector
            frozenset(p[18]) if p[18] else _NO_CODES,  # products
            p[19],  # capacity
            p[20],  # capacity_unit
            frozenset(p[21]) if p[21] else _NO_CODES,  # certificates
        )


_NO_CODES: frozenset[str] = frozenset()


def profile(
    *,
    id: str,
    name: str,
    country: str,
    national_ids: Iterable[tuple[str, str]] = (),
    street: str | None = None,
    locality: str | None = None,
    postal_code: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    isic_codes: Iterable[str] = (),
    agency_id: str | None = None,
    hs_codes: Iterable[str] = (),
    monthly_capacity: float | None = None,
    capacity_unit: str | None = None,
    certificates: Iterable[tuple[str, str | None]] = (),
) -> Profile:
    core, legal = split_name(name)
    skeletons = [s for s in (skeleton(w) for w in core) if s]
    ids: dict[str, str] = {}
    for scheme, value in national_ids:
        key = normalise_id(scheme, value)
        ids.setdefault(key.split(":", 1)[0], key.split(":", 1)[1])
    isic = list(isic_codes)
    return Profile(
        id=id,
        country=country,
        name=name,
        core=" ".join(sorted(core)),
        skeleton=" ".join(sorted(skeletons)),
        tokens=tuple(sorted(set(skeletons), key=lambda s: (-len(s), s))),
        legal=legal,
        ids=ids,
        street=normalise_street(street),
        locality=place_words(locality or ""),
        postal=_NON_ALNUM.sub("", (postal_code or "").lower()),
        latitude=latitude,
        longitude=longitude,
        isic=frozenset(isic),
        numbers=tuple(sorted({w.lstrip("0") or "0" for w in core if w.isdigit()})),
        agency_id=agency_id,
        sector=isic[0] if isic else None,
        products=frozenset(hs_codes),
        capacity=None if monthly_capacity is None else float(monthly_capacity),
        capacity_unit=place_words(capacity_unit or ""),
        certificates=frozenset(normalise_id(scheme, number or "") for scheme, number in certificates),
    )


def profile_of_firm(document: Any, *, id: str | None = None) -> Profile:
    """The profile of a firm given as a validated ``FirmCreate``, a table row or a dict."""

    def get(name: str) -> Any:
        return document.get(name) if isinstance(document, dict) else getattr(document, name, None)

    ids: list[tuple[str, str]] = []
    for entry in get("national_ids") or []:
        scheme = entry.get("scheme") if isinstance(entry, dict) else entry.scheme
        value = entry.get("value") if isinstance(entry, dict) else entry.value
        ids.append((str(scheme), str(value)))
    certificates: list[tuple[str, str | None]] = []
    for entry in get("certifications") or []:
        scheme = entry.get("scheme") if isinstance(entry, dict) else entry.scheme
        number = entry.get("certificate_number") if isinstance(entry, dict) else entry.certificate_number
        certificates.append((str(scheme), None if number is None else str(number)))
    return profile(
        id=id or get("id"),
        name=get("name"),
        country=get("country"),
        national_ids=ids,
        street=get("street"),
        locality=get("locality"),
        postal_code=get("postal_code"),
        latitude=get("latitude"),
        longitude=get("longitude"),
        isic_codes=get("isic_codes") or (),
        agency_id=get("agency_id"),
        hs_codes=get("hs_codes") or (),
        monthly_capacity=get("monthly_capacity"),
        capacity_unit=get("capacity_unit"),
        certificates=certificates,
    )


def name_key(p: Profile) -> str:
    """The key counting the firms of one name in one country (for ``Profile.name_count``)."""
    return f"n:{p.country}:{p.skeleton}"[:KEY_LENGTH]


def counting_key(key: str) -> bool:
    """Keys kept to count firms of one name, not to pair them (too common at national scale)."""
    return key.startswith("n:")


# Side of the grid cells of the place keys, in degrees (about 110 m of latitude). Each firm is
# filed under the 2 x 2 cells nearest to it, so two firms less than half a side apart in each
# direction (about 50 m) always share one, and most within 100 m do. Larger cells compare more
# neighbours in dense clusters for little more recall (docs/benchmarks.md).
CELL_DEGREES = 0.001


def place_cells(latitude: float, longitude: float) -> list[str]:
    """The 2 x 2 grid cells around a point: any point within half a cell side shares one."""
    half = CELL_DEGREES / 2
    rows = (math.floor((latitude - half) / CELL_DEGREES), math.floor((latitude + half) / CELL_DEGREES))
    columns = (math.floor((longitude - half) / CELL_DEGREES), math.floor((longitude + half) / CELL_DEGREES))
    return [f"{row}:{column}" for row in rows for column in columns]


def blocking_keys(p: Profile) -> list[str]:
    """The keys under which a firm is filed; firms sharing a key are compared.

    All within one country, and each bounded: keys shared by more than ``MAX_BLOCK``
    firms are too common to be used. Names made of words thousands of firms share
    ("Sri Balaji Textiles", "Otavalo Tejidos") leave all their name keys too common,
    so two keys do not rest on the name's words:

    - national ids;
    - the whole name's skeleton at the postal code and at the locality;
    - each of its three most distinctive (longest) words at the postal code;
    - the numbers in the name by their digits ("449" and "494" alike) at the
      locality (else the postal code);
    - the grid cells around its coordinates with its main ISIC activity: the same
      trade within about 50 m (and mostly within 100 m), whatever the name.
    """
    keys = [f"i:{scheme}:{value}" for scheme, value in sorted(p.ids.items())]
    cc = p.country
    locality = skeleton(p.locality.replace(" ", ""))
    place = locality or (f"p{p.postal}" if p.postal else "")
    top = sorted(t for t in p.tokens[:3] if len(t) >= 2)
    if p.skeleton:
        keys.append(f"n:{cc}:{p.skeleton}")
        if p.postal:
            keys.append(f"np:{cc}:{p.postal}:{p.skeleton}")
        if locality:
            keys.append(f"nl:{cc}:{locality}:{p.skeleton}")
    if p.postal:
        keys += [f"z:{cc}:{p.postal}:{t}" for t in top]
    if place:
        keys += [f"dn:{cc}:{place}:{''.join(sorted(number))}" for number in p.numbers if len(number) >= 2]
    if p.sector and p.latitude is not None and p.longitude is not None:
        keys += [f"g:{cc}:{cell}:{p.sector}" for cell in place_cells(p.latitude, p.longitude)]
    return list(dict.fromkeys(k[:KEY_LENGTH] for k in keys))


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    detail: str
    weight: float

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, "weight": round(self.weight, 2)}


@dataclass(frozen=True, slots=True)
class Match:
    score: float
    reasons: tuple[Reason, ...]
    same_id: bool  # an exact national id match (same scheme and value)

    @property
    def likely(self) -> bool:
        return self.score >= THRESHOLD


_NAME_POINTS = ((0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0), (-7.0, -5.0, -1.5, 1.0, 3.0, 4.5, 5.5))
_DISTANCES = ((0.25, 3.0), (1.0, 2.0), (2.0, 0.5), (5.0, -1.5), (20.0, -2.5))
_FAR = -3.5
# Columns of the weight matrix, one per kind of evidence.
FEATURES = (
    "name",
    "national_id",
    "distance",
    "street",
    "postal_code",
    "locality",
    "sector",
    "legal_form",
    "number",
    "products",
    "capacity",
    "certificate",
)
# Firms of one trade in one town often make the same products and hold the same
# certificates: agreement is modest evidence, a certificate number in common strong.
SAME_PRODUCTS, SHARED_PRODUCTS, OTHER_PRODUCTS = 1.0, 0.3, -1.0
SAME_CAPACITY, OTHER_CAPACITY = 1.5, -1.5  # equal within 1 %; more than 10 % apart
SAME_CERTIFICATE, SAME_CERTIFICATION = 4.0, 0.5  # a certificate number in common; a scheme in common
# "Sri Balaji Textiles 796" and "Sri Balaji Textiles": likely two firms of a common name.
NUMBER_MISSING = -3.0
LOCATED_POSTAL_CODE = 0.5  # a postal code in common, where the distance is known
SWAPPED_DIGITS = -2.5  # "Otavalo 437" and "Otavalo 473": a typo, or two firms of one town's numbering
OTHER_HOUSE_NUMBER = -1.0  # the same street, another house number, 50 m or more apart


def _distance_weight(km: float) -> tuple[float, str]:
    detail = f"{km * 1000:.0f} m apart" if km < 1 else f"{km:.1f} km apart"
    for limit, weight in _DISTANCES:
        if km < limit:
            return weight, detail
    return _FAR, detail


def _transposed(x: str, y: str) -> bool:
    if len(x) != len(y):
        return False
    diff = [i for i, (p, q) in enumerate(zip(x, y, strict=True)) if p != q]
    return len(diff) == 2 and diff[1] == diff[0] + 1 and x[diff[0]] == y[diff[1]] and x[diff[1]] == y[diff[0]]


def _digits(text: str) -> tuple[str, ...]:
    return tuple(sorted(w for w in text.split() if w.isdigit()))


def _id_evidence(a: Profile, b: Profile) -> tuple[float, str, str]:
    """(weight, code, detail) of the firms' first national ids (by scheme), if of the same scheme."""
    if not a.ids or not b.ids:
        return 0.0, "", ""
    (scheme, x), (other, y) = min(a.ids.items()), min(b.ids.items())
    if scheme != other:
        return 0.0, "", ""
    if x == y:
        return SAME_ID, "same_national_id", f"same {scheme} {x}"
    if _transposed(x, y):
        return 2.0, "national_id_typo", f"{scheme} {x} and {y}: two characters swapped"
    if len(x) == len(y) and Levenshtein.distance(x, y) == 1:
        return 0.0, "", ""  # one character apart: a typo, or the next number of a register; no evidence
    return -5.0, "different_national_id", f"different {scheme}: {x} and {y}"


class ProfileTable:
    """Profiles as columns (codes, masks, coordinates), so that pairs are scored with array operations."""

    def __init__(self, profiles: Sequence[Profile]) -> None:
        self.profiles = profiles
        codes: dict[Any, int] = {None: 0, "": 0, (): 0}

        def code(value: Any) -> int:
            return codes.setdefault(value, len(codes))

        self.core = [p.core for p in profiles]
        self.skeleton = [p.skeleton for p in profiles]
        self.street = [p.street for p in profiles]
        self.locality = [p.locality for p in profiles]
        first_ids = [min(p.ids.items()) if p.ids else ("", "") for p in profiles]
        self.id_value = [value for _, value in first_ids]
        self.id_scheme = np.array([code(("scheme", scheme)) if scheme else 0 for scheme, _ in first_ids])
        self.id_length = np.array([len(value) for value in self.id_value])
        self.lat = np.array([np.nan if p.latitude is None else p.latitude for p in profiles], dtype=np.float64)
        self.lon = np.array([np.nan if p.longitude is None else p.longitude for p in profiles], dtype=np.float64)
        self.postal = np.array([code(("postal", p.postal)) if p.postal else 0 for p in profiles])
        self.locality_code = np.array([code(("locality", p.locality)) if p.locality else 0 for p in profiles])
        self.street_digits = np.array([code(("digits", _digits(p.street))) for p in profiles])
        self.legal = np.array([code(("legal", legal_family(p.legal))) if p.legal else 0 for p in profiles])
        self.numbers = np.array([code(("numbers", p.numbers)) if p.numbers else 0 for p in profiles])
        self.skeleton_code = np.array([code(("name", p.skeleton)) for p in profiles])
        # Numbers alike up to the order of their digits ("449", "494"): a typo, not another firm.
        self.number_digits = np.array(
            [
                code(("digits", tuple(sorted("".join(sorted(n)) for n in p.numbers)))) if p.numbers else 0
                for p in profiles
            ]
        )
        self.isic = [p.isic for p in profiles]
        self.products = [p.products for p in profiles]
        self.products_code = np.array([code(("products", p.products)) if p.products else 0 for p in profiles])
        self.capacity = np.array([np.nan if p.capacity is None else p.capacity for p in profiles], dtype=np.float64)
        self.capacity_unit = np.array([code(("unit", p.capacity_unit)) for p in profiles])
        self.certificates = [p.certificates for p in profiles]
        self.has_certificates = np.array([bool(p.certificates) for p in profiles], dtype=bool)
        self.name_count = np.array([max(1, p.name_count) for p in profiles], dtype=np.float64)


def weights(pairs: Sequence[tuple[Profile, Profile]]) -> np.ndarray:
    """The (pairs x FEATURES) matrix of log-odds contributions of ``pairs``."""
    n = len(pairs)
    table = ProfileTable([a for a, _ in pairs] + [b for _, b in pairs])
    return table_weights(table, np.arange(n), np.arange(n, 2 * n))


def table_weights(table: ProfileTable, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """The weight matrix of the pairs (i[k], j[k]) of one table."""
    n = len(i)
    w = np.zeros((n, len(FEATURES)), dtype=np.float64)
    if not n:
        return w
    il, jl = i.tolist(), j.tolist()

    def strings(column: list[str]) -> tuple[list[str], list[str]]:
        return [column[x] for x in il], [column[y] for y in jl]

    core = process.cpdist(*strings(table.core), scorer=Indel.normalized_similarity, workers=1) * 100.0
    skel = process.cpdist(*strings(table.skeleton), scorer=Indel.normalized_similarity, workers=1) * 100.0
    similarity = np.maximum(core, 0.95 * skel) / 100.0
    # National ids under the same scheme: equal, two characters swapped, one apart (no evidence), different.
    same_scheme = (table.id_scheme[i] == table.id_scheme[j]) & (table.id_scheme[i] > 0)
    ids = np.zeros(n)
    if same_scheme.any():
        hits = np.flatnonzero(same_scheme)
        left = [table.id_value[x] for x in i[hits].tolist()]
        right = [table.id_value[y] for y in j[hits].tolist()]
        lev = process.cpdist(left, right, scorer=Levenshtein.distance, workers=1)
        osa = process.cpdist(left, right, scorer=OSA.distance, workers=1)
        equal_length = table.id_length[i[hits]] == table.id_length[j[hits]]
        ids[hits] = np.select(
            [lev == 0, (osa == 1) & (lev == 2) & equal_length, (lev == 1) & equal_length], [SAME_ID, 2.0, 0.0], -5.0
        )
    w[:, 1] = ids
    km = haversine_km(table.lat[j], table.lon[j], table.lat[i], table.lon[i])
    distance = np.full(n, _FAR)
    for limit, weight in reversed(_DISTANCES):
        distance[km < limit] = weight
    distance[np.isnan(km)] = 0.0
    w[:, 2] = distance
    left_streets, right_streets = strings(table.street)
    street = process.cpdist(left_streets, right_streets, scorer=Indel.normalized_similarity, workers=1)
    both = np.array([bool(a and b) for a, b in zip(left_streets, right_streets, strict=True)], dtype=bool)
    street_w = np.where(street >= 0.9, 2.5, np.where(street >= 0.75, 1.2, np.where(street < 0.5, -2.5, 0.0)))
    # Another house number on the same street: a typo, or the neighbour; the neighbour when the
    # coordinates say so (the distance is known and not nil).
    other_house = (street >= 0.5) & (table.street_digits[i] != table.street_digits[j])
    street_w[other_house] = np.where(km[other_house] >= 0.05, OTHER_HOUSE_NUMBER, 0.0)
    w[:, 3] = np.where(both, street_w, 0.0)
    postal_i, postal_j = table.postal[i], table.postal[j]
    w[:, 4] = np.where((postal_i > 0) & (postal_j > 0), np.where(postal_i == postal_j, 1.5, -1.0), 0.0)
    locality = process.cpdist(*strings(table.locality), scorer=Indel.normalized_similarity, workers=1) * 100.0
    loc_i, loc_j = table.locality_code[i], table.locality_code[j]
    w[:, 5] = np.where(
        (loc_i > 0) & (loc_j > 0), np.where(loc_i == loc_j, 0.8, np.where(locality < 80, -0.8, 0.0)), 0.0
    )
    # Where the distance is known, a postal code or locality in common says little more: firms
    # a kilometre apart share them anyway, and counting them again overrates a cluster's neighbours.
    located = ~np.isnan(km)
    w[:, 4] = np.where(located & (w[:, 4] > 0), LOCATED_POSTAL_CODE, w[:, 4])
    w[:, 5] = np.where(located & (w[:, 5] > 0), 0.0, w[:, 5])
    isic = table.isic
    w[:, 6] = [_sector_weight(isic[x], isic[y]) if isic[x] and isic[y] else 0.0 for x, y in zip(il, jl, strict=True)]
    legal_i, legal_j = table.legal[i], table.legal[j]
    w[:, 7] = np.where((legal_i > 0) & (legal_j > 0) & (legal_i != legal_j), -1.5, 0.0)
    numbers_i, numbers_j = table.numbers[i], table.numbers[j]
    other_number = (numbers_i > 0) & (numbers_j > 0) & (numbers_i != numbers_j)
    w[:, 8] = np.where(
        other_number, np.where(table.number_digits[i] == table.number_digits[j], SWAPPED_DIGITS, -4.0), 0.0
    )
    w[:, 8] += np.where((numbers_i > 0) != (numbers_j > 0), NUMBER_MISSING, 0.0)
    # Sets compared one pair at a time only where both firms have one and they are not the same set.
    products_i, products_j = table.products_code[i], table.products_code[j]
    w[:, 9] = np.where((products_i > 0) & (products_i == products_j), SAME_PRODUCTS, 0.0)
    for k in np.flatnonzero((products_i > 0) & (products_j > 0) & (products_i != products_j)).tolist():
        w[k, 9] = _products_weight(table.products[il[k]], table.products[jl[k]])
    capacity_i, capacity_j = table.capacity[i], table.capacity[j]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.maximum(capacity_i, capacity_j) / np.minimum(capacity_i, capacity_j)
    comparable = ~np.isnan(ratio) & (table.capacity_unit[i] == table.capacity_unit[j])
    w[:, 10] = np.where(
        comparable, np.where(ratio <= 1.01, SAME_CAPACITY, np.where(ratio > 1.1, OTHER_CAPACITY, 0.0)), 0.0
    )
    for k in np.flatnonzero(table.has_certificates[i] & table.has_certificates[j]).tolist():
        w[k, 11] = _certificate_weight(table.certificates[il[k]], table.certificates[jl[k]])
    # Names whose sorted forms differ at a word's first letter ("Mohan Jai pAparels") compare
    # badly as strings: where the rest of the evidence could carry the pair, compare word by word.
    rest = INTERCEPT + w[:, 1:].sum(axis=1)
    for k in np.flatnonzero((similarity < 0.9) & (similarity >= 0.4) & (rest + _NAME_POINTS[1][-1] >= 0)).tolist():
        word_similarity = _word_similarity(table.core[il[k]], table.core[jl[k]])
        similarity[k] = max(similarity[k], word_similarity)
    w[:, 0] = np.interp(similarity, *_NAME_POINTS)
    same_name = table.skeleton_code[i] == table.skeleton_code[j]
    counts = np.where(same_name, np.minimum(table.name_count[i], table.name_count[j]), 1.0)
    w[:, 0] -= np.minimum(NAME_FREQUENCY_WEIGHT * np.log(counts), NAME_FREQUENCY_CAP)
    return w


NAME_FREQUENCY_WEIGHT = 0.8
NAME_FREQUENCY_CAP = 4.0


@lru_cache(maxsize=200_000)  # names of common words meet again and again
def _word_similarity(a: str, b: str) -> float:
    """Symmetric Monge-Elkan: each word's best match in the other name, averaged both ways."""
    wa, wb = a.split(), b.split()
    if not wa or not wb:
        return 0.0
    ratios: list[list[float]] = process.cdist(wa, wb, scorer=fuzz.ratio, workers=1).tolist()
    return float(min(sum(map(max, ratios)) / len(wa), sum(map(max, zip(*ratios, strict=True))) / len(wb))) / 100.0


def _sector_weight(a: frozenset[str], b: frozenset[str]) -> float:
    if a & b:
        return 1.0
    if {c[:2] for c in a} & {c[:2] for c in b}:
        return 0.5
    return -1.5


def _products_weight(a: frozenset[str], b: frozenset[str]) -> float:
    if a == b:
        return SAME_PRODUCTS
    return SHARED_PRODUCTS if a & b else OTHER_PRODUCTS


def _certificate_weight(a: frozenset[str], b: frozenset[str]) -> float:
    shared = a & b
    if any(not c.endswith(":") for c in shared):
        return SAME_CERTIFICATE
    if shared or {c.split(":", 1)[0] for c in a} & {c.split(":", 1)[0] for c in b}:
        return SAME_CERTIFICATION
    return 0.0  # lists of certificates are often incomplete: none in common is no evidence


def scores(w: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1.0 / (1.0 + np.exp(-(INTERCEPT + w.sum(axis=1))))
    return result


def explain(a: Profile, b: Profile, row: np.ndarray) -> tuple[Reason, ...]:
    """The reasons behind one pair's weights, strongest first."""
    reasons: list[Reason] = []
    name = float(row[0])
    core = fuzz.ratio(a.core, b.core)
    similarity = max(core / 100.0, 0.95 * fuzz.ratio(a.skeleton, b.skeleton) / 100.0, _word_similarity(a.core, b.core))
    detail = f"names {similarity:.0%} alike"
    if a.skeleton == b.skeleton and a.name_count > 1:
        detail += f"; {a.name_count} firms share this name"
    reasons.append(Reason("name_similar" if name > 0 else "name_different", detail, name))
    if row[1]:
        weight, code, detail = _id_evidence(a, b)
        reasons.append(Reason(code, detail, weight))
    if row[2]:
        km = _distance_km(a, b)
        assert km is not None
        reasons.append(Reason("near" if row[2] > 0 else "far_apart", _distance_weight(km)[1], float(row[2])))
    if row[3]:
        sim = fuzz.ratio(a.street, b.street) / 100.0
        code = (
            "same_street_address"
            if row[3] >= 2.5
            else "similar_street_address"
            if row[3] > 0
            else "different_street_address"
        )
        reasons.append(Reason(code, f"addresses {sim:.0%} alike", float(row[3])))
    if row[4]:
        same = row[4] > 0
        reasons.append(
            Reason(
                "same_postal_code" if same else "different_postal_code",
                f"postal code {a.postal}" if same else f"postal codes {a.postal} and {b.postal}",
                float(row[4]),
            )
        )
    if row[5]:
        same = row[5] > 0
        reasons.append(
            Reason(
                "same_locality" if same else "different_locality",
                a.locality if same else f"{a.locality} and {b.locality}",
                float(row[5]),
            )
        )
    if row[6]:
        shared = a.isic & b.isic
        code = "same_sector" if shared else "related_sector" if row[6] > 0 else "different_sector"
        detail = (
            "ISIC " + ", ".join(sorted(shared))
            if shared
            else "same ISIC division"
            if row[6] > 0
            else "no ISIC division in common"
        )
        reasons.append(Reason(code, detail, float(row[6])))
    if row[7]:
        reasons.append(Reason("different_legal_form", f"{a.legal} and {b.legal}", float(row[7])))
    if row[8]:
        numbers = f"{' '.join(a.numbers) or 'no number'} and {' '.join(b.numbers) or 'no number'}"
        reasons.append(Reason("different_number_in_name", numbers, float(row[8])))
    if row[9]:
        shared = a.products & b.products
        code = "same_products" if a.products == b.products else "shared_products" if shared else "different_products"
        detail = "HS " + ", ".join(sorted(shared)) if shared else "no HS code in common"
        reasons.append(Reason(code, detail, float(row[9])))
    if row[10]:
        code = "same_capacity" if row[10] > 0 else "different_capacity"
        detail = f"{a.capacity:g} and {b.capacity:g} {a.capacity_unit} a month"
        reasons.append(Reason(code, detail, float(row[10])))
    if row[11]:
        certificates = sorted(c for c in a.certificates & b.certificates if not c.endswith(":"))
        code = "same_certificate" if certificates else "same_certification"
        schemes = sorted({c.split(":", 1)[0] for c in a.certificates} & {c.split(":", 1)[0] for c in b.certificates})
        reasons.append(Reason(code, ", ".join(certificates or schemes), float(row[11])))
    return tuple(sorted(reasons, key=lambda r: -r.weight))


def _distance_km(a: Profile, b: Profile) -> float | None:
    if a.latitude is None or b.latitude is None or a.longitude is None or b.longitude is None:
        return None
    return distance_km(a.latitude, a.longitude, b.latitude, b.longitude)


def score_pairs(pairs: Sequence[tuple[Profile, Profile]], *, explain_all: bool = False) -> list[Match]:
    """Score each pair; the likely ones (or all, with ``explain_all``) come with their reasons."""
    w = weights(pairs)
    result = []
    for (a, b), row, score in zip(pairs, w, scores(w).tolist(), strict=True):
        likely = score >= THRESHOLD
        reasons = explain(a, b, row) if likely or explain_all else ()
        result.append(Match(round(score, 4), reasons, bool(row[1] == SAME_ID)))
    return result


def pair_key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def _key_hash(keys: Iterable[str]) -> list[int]:
    return [hash(k) for k in keys]


def candidate_pairs(profiles: Sequence[Profile], *, max_block: int = MAX_BLOCK) -> np.ndarray:
    """Offline blocking over a whole collection: the (i, j) index pairs, i < j, to compare.

    Keys are hashed to 64-bit integers and grouped with a sort, so memory stays a
    few arrays of (keys x records) integers; blocks larger than ``max_block`` are
    skipped, as online.
    """
    hashes: list[int] = []
    owners: list[int] = []
    names: dict[str, int] = {}
    for index, p in enumerate(profiles):
        keys = _key_hash(k for k in blocking_keys(p) if not counting_key(k))
        hashes += keys
        owners += [index] * len(keys)
        names[name_key(p)] = names.get(name_key(p), 0) + 1
    for p in profiles:
        p.name_count = names[name_key(p)]
    if not hashes:
        return np.empty((0, 2), dtype=np.int64)
    key_array = np.array(hashes, dtype=np.int64)
    owner_array = np.array(owners, dtype=np.int64)
    order = np.argsort(key_array, kind="stable")
    key_array, owner_array = key_array[order], owner_array[order]
    starts = np.flatnonzero(np.r_[True, key_array[1:] != key_array[:-1]])
    sizes = np.diff(np.r_[starts, len(key_array)])
    chunks: list[np.ndarray] = []
    for size in range(2, max_block + 1):
        block_starts = starts[sizes == size]
        if not len(block_starts):
            continue
        members = owner_array[block_starts[:, None] + np.arange(size)[None, :]]  # (blocks, size)
        i, j = np.triu_indices(size, k=1)
        a, b = members[:, i].ravel(), members[:, j].ravel()
        chunks.append(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1))
    if not chunks:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.concatenate(chunks)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    codes = np.unique(pairs[:, 0] * len(profiles) + pairs[:, 1])
    return np.stack([codes // len(profiles), codes % len(profiles)], axis=1)
