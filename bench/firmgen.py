"""Synthetic firm records for the benchmarks, with labelled duplicates.

Firms of Indian and Ecuadorian industrial clusters (real towns, postal-code
ranges and coordinates), named the way registers name them, so that different
firms often share words ("Shree Ganesh Textiles" and "Shree Ganesh Exports" in
the same town). A duplicate is an original with realistic corruptions: typos,
word order, legal-form variants ("Pvt Ltd" / "Private Limited", "Cía. Ltda." /
"Compañía Limitada"), abbreviations ("Engg", "Inds"), transliteration variants
(Shree/Sri/Shri, Lakshmi/Laxmi), moved or missing coordinates, a missing
national id or postal code, upper case. Seeded: the same arguments give the same
records.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

TOWNS = {
    "IN": [
        ("Tiruppur", "IN-TN", 11.1085, 77.3411, "6416", ["1391", "1410", "1430", "1313"]),
        ("Coimbatore", "IN-TN", 11.0168, 76.9558, "6410", ["2813", "2599", "1313"]),
        ("Ludhiana", "IN-PB", 30.9010, 75.8573, "1410", ["1430", "2599", "2816", "3092"]),
        ("Kolhapur", "IN-MH", 16.7050, 74.2433, "4160", ["2431", "2432", "2910"]),
        ("Moradabad", "IN-UP", 28.8386, 78.7733, "2440", ["2599", "3211", "2420"]),
        ("Agra", "IN-UP", 27.1767, 78.0081, "2820", ["1520", "1512"]),
        ("Surat", "IN-GJ", 21.1702, 72.8311, "3950", ["1312", "1313", "3211"]),
        ("Panipat", "IN-HR", 29.3909, 76.9635, "1321", ["1392", "1393"]),
        ("Rajkot", "IN-GJ", 22.3039, 70.8022, "3600", ["2910", "2813", "2599"]),
        ("Jalandhar", "IN-PB", 31.3260, 75.5762, "1440", ["3230", "2599"]),
    ],
    "EC": [
        ("Atuntaqui", "EC-I", 0.3317, -78.2139, "1001", ["1410", "1430", "1391"]),
        ("Quito", "EC-P", -0.1807, -78.4678, "1701", ["1050", "1410", "3100"]),
        ("Cuenca", "EC-A", -2.9001, -79.0059, "0101", ["3100", "1520", "2393"]),
        ("Ambato", "EC-T", -1.2491, -78.6168, "1801", ["1511", "1520", "1410"]),
        ("Guayaquil", "EC-G", -2.1709, -79.9224, "0901", ["1020", "1050", "2220"]),
        ("Cotacachi", "EC-I", 0.3012, -78.2645, "1002", ["1511", "1512"]),
    ],
}
ISIC_WORDS = {
    "1391": ["Knitting Mills", "Knit Fabrics", "Hosiery"],
    "1410": ["Garments", "Apparels", "Clothing"],
    "1430": ["Knitwear", "Hosiery"],
    "1313": ["Dyeing Works", "Processors", "Bleaching Works"],
    "1312": ["Weaving Mills", "Fabrics", "Silk Mills"],
    "1392": ["Home Furnishings", "Made-ups"],
    "1393": ["Carpets", "Rugs"],
    "2813": ["Pumps", "Engineering Works"],
    "2599": ["Engineering Works", "Metal Products", "Fasteners"],
    "2816": ["Machine Tools", "Engineering Works"],
    "3092": ["Cycle Parts", "Bicycles"],
    "2431": ["Foundry", "Castings"],
    "2432": ["Castings", "Alloys"],
    "2910": ["Auto Components", "Engineering"],
    "3211": ["Brass Works", "Handicrafts", "Metal Crafts"],
    "2420": ["Brass Works", "Metals"],
    "1520": ["Footwear", "Shoes"],
    "1512": ["Leather Goods", "Leather Products"],
    "1511": ["Tannery", "Leather"],
    "3230": ["Sports Goods", "Sports"],
    "1050": ["Dairy", "Milk Products"],
    "3100": ["Furniture", "Wood Works"],
    "2393": ["Ceramics", "Pottery"],
    "1020": ["Seafood", "Shrimp Exports"],
    "2220": ["Plastics", "Polymers"],
}
ISIC_WORDS_ES = {
    "1410": ["Confecciones", "Textiles", "Prendas"],
    "1430": ["Tejidos", "Tejidos de Punto"],
    "1391": ["Tejidos", "Textiles"],
    "1050": ["Lácteos", "Productos Lácteos"],
    "3100": ["Muebles", "Mueblería"],
    "1520": ["Calzado"],
    "2393": ["Cerámica"],
    "1511": ["Curtiembre", "Curtidos"],
    "1512": ["Artículos de Cuero", "Marroquinería"],
    "1020": ["Camaronera", "Mariscos"],
    "2220": ["Plásticos"],
}
IN_PREFIX = [
    "Shree",
    "Sri",
    "New",
    "Royal",
    "Sai",
    "Om",
    "Jai",
    "Bharat",
    "Annai",
    "Kovai",
    "Star",
    "Super",
    "National",
    "Modern",
    "Universal",
    "Golden",
    "Classic",
    "Standard",
    "United",
    "Prime",
    "",
    "",
    "",
    "",
]
IN_CORE = [
    "Ganesh",
    "Lakshmi",
    "Venkateswara",
    "Murugan",
    "Vinayaka",
    "Balaji",
    "Saravana",
    "Karpagam",
    "Senthil",
    "Kumaran",
    "Krishna",
    "Maruthi",
    "Amman",
    "Vijay",
    "Raja",
    "Durga",
    "Mahalakshmi",
    "Sakthi",
    "Kaveri",
    "Bhavani",
    "Sudarshan",
    "Jyoti",
    "Shiva",
    "Ambika",
    "Parvati",
    "Ramesh",
    "Harish",
    "Gopal",
    "Mohan",
    "Anand",
    "Deepak",
    "Ashok",
    "Gurudev",
    "Hanuman",
    "Jagdamba",
    "Kamadhenu",
    "Mangalam",
    "Navaratna",
    "Padmavathi",
    "Rajalakshmi",
    "Selvam",
    "Thirumalai",
    "Umaiyal",
    "Vasantham",
    "Yamuna",
    "Meenakshi",
]
IN_SURNAME = [
    "Agarwal",
    "Gupta",
    "Patel",
    "Shah",
    "Mehta",
    "Singh",
    "Garg",
    "Jain",
    "Bansal",
    "Goyal",
    "Mittal",
    "Chopra",
    "Arora",
    "Malhotra",
    "Kapoor",
    "Sethi",
    "Nair",
    "Iyer",
    "Reddy",
    "Naidu",
]
IN_LEGAL = [
    "Pvt Ltd",
    "Private Limited",
    "Pvt. Ltd.",
    "LLP",
    "& Co",
    "Industries",
    "Enterprises",
    "Exports",
    "",
    "",
    "",
]
EC_NAMES = [
    "Andinos",
    "Imbabura",
    "del Norte",
    "San Miguel",
    "La Esperanza",
    "Cotopaxi",
    "El Valle",
    "Los Andes",
    "Pichincha",
    "Santa Rosa",
    "San Pedro",
    "La Victoria",
    "Cevallos",
    "Pazmiño",
    "Andrade",
    "Guerrero",
    "Benalcázar",
    "Morales",
    "Cóndor",
    "Chimborazo",
    "Tungurahua",
    "Azuay",
    "Yaguachi",
    "Las Palmas",
]
EC_LEGAL = ["Cía. Ltda.", "S.A.", "S.A.S.", "C.A.", "", ""]
IN_ROADS = [
    "Kumaran Road",
    "Avinashi Road",
    "Palladam Road",
    "Mill Road",
    "Station Road",
    "GT Road",
    "Industrial Area",
    "Ring Road",
    "Mall Road",
    "Gandhi Nagar",
    "Nehru Street",
    "Kamaraj Road",
]
EC_STREETS = [
    "Bolívar",
    "Sucre",
    "Olmedo",
    "Rocafuerte",
    "Av. Amazonas",
    "García Moreno",
    "Av. 10 de Agosto",
    "Montalvo",
    "Mejía",
    "Av. Simón Bolívar",
    "Flores",
    "Maldonado",
]

LEGAL_VARIANTS = [
    ["Pvt Ltd", "Private Limited", "Pvt. Ltd.", "(P) Ltd", "Pvt. Limited"],
    ["Cía. Ltda.", "Compañía Limitada", "Cia Ltda", "CIA. LTDA"],
    ["S.A.", "SA", "Sociedad Anónima", "S. A."],
    ["& Co", "and Company", "& Co."],
    ["LLP", "L.L.P."],
]
ABBREVIATIONS = {
    "Engineering": "Engg",
    "Industries": "Inds",
    "International": "Intl",
    "Manufacturing": "Mfg",
    "Enterprises": "Ent",
    "Exports": "Expo",
    "Brothers": "Bros",
    "Products": "Prods",
    "Road": "Rd",
}
TRANSLITERATIONS = [
    ["Shree", "Sri", "Shri", "Sree"],
    ["Lakshmi", "Laxmi", "Lakshmee"],
    ["Venkateswara", "Venkateshwara"],
    ["Vinayaka", "Vinayak", "Winayaka"],
    ["Ganesh", "Ganesha", "Ganesa"],
    ["Murugan", "Murukan"],
    ["Saravana", "Sharavana"],
    ["Shiva", "Siva"],
    ["Jyoti", "Jyothi"],
    ["Durga", "Dhurga"],
    ["Sakthi", "Shakti"],
    ["Kaveri", "Cauvery"],
    ["Bhavani", "Bavani"],
    ["Mahalakshmi", "Mahalaxmi"],
]


@dataclass
class Firm:
    id: str
    entity: int  # firms of one entity are duplicates of each other
    fields: dict[str, Any] = field(default_factory=dict)


def _in_gstin(rng: random.Random, state: str) -> str:
    code = {"IN-TN": "33", "IN-PB": "03", "IN-MH": "27", "IN-UP": "09", "IN-GJ": "24", "IN-HR": "06"}[state]
    letters = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(5))
    return f"{code}{letters}{rng.randint(1000, 9999)}{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}1Z{rng.randint(1, 9)}"


def original(rng: random.Random, index: int) -> dict[str, Any]:
    country = "IN" if rng.random() < 0.7 else "EC"
    town, subdivision, lat, lon, postal, isics = rng.choice(TOWNS[country])
    isic = rng.choice(isics)
    if country == "IN":
        words = [w for w in (rng.choice(IN_PREFIX), rng.choice(IN_CORE)) if w]
        if rng.random() < 0.3:
            words.append(rng.choice(IN_SURNAME))
        words.append(rng.choice(ISIC_WORDS[isic]))
        legal = rng.choice(IN_LEGAL)
        name = " ".join(words + ([legal] if legal else []))
        street = f"{rng.randint(1, 400)} {rng.choice(IN_ROADS)}"
        national = ("GSTIN", _in_gstin(rng, subdivision)) if rng.random() < 0.6 else None
    else:
        product = rng.choice(ISIC_WORDS_ES.get(isic, ["Industrias"]))
        name = f"{product} {rng.choice(EC_NAMES)}"
        if rng.random() < 0.3:
            name += f" {rng.choice(EC_NAMES)}"
        legal = rng.choice(EC_LEGAL)
        name = f"{name} {legal}".strip()
        street = f"{rng.choice(EC_STREETS)} {rng.randint(1, 2000)}"
        national = (
            ("RUC", f"{rng.randint(1, 24):02d}{rng.randint(10_000_000, 99_999_999)}001") if rng.random() < 0.6 else None
        )
    radius = rng.random() ** 0.5 * 8.0  # km around the town centre
    angle = rng.random() * 2 * math.pi
    secondary = rng.choice(isics)
    return {
        "name": name,
        "national_ids": [{"scheme": national[0], "value": national[1]}] if national else [],
        "roles": ["supplier"],
        "size_class": rng.choice(["micro", "micro", "small", "small", "medium", "large"]),
        "isic_codes": list(dict.fromkeys([isic, secondary])),
        "country": country,
        "subdivision": subdivision,
        "locality": town,
        "postal_code": f"{postal}{rng.randint(0, 99):02d}",
        "street": street,
        "latitude": round(lat + radius / 111.0 * math.sin(angle), 5),
        "longitude": round(lon + radius / (111.0 * math.cos(math.radians(lat))) * math.cos(angle), 5),
        "employees": int(rng.lognormvariate(2.5, 1.1)) + 1,
    }


def _typo(rng: random.Random, text: str) -> str:
    words = text.split()
    candidates = [i for i, w in enumerate(words) if len(w) > 3 and w.isalpha()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    w = words[i]
    p = rng.randrange(1, len(w) - 1)
    kind = rng.random()
    if kind < 0.25:
        w = w[:p] + w[p + 1 :]
    elif kind < 0.5:
        w = w[:p] + w[p] + w[p:]
    elif kind < 0.75:
        w = w[:p] + rng.choice("aeiounrst") + w[p + 1 :]
    else:
        w = w[: p - 1] + w[p] + w[p - 1] + w[p + 1 :]
    words[i] = w
    return " ".join(words)


def _swap_legal(rng: random.Random, name: str) -> str:
    for group in LEGAL_VARIANTS:
        for variant in sorted(group, key=len, reverse=True):
            if name.endswith(variant):
                others = [v for v in group if v != variant]
                replacement = rng.choice(others + [""])
                return (name[: -len(variant)].rstrip() + " " + replacement).strip()
    return name


def corrupt(rng: random.Random, fields: dict[str, Any]) -> dict[str, Any]:
    dup: dict[str, Any] = {k: (list(v) if isinstance(v, list) else v) for k, v in fields.items()}
    name: str = dup["name"]
    operations = rng.sample(["typo", "order", "legal", "abbrev", "translit", "case", "typo2"], k=rng.randint(1, 3))
    for op in operations:
        if op in ("typo", "typo2"):
            name = _typo(rng, name)
        elif op == "order":
            words = name.split()
            if len(words) >= 3:
                i = rng.randrange(0, len(words) - 2)
                words[i], words[i + 1] = words[i + 1], words[i]
                name = " ".join(words)
        elif op == "legal":
            name = _swap_legal(rng, name)
        elif op == "abbrev":
            for full, short in ABBREVIATIONS.items():
                name = name.replace(full, short)
        elif op == "translit":
            for group in TRANSLITERATIONS:
                for variant in group:
                    if variant in name.split():
                        name = name.replace(variant, rng.choice([v for v in group if v != variant]))
                        break
        elif op == "case":
            name = name.upper()
    dup["name"] = name
    if rng.random() < 0.6 and dup.get("latitude") is not None:  # moved (geocoded again)
        km = rng.uniform(0.05, 0.8)
        angle = rng.random() * 2 * math.pi
        dup["latitude"] = round(dup["latitude"] + km / 111.0 * math.sin(angle), 5)
        dup["longitude"] = round(dup["longitude"] + km / 111.0 * math.cos(angle), 5)
    elif rng.random() < 0.2:
        dup["latitude"] = dup["longitude"] = None
    if rng.random() < 0.4:
        dup["national_ids"] = []
    if rng.random() < 0.2:
        dup["postal_code"] = None
    if rng.random() < 0.3 and dup.get("street"):
        dup["street"] = _typo(rng, dup["street"].replace("Road", "Rd").replace("Av. ", "Avenida "))
    elif rng.random() < 0.15:
        dup["street"] = None
    if rng.random() < 0.3 and len(dup["isic_codes"]) > 1:
        dup["isic_codes"] = dup["isic_codes"][:1]
    if rng.random() < 0.2:
        dup["employees"] = max(1, int(dup["employees"] * rng.uniform(0.7, 1.3)))
    return dup


def labelled(n: int, *, seed: int = 7, duplicate_share: float = 0.25) -> Iterator[Firm]:
    """``n`` originals, and for ``duplicate_share`` of them one or two corrupted copies, shuffled in place."""
    rng = random.Random(seed)
    serial = 0
    for index in range(n):
        fields = original(rng, index)
        yield Firm(f"f{serial}", index, fields)
        serial += 1
        if rng.random() < duplicate_share:
            for _ in range(1 if rng.random() < 0.8 else 2):
                yield Firm(f"f{serial}", index, corrupt(rng, fields))
                serial += 1


def true_pairs(firms: list[Firm]) -> set[tuple[int, int]]:
    by_entity: dict[int, list[int]] = {}
    for position, firm in enumerate(firms):
        by_entity.setdefault(firm.entity, []).append(position)
    pairs = set()
    for members in by_entity.values():
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                pairs.add((min(a, b), max(a, b)))
    return pairs


# --------------------------------------------------------------------------- common names

# Towns where thousands of firms share the town's name and a few trade words.
COMMON_TOWNS = [
    ("IN", "Ludhiana", "IN-PB", 30.9010, 75.8573, "1410"),
    ("IN", "Tiruppur", "IN-TN", 11.1085, 77.3411, "6416"),
    ("EC", "Otavalo", "EC-I", 0.2341, -78.2619, "1004"),
    ("EC", "Atuntaqui", "EC-I", 0.3317, -78.2139, "1001"),
]
# Trade words, with the ISIC codes, HS codes (products) and capacity unit that go with them.
COMMON_TRADES = {
    "IN": [
        ("Hosiery Works", ["1430", "1391"], ["6115", "6109", "6107"], "pieces"),
        ("Textiles", ["1392", "1312"], ["5208", "5209", "6302"], "m"),
        ("Knitwear", ["1430"], ["6110", "6109"], "pieces"),
        ("Garments", ["1410"], ["6205", "6203", "6204"], "pieces"),
    ],
    "EC": [
        ("Textiles", ["1410", "1392"], ["6109", "6302"], "pieces"),
        ("Tejidos", ["1391", "1430"], ["6110", "6006"], "kg"),
        ("Confecciones", ["1410"], ["6203", "6204", "6205"], "pieces"),
    ],
}
COMMON_STEMS = {
    "IN": ["Sri Balaji", "Shree Ganesh", "Sri Lakshmi", "Jai Mata Di", "{town}", "{town}", "New {town}"],
    "EC": ["{town}", "{town}", "Andina", "San Luis", "{town} Andino"],
}
# Legal forms as registers write them, abbreviated and written out.
COMMON_LEGAL = {
    "IN": [("Pvt Ltd", "Private Limited"), ("Pvt. Ltd.", "Private Limited"), ("LLP", "Limited Liability Partnership")],
    "EC": [("Cía. Ltda.", "Compañía Limitada"), ("S.A.", "Sociedad Anónima"), ("Pvt Ltd", "Private Limited")],
}
CERTIFICATES = ["ISO9001", "OEKOTEX100", "GOTS", "SA8000", "BSCI"]


def common_original(rng: random.Random) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """A firm named like thousands of others in its town; the legal form it states, as (written, other)."""
    country, town, subdivision, lat, lon, postal = rng.choice(COMMON_TOWNS)
    trade, isics, hs_codes, unit = rng.choice(COMMON_TRADES[country])
    stem = rng.choice(COMMON_STEMS[country]).format(town=town)
    legal = rng.choice(COMMON_LEGAL[country]) if rng.random() < 0.7 else None
    if legal is not None and rng.random() < 0.5:
        legal = (legal[1], legal[0])  # written out in the register, abbreviated in the copy
    number = str(rng.randint(1, 999)) if rng.random() < 0.6 else ""
    words = [stem, trade] if rng.random() < 0.7 else [stem]
    if legal is not None:
        words.append(legal[0])
    if number:  # "Otavalo Pvt Ltd 449", or "Unit 449" style before the legal form
        words.insert(len(words) if rng.random() < 0.6 else len(words) - (legal is not None), number)
    radius = rng.random() ** 0.5 * 6.0
    angle = rng.random() * 2 * math.pi
    capacity = rng.choice([500, 1000, 2000, 2500, 5000, 10000, 20000]) * rng.randint(1, 9)
    certificates = rng.sample(CERTIFICATES, k=rng.choice([0, 0, 1, 1, 2]))
    fields = {
        "name": " ".join(words),
        "national_ids": [],  # MSME registers often hold none
        "roles": ["supplier"],
        "size_class": rng.choice(["micro", "micro", "small", "small", "medium"]),
        "isic_codes": rng.sample(isics, k=rng.randint(1, len(isics))),
        "hs_codes": rng.sample(hs_codes, k=rng.randint(1, len(hs_codes))),
        "monthly_capacity": float(capacity),
        "capacity_unit": unit,
        "certifications": [
            {"scheme": scheme, "certificate_number": f"{scheme[:3]}-{rng.randint(10_000, 99_999)}"}
            for scheme in certificates
        ],
        "country": country,
        "subdivision": subdivision,
        "locality": town,
        "postal_code": f"{postal}{rng.randint(0, 9):02d}",
        "street": f"{rng.randint(1, 400)} {rng.choice(IN_ROADS if country == 'IN' else EC_STREETS)}",
        "latitude": round(lat + radius / 111.0 * math.sin(angle), 5),
        "longitude": round(lon + radius / (111.0 * math.cos(math.radians(lat))) * math.cos(angle), 5),
        "employees": int(rng.lognormvariate(2.5, 1.0)) + 1,
    }
    return fields, legal


def _transpose_letters(rng: random.Random, name: str) -> str:
    """Two neighbouring letters swapped in any word of at least three letters, common or not."""
    words = name.split()
    candidates = [i for i, w in enumerate(words) if len(w) >= 3 and w.isalpha() and len(set(w)) > 1]
    i = rng.choice(candidates)
    word = words[i]
    p = rng.choice([k for k in range(len(word) - 1) if word[k] != word[k + 1]])
    words[i] = word[:p] + word[p + 1] + word[p] + word[p + 2 :]
    return " ".join(words)


def _transpose_digits(rng: random.Random, name: str) -> str | None:
    """Two neighbouring digits of the name's number swapped ("449" -> "494"), if it has one that changes."""
    words = name.split()
    for i, word in enumerate(words):
        spots = [k for k in range(len(word) - 1) if word.isdigit() and word[k] != word[k + 1]]
        if spots:
            p = rng.choice(spots)
            words[i] = word[:p] + word[p + 1] + word[p] + word[p + 2 :]
            return " ".join(words)
    return None


def common_duplicate(rng: random.Random, fields: dict[str, Any], legal: tuple[str, str] | None) -> dict[str, Any]:
    """The same firm registered again: one name difference, the place within 100 m, all else equal."""
    dup: dict[str, Any] = {k: (list(v) if isinstance(v, list) else v) for k, v in fields.items()}
    name: str = dup["name"]
    changes = (
        ["letters", "letters"] + (["legal"] if legal else []) + (["digits"] if any(c.isdigit() for c in name) else [])
    )
    change = rng.choice(changes)
    if change == "legal":
        assert legal is not None
        name = name.replace(legal[0], legal[1])
    elif change == "digits":
        name = _transpose_digits(rng, name) or _transpose_letters(rng, name)
    else:
        name = _transpose_letters(rng, name)
    dup["name"] = name
    metres = rng.uniform(0, 100)
    angle = rng.random() * 2 * math.pi
    dup["latitude"] = round(dup["latitude"] + metres / 111_000.0 * math.sin(angle), 5)
    dup["longitude"] = round(
        dup["longitude"] + metres / (111_000.0 * math.cos(math.radians(dup["latitude"]))) * math.cos(angle), 5
    )
    return dup


def common_names(n: int, *, seed: int = 23, duplicate_share: float = 0.25) -> Iterator[Firm]:
    """``n`` originals sharing town and trade words by the thousand, a quarter of them with a copy."""
    rng = random.Random(seed)
    serial = 0
    for index in range(n):
        fields, legal = common_original(rng)
        yield Firm(f"c{serial}", index, fields)
        serial += 1
        if rng.random() < duplicate_share:
            yield Firm(f"c{serial}", index, common_duplicate(rng, fields, legal))
            serial += 1
