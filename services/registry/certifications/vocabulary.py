"""The certification schemes the registry knows from its first migration."""

from __future__ import annotations

# code, name, category, issuer
SEED_SCHEMES: list[tuple[str, str, str, str]] = [
    ("iso-9001", "ISO 9001 Quality management systems", "quality", "ISO"),
    ("iso-14001", "ISO 14001 Environmental management systems", "environment", "ISO"),
    ("iso-45001", "ISO 45001 Occupational health and safety", "occupational_safety", "ISO"),
    ("iso-50001", "ISO 50001 Energy management systems", "energy", "ISO"),
    ("iso-22000", "ISO 22000 Food safety management", "food_safety", "ISO"),
    ("iso-13485", "ISO 13485 Medical devices quality management", "quality", "ISO"),
    ("iatf-16949", "IATF 16949 Automotive quality management", "quality", "IATF"),
    ("haccp", "HACCP Hazard analysis and critical control points", "food_safety", "Codex Alimentarius"),
    ("fssc-22000", "FSSC 22000 Food safety system certification", "food_safety", "Foundation FSSC"),
    ("brcgs-food", "BRCGS Global Standard for Food Safety", "food_safety", "BRCGS"),
    ("globalgap", "GLOBALG.A.P. Integrated Farm Assurance", "food_safety", "GLOBALG.A.P."),
    ("sa8000", "SA8000 Social accountability", "social", "Social Accountability International"),
    ("amfori-bsci", "amfori BSCI Code of Conduct audit", "social", "amfori"),
    ("smeta", "SMETA Sedex members ethical trade audit", "social", "Sedex"),
    ("wrap", "WRAP Worldwide Responsible Accredited Production", "social", "WRAP"),
    ("fair-trade", "Fairtrade certification", "social", "Fairtrade International"),
    ("oeko-tex-100", "OEKO-TEX Standard 100", "textile", "OEKO-TEX"),
    ("gots", "GOTS Global Organic Textile Standard", "textile", "Global Standard gGmbH"),
    ("bluesign", "bluesign system partner", "textile", "bluesign technologies"),
    ("fsc", "FSC Forest Stewardship Council chain of custody", "forestry", "Forest Stewardship Council"),
    ("pefc", "PEFC chain of custody", "forestry", "PEFC"),
    ("ce-marking", "CE marking conformity", "quality", "European Union"),
    ("zed", "ZED Zero Defect Zero Effect", "quality", "Ministry of MSME, India"),
]
