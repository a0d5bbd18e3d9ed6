"""Snapshots of the main segment on disk, so a restart loads instead of rebuilding.

A snapshot is a folder of ``.npy`` arrays opened with ``mmap_mode="r"`` (several
worker processes share one copy through the page cache), the bitmaps serialised
into one file, and the fitted text model. It is written to a temporary folder and
renamed into place, so a crash mid-write leaves the previous snapshot intact.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
from pyroaring import BitMap

from services.matching.catalogue.segment import CertificateIntervals, PackedStrings, Segment
from services.matching.catalogue.text import Postings, TextModel

# 4: quarter-degree cells among the facets (distance checks need them); 5: capacity buckets;
# 6: rows clustered by sector and place, with the id ranks
FORMAT = 7  # 7: observed performance (rows whose figures come from scorecards)
KEEP = 2
POSTINGS_ARRAYS = ("repeat_indptr", "repeat_rows", "repeat_counts", "norms", "idf", "max_weights")
_ARRAYS = (
    "ids",
    "id_ranks",
    "rows_by_id",
    "latitude",
    "longitude",
    "capacity",
    "capacity_unit",
    "quality",
    "on_time",
    "observed_rows",
    "observed_counts",
)


def _name(epoch: int, seq: int) -> str:
    return f"snapshot-{epoch:06d}-{seq:012d}"


def save(folder: Path, segment: Segment, text: TextModel, *, epoch: int, seq: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / _name(epoch, seq)
    if final.exists():
        return final
    work = folder / (final.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    for name in _ARRAYS:
        np.save(work / f"{name}.npy", np.asarray(getattr(segment, name)))
    np.save(work / "names_buffer.npy", segment.names.buffer)
    np.save(work / "names_offsets.npy", segment.names.offsets)
    for part in POSTINGS_ARRAYS:
        np.save(work / f"postings_{part}.npy", getattr(segment.postings, part))
    _save_bitmaps(work, "postings_terms", segment.postings.terms)
    schemes = sorted(segment.certificates)
    for part in ("rows", "start", "end"):
        values = [getattr(segment.certificates[s], part) for s in schemes]
        np.save(work / f"cert_{part}.npy", np.concatenate(values) if values else np.empty(0, np.int32))
    cert_offsets = np.cumsum([0] + [len(segment.certificates[s].rows) for s in schemes]).astype(np.int64)
    np.save(work / "cert_offsets.npy", cert_offsets)
    keys = sorted(segment.facets)  # facet keys are strings (``facets.Facet``), stored as they are
    _save_bitmaps(work, "facets", [segment.facets[k] for k in keys])
    _save_bitmaps(work, "bands", segment.bands)
    np.save(work / "band_ceilings.npy", segment.band_ceilings)
    with open(work / "text.pickle", "wb") as handle:
        pickle.dump(text.vectorizer, handle, protocol=pickle.HIGHEST_PROTOCOL)
    meta = {
        "format": FORMAT,
        "epoch": epoch,
        "seq": seq,
        "n": segment.n,
        "units": segment.units,
        "schemes": schemes,
        "facets": keys,
    }
    (work / "meta.json").write_text(json.dumps(meta))
    work.rename(final)
    for old in sorted(p for p in folder.glob("snapshot-*") if not p.name.endswith(".tmp"))[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _save_bitmaps(folder: Path, name: str, bitmaps: list[BitMap]) -> None:
    blobs = [b.serialize() for b in bitmaps]
    (folder / f"{name}.bin").write_bytes(b"".join(blobs))
    np.save(folder / f"{name}_offsets.npy", np.cumsum([0] + [len(b) for b in blobs]))


def _load_bitmaps(folder: Path, name: str) -> list[BitMap]:
    blob = (folder / f"{name}.bin").read_bytes()
    offsets = np.load(folder / f"{name}_offsets.npy")
    return [BitMap.deserialize(blob[offsets[i] : offsets[i + 1]]) for i in range(len(offsets) - 1)]


def latest(folder: Path) -> Path | None:
    candidates = sorted(p for p in folder.glob("snapshot-*") if not p.name.endswith(".tmp")) if folder.exists() else []
    return candidates[-1] if candidates else None


def load(path: Path) -> tuple[Segment, TextModel, int]:
    """The segment, text model and feed position of a snapshot."""
    meta = json.loads((path / "meta.json").read_text())
    if meta["format"] != FORMAT:
        raise ValueError(f"snapshot format {meta['format']} is not {FORMAT}")

    def array(name: str) -> np.ndarray:
        # mapped, not read (pages load on use); as a plain ndarray, which indexes faster than np.memmap
        return np.asarray(np.load(path / f"{name}.npy", mmap_mode="r"))

    with open(path / "text.pickle", "rb") as handle:
        text = TextModel(pickle.load(handle), meta["epoch"])  # our own file, written by save()
    facets = dict(zip(meta["facets"], _load_bitmaps(path, "facets"), strict=True))
    cert_offsets = array("cert_offsets")
    rows, start, end = array("cert_rows"), array("cert_start"), array("cert_end")
    certificates = {
        scheme: CertificateIntervals(
            rows[cert_offsets[i] : cert_offsets[i + 1]],
            start[cert_offsets[i] : cert_offsets[i + 1]],
            end[cert_offsets[i] : cert_offsets[i + 1]],
        )
        for i, scheme in enumerate(meta["schemes"])
    }
    segment = Segment(
        ids=array("ids"),
        id_ranks=array("id_ranks"),
        rows_by_id=array("rows_by_id"),
        names=PackedStrings(array("names_buffer"), array("names_offsets")),
        latitude=array("latitude"),
        longitude=array("longitude"),
        capacity=array("capacity"),
        capacity_unit=array("capacity_unit"),
        units=list(meta["units"]),
        quality=array("quality"),
        on_time=array("on_time"),
        observed_rows=array("observed_rows"),
        observed_counts=array("observed_counts"),
        facets=facets,
        certificates=certificates,
        postings=Postings(
            _load_bitmaps(path, "postings_terms"), *(array(f"postings_{part}") for part in POSTINGS_ARRAYS)
        ),
        bands=_load_bitmaps(path, "bands"),
        band_ceilings=array("band_ceilings"),
        verify_order=False,
    )
    return segment, text, int(meta["seq"])
