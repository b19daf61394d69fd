"""How often the near-duplicate hash (ExampleGen's dHash) pairs real photos, and whether it finds real copies.

For each shared photo set (cats/dogs: train + validation, 2,500; flowers5: 1,493) it fingerprints every photo as
the ExampleGen does, then compares all pairs by brute force (numpy) and prints the pairs per Hamming distance:
every pair at or below the threshold is flagged, and a flagged pair is either a true copy (the same photo,
resized / re-encoded / lightly edited) or a false positive, which a person decides by looking at it: --inspect
DIR writes each flagged pair side by side as a PNG. It also checks that the banded search (duplicates.
near_neighbours) finds every brute-force pair within the threshold, and measures recall on synthetic copies
(each of --copies photos resized to 60 % and re-encoded at JPEG quality 70).

    .venv/bin/python benchmarks/near_duplicates.py [--max-distance 10] [--inspect /tmp/pairs] [--json out.json]

Measured (dHash, threshold 3; pairs looked at by a person):
- cats/dogs, 2,500 photos, 3,123,750 pairs: no exact copy; 1 pair at distance <= 3 (dog.74 / dog.180, the same
  photo: a true copy); the next pairs are at 6 (different dogs), 8 (a cat and a dog): false positives start at 6.
- flowers5, 1,493 photos, 1,113,778 pairs: no exact copy; 1 pair at <= 3 (two daisy photos, one a grayscale
  version: a true copy); at 4, 5 and 7 the same photos recoloured (true copies the threshold misses); at 8 a
  different dandelion (false).
- so 0 false positives in 4,237,528 pairs at <= 3 (also 0 up to 5); recall on resized (60 %) + re-encoded (q70)
  copies: 298 / 300 (cats/dogs) and 291 / 300 (flowers5); the rest were at 4-5. Hashing: ~1.4 ms per photo.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from tfx_image_finetune.components.image_folder_example_gen import duplicates  # noqa: E402

SETS = {"cats_dogs": common.CATS_DOGS, "flowers5": os.path.join(common.SHARED, "data", "flowers5")}
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def photos(root: str) -> List[str]:
    out = []
    for dirpath, _, names in os.walk(root):
        out += [os.path.join(dirpath, n) for n in names if n.lower().endswith((".jpg", ".jpeg", ".png"))]
    return sorted(out)


def distances(hashes: np.ndarray) -> np.ndarray:
    """n x n Hamming distances of uint64 hashes (row by row, to keep memory at n^2 bytes)."""
    out = np.empty((len(hashes), len(hashes)), dtype=np.uint8)
    for i, h in enumerate(hashes):
        out[i] = _POPCOUNT[(hashes ^ h).view(np.uint8).reshape(-1, 8)].sum(axis=1)
    return out


def side_by_side(a: str, b: str, target: str) -> None:
    left, right = Image.open(a).convert("RGB"), Image.open(b).convert("RGB")
    left.thumbnail((320, 320)), right.thumbnail((320, 320))
    canvas = Image.new("RGB", (650, 320), (255, 255, 255))
    canvas.paste(left, (0, 0)), canvas.paste(right, (330, 0))
    canvas.save(target)


def measure(name: str, root: str, max_distance: int, inspect: str) -> Dict:
    files = photos(root)
    start = time.time()
    prints = []
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        prints.append((duplicates.content_hash(data), duplicates.dhash(data)))
    seconds = time.time() - start
    hashes = np.array([h for _, h in prints], dtype=np.uint64)
    d = distances(hashes)
    upper = np.triu(np.ones_like(d, dtype=bool), k=1)
    per_distance = {k: int(((d == k) & upper).sum()) for k in range(max_distance + 1)}
    exact = sum(1 for i in range(len(files)) for j in range(i + 1, len(files)) if prints[i][0] == prints[j][0]
                ) if len(files) < 5000 else None
    flagged = [(int(i), int(j), int(d[i, j])) for i, j in zip(*np.nonzero((d <= max_distance) & upper))]
    flagged.sort(key=lambda t: (t[2], t[0], t[1]))
    banded = duplicates.near_neighbours([int(h) for h in hashes])
    brute = {(int(hashes[i]), int(hashes[j])) for i, j, k in flagged if k <= duplicates.NEAR_DISTANCE
             and hashes[i] != hashes[j]}
    missed = [p for p in brute if p[1] not in banded.get(p[0], set())]
    if inspect:
        os.makedirs(inspect, exist_ok=True)
        for i, j, k in flagged:
            side_by_side(files[i], files[j], os.path.join(inspect, f"{name}_d{k:02d}_{i}_{j}.png"))
    rel = lambda i: os.path.relpath(files[i], root)  # noqa: E731
    return {"set": name, "photos": len(files), "pairs": len(files) * (len(files) - 1) // 2,
            "seconds_to_hash": round(seconds, 2), "exact_pairs": exact, "pairs_per_distance": per_distance,
            "flagged_at_threshold": sum(v for k, v in per_distance.items() if k <= duplicates.NEAR_DISTANCE),
            "banded_search_missed": len(missed),
            "flagged": [{"a": rel(i), "b": rel(j), "distance": k} for i, j, k in flagged]}


def recall(root: str, copies: int) -> Dict:
    """Distances from photos to their resized (60 %) + re-encoded (quality 70) copies."""
    files = photos(root)[::max(1, len(photos(root)) // copies)][:copies]
    found = []
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        image = Image.open(io.BytesIO(data)).convert("RGB")
        image = image.resize((max(1, image.width * 6 // 10), max(1, image.height * 6 // 10)), Image.BILINEAR)
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=70)
        found.append(bin(duplicates.dhash(data) ^ duplicates.dhash(buf.getvalue())).count("1"))
    return {"copies": len(found), "found_at_threshold": sum(k <= duplicates.NEAR_DISTANCE for k in found),
            "max_distance": max(found), "distances": {k: found.count(k) for k in sorted(set(found))}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-distance", type=int, default=10, help="list pairs up to this distance")
    p.add_argument("--copies", type=int, default=300)
    p.add_argument("--inspect", default="", help="write flagged pairs side by side into this folder")
    p.add_argument("--json", default="")
    args = p.parse_args(argv)
    results = {"threshold": duplicates.NEAR_DISTANCE, "sets": [], "recall": {}}
    for name, root in SETS.items():
        if not os.path.isdir(root):
            print(f"{name}: {root} not found, skipped")
            continue
        r = measure(name, root, args.max_distance, args.inspect)
        results["sets"].append(r)
        results["recall"][name] = recall(root, args.copies)
        print(f"{name}: {r['photos']} photos ({r['pairs']} pairs), hashed in {r['seconds_to_hash']} s; "
              f"exact-copy pairs {r['exact_pairs']}; pairs per dHash distance {r['pairs_per_distance']}; "
              f"flagged at <= {duplicates.NEAR_DISTANCE}: {r['flagged_at_threshold']}; "
              f"banded search missed {r['banded_search_missed']}")
        for f in r["flagged"]:
            if f["distance"] <= max(duplicates.NEAR_DISTANCE + 3, 6):
                print(f"  d={f['distance']}: {f['a']}  {f['b']}")
        print(f"  resized + re-encoded copies: {results['recall'][name]}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
