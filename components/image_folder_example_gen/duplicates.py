"""Exact and near-duplicate images across the splits, so a copy of a training image cannot inflate the verdict.

Scraped image sets hold byte-identical copies under other names and resized / re-encoded copies. A copy of a
training image in selection or test measures memory, not generalisation, so by default it is kept out of those
splits (the train copy wins); copies inside one split are kept and counted; the same image under two labels is
kept and listed (which label is right is the user's call, and dropping would silently shrink a class).

How, and how it scales: each example gets a fingerprint in a Beam step (sha256 of the file bytes and a 64-bit
dHash of a 9x8 grayscale thumbnail, JPEGs decoded at reduced size by PIL's draft mode), so the decoding runs in
the workers. The fingerprints (~150 bytes each, ~15 MB for 100k files) are gathered on one worker and grouped
there: exact copies by sha256, near copies by Hamming distance <= NEAR_DISTANCE between distinct dHashes, found
by banding (4 bands of 16 bits: two hashes within distance 3 agree on at least one band, so only hashes that
share a band are compared). With uniformly spread hashes that is ~2 n^2 / 65536 comparisons instead of n^2 / 2
(100k hashes: 0.3 M, `find` in ~2 s on one core); real photos' hashes are less even (the 3,993 shared photos:
3,056 comparisons, 6x the uniform figure, largest bucket 18). A set of flat or near-identical images costs more:
a bucket is compared in full. Identical files and identical dHashes are grouped first, so k copies of one image
cost O(k), not O(k^2).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

# Measured on the shared photos (benchmarks/near_duplicates.py): at <= 3 no false pair among 3,993 real photos.
NEAR_DISTANCE = 3
BANDS, BAND_BITS = 4, 16  # pigeonhole: distance <= BANDS - 1 = 3 leaves one band equal
MAX_LISTED = 50  # pairs kept in the report per kind; the counts are complete
SPLIT_ORDER = ("train", "selection", "test")
FILE_NAME = "duplicates.json"


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dhash(data: bytes) -> Optional[int]:
    """64-bit difference hash: bit set where a pixel of a 9x8 grayscale thumbnail is brighter than its right
    neighbour. Survives resizing and re-encoding; None if PIL cannot read the image (exact hash only then)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's DecompressionBombWarning: the draft keeps the decode small
            image = Image.open(io.BytesIO(data))
            image.draft("L", (64, 64))  # JPEG: decode at 1/2..1/8 scale, still >= 64 px
            small = image.convert("L").resize((9, 8), Image.LANCZOS)
    except Exception:  # noqa: BLE001 (any unreadable image: TF decoded it, PIL need not)
        return None
    pixels = list(small.getdata())
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (pixels[row * 9 + col] > pixels[row * 9 + col + 1])
    return bits


def fingerprint(split: str, path: str, label: str, data: bytes) -> Dict[str, Any]:
    return {"split": split, "path": path, "label": label, "sha256": content_hash(data), "dhash": dhash(data)}


def near_neighbours(hashes: Iterable[int], distance: int = NEAR_DISTANCE) -> Dict[int, Set[int]]:
    """{hash: other hashes within `distance` bits}, comparing only hashes that share a 16-bit band."""
    if distance >= BANDS:
        raise ValueError(f"banding with {BANDS} bands finds distances up to {BANDS - 1}, not {distance}")
    buckets: Dict[Tuple[int, int], List[int]] = {}
    for h in sorted(set(hashes)):
        for band in range(BANDS):
            buckets.setdefault((band, (h >> (band * BAND_BITS)) & 0xFFFF), []).append(h)
    out: Dict[int, Set[int]] = {}
    for members in buckets.values():
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                if bin(a ^ b).count("1") <= distance:
                    out.setdefault(a, set()).add(b)
                    out.setdefault(b, set()).add(a)
    return out


def _order(record: Dict[str, Any]) -> Tuple[int, str, str]:
    split = record["split"]
    return (SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER), split, record["path"])


def _pair(record: Dict[str, Any], original: Dict[str, Any]) -> Dict[str, Any]:
    same = record["sha256"] == original["sha256"]
    return {"path": record["path"], "split": record["split"], "label": record["label"],
            "copy_of": original["path"], "copy_of_split": original["split"], "copy_of_label": original["label"],
            "match": "exact" if same else f"near (dHash distance {bin(record['dhash'] ^ original['dhash']).count('1')})"}


def find(records: Iterable[Dict[str, Any]], distance: int = NEAR_DISTANCE) -> Dict[str, Any]:
    """The findings over every split's fingerprints (deterministic: the order is split, then path).

    Each file is compared with the files earlier in that order that are exact or near copies of it:
    - a copy of a training file in another split is dropped ("kept_out", the train file named);
    - else a copy of an earlier file of its own split is counted ("within", kept);
    - else a copy of an earlier file of another split, neither train, is counted ("across", kept);
    - independently, a copy of an earlier file under another label is listed ("conflicting_labels", kept).
    """
    records = sorted(records, key=_order)
    groups: Dict[Any, List[Dict[str, Any]]] = {}
    for r in records:  # one group per content hash and one per dHash value, each in order
        groups.setdefault(("sha", r["sha256"]), []).append(r)
        if r["dhash"] is not None:
            groups.setdefault(("dhash", r["dhash"]), []).append(r)
    neighbours = near_neighbours((r["dhash"] for r in records if r["dhash"] is not None), distance)
    firsts = {key: _firsts(members) for key, members in groups.items()}
    kept_out: List[Dict[str, Any]] = []
    within: List[Dict[str, Any]] = []
    across: List[Dict[str, Any]] = []
    conflicts: List[Dict[str, Any]] = []
    for r in records:
        keys = [("sha", r["sha256"])]
        if r["dhash"] is not None:
            keys += [("dhash", r["dhash"])] + [("dhash", h) for h in sorted(neighbours.get(r["dhash"], ()))]
        earlier = [f for key in keys for f in firsts[key] if _order(f) < _order(r)]
        if not earlier:
            continue
        train = [f for f in earlier if f["split"] == SPLIT_ORDER[0]]
        same_split = [f for f in earlier if f["split"] == r["split"]]
        if train and r["split"] != SPLIT_ORDER[0]:
            kept_out.append(_pair(r, min(train, key=_order)))
        elif same_split:
            within.append(_pair(r, min(same_split, key=_order)))
        else:
            across.append(_pair(r, min(earlier, key=_order)))
        other_label = [f for f in earlier if f["label"] != r["label"]]
        if other_label:
            conflicts.append(_pair(r, min(other_label, key=_order)))
    return _summary(kept_out, within, across, conflicts, len(records), distance)


def _firsts(members: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The first member of each (split, label) of a group: enough to find every earlier copy's kind and label,
    and it keeps a group of k identical files O(k), not O(k^2)."""
    seen: Dict[Tuple[str, str], Dict[str, Any]] = {}
    for m in members:
        seen.setdefault((m["split"], m["label"]), m)
    return list(seen.values())


def _count(pairs: List[Dict[str, Any]]) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for p in pairs:
        out[p["split"]] = out.get(p["split"], 0) + 1
    return dict(sorted(out.items(), key=lambda kv: _order({"split": kv[0], "path": ""})))


def _summary(kept_out, within, across, conflicts, files: int, distance: int) -> Dict[str, Any]:
    return {
        "files_compared": files,
        "near_duplicate_hash": f"64-bit dHash, Hamming distance <= {distance}",
        "kept_out": len(kept_out), "kept_out_per_split": _count(kept_out),
        "within_split": _count(within), "across_splits": len(across), "conflicting_labels": len(conflicts),
        "dropped_paths": sorted(p["path"] for p in kept_out),
        "pairs": {"kept_out": kept_out[:MAX_LISTED], "within_split": within[:MAX_LISTED],
                  "across_splits": across[:MAX_LISTED], "conflicting_labels": conflicts[:MAX_LISTED]},
        "listed_max": MAX_LISTED,
    }


def read(rows_dir: str) -> Optional[Dict[str, Any]]:
    """The findings written by keep_out_copies, without the full list of dropped paths (the pairs name them)."""
    import tensorflow as tf

    path = os.path.join(rows_dir, FILE_NAME)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        findings = json.loads(f.read())
    findings.pop("dropped_paths", None)
    return findings


def _first_bytes(example: Any, key: str) -> bytes:
    """The first bytes value of a feature of a tf.Example (or its serialized bytes), b'' if none."""
    import tensorflow as tf

    if isinstance(example, bytes):
        example = tf.train.Example.FromString(example)
    feature = example.features.feature
    values = feature[key].bytes_list.value if key in feature else []
    return values[0] if values else b""


def _example_fingerprint(example: Any, split: str) -> Dict[str, Any]:
    from tfx_image_finetune.data_contract import FILENAME_FEATURE

    text = lambda key: _first_bytes(example, key).decode("utf-8", "replace")  # noqa: E731
    return fingerprint(split, text(FILENAME_FEATURE), text("label"), _first_bytes(example, "image"))


def _path_of(example: Any) -> str:
    from tfx_image_finetune.data_contract import FILENAME_FEATURE

    return _first_bytes(example, FILENAME_FEATURE).decode("utf-8", "replace")


def keep_out_copies(example_splits: Dict[str, Any], rows_dir: str, train_split: str = SPLIT_ORDER[0]
                    ) -> Dict[str, Any]:
    """Adds to the Beam pipeline: every split's fingerprints, the findings (<rows_dir>/duplicates.json, see
    `read`), and each split but train without the copies of training images. Returns the new splits."""
    import apache_beam as beam

    prints = [examples | f"Fingerprint[{split}]" >> beam.Map(_example_fingerprint, split)
              for split, examples in example_splits.items()]
    findings = (
        prints
        | "AllFingerprints" >> beam.Flatten()
        | "GatherFingerprints" >> beam.combiners.ToList()
        | "FindDuplicates" >> beam.Map(find)
    )
    _ = (findings
         | "DuplicatesJson" >> beam.Map(json.dumps)
         | "WriteDuplicates" >> beam.io.WriteToText(os.path.join(rows_dir, os.path.splitext(FILE_NAME)[0]),
                                                    file_name_suffix=".json", shard_name_template=""))
    dropped = beam.pvalue.AsSingleton(findings | "DroppedPaths" >> beam.Map(lambda f: frozenset(f["dropped_paths"])))
    return {split: examples if split == train_split else
            examples | f"KeepOutCopies[{split}]" >> beam.Filter(lambda ex, out: _path_of(ex) not in out, dropped)
            for split, examples in example_splits.items()}
