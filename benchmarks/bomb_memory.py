"""What a refused decompression bomb costs the process serving the model (issue 20): RSS before and after.

Loads an exported SavedModel in a fresh subprocess, as TF Serving holds it (--model-dir: a pushed version or
model folder; default: a minimal one built with the project's export code, `tests/image_bombs.export_model`,
96 px, the default pixel limit), answers one normal image, then sends each request to `serving_default` and
records the process's RSS (psutil) before and after it and the growth of its peak RSS (VmHWM, reset before
each request). Requests: the real 20000x20000 JPEG (1.6 MB) and PNGs (1-bit, 49 KB; 8-bit RGB, the issue's
kind), a GIF header claiming 20000x20000 and a real GIF of 12 frames of 3000x3000 (108 MP, all read by
giflib), each refused; last, a real 4000x4000 JPEG under the limit as the control (decoded, so its growth
shows the measurement sees a decode). Before the limit one such JPEG peaked at 6.6 GB. Goal: a refused bomb
grows the process well under 1 GB.

    .venv/bin/python benchmarks/bomb_memory.py [--model-dir DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOAL_MB = 1024
MB = 1 << 20


def _build(folder: str) -> str:
    """The minimal exported model (in this process: it is a child of main's)."""
    sys.path.insert(0, REPO)
    from tests.image_bombs import export_model
    from tfx_image_finetune.component_configs import TransformConfig
    from tfx_image_finetune.config import PipelineConfig

    cfg = PipelineConfig()
    cfg.model.image_size = 96
    export_model(folder, TransformConfig.of(cfg).to_custom_config())
    return os.path.join(folder, "model")


def _write_requests(folder: str) -> str:
    """The request files and a manifest (name, file), written by the parent: making them (PIL's animated GIF
    holds its frames) must not raise the measured process's peak."""
    sys.path.insert(0, REPO)
    from tests.image_bombs import BOMB_SIDE, animated_gif, claiming, jpeg_bomb, png_bomb

    side = BOMB_SIDE
    requests = [(f"JPEG {side}x{side} (real)", jpeg_bomb()), (f"PNG {side}x{side} 1-bit (real)", png_bomb()),
                (f"PNG {side}x{side} RGB (real)", png_bomb(rgb=True)),
                (f"GIF header claiming {side}x{side}", claiming("GIF", side, side)),
                ("GIF 12 frames of 3000x3000 (real)", animated_gif(3000, 12)),
                ("control: JPEG 4000x4000 (real, under the limit)", jpeg_bomb(4000, 4000))]
    manifest = []
    for i, (name, data) in enumerate(requests):
        path = os.path.join(folder, f"request-{i}")
        with open(path, "wb") as f:
            f.write(data)
        manifest.append((name, path))
    path = os.path.join(folder, "requests.json")
    with open(path, "w") as f:
        json.dump(manifest, f)
    return path


def _reset_peak() -> None:
    """Linux: the peak RSS (VmHWM) starts again from the current RSS (proc(5), clear_refs)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak() -> int:
    """The process's peak RSS in bytes (VmHWM) since the last _reset_peak."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


def _measure(model_dir: str, manifest: str) -> list:
    """In a fresh process: one row per request (bytes, refused or answered, RSS before/after, peak growth)."""
    import psutil
    import tensorflow as tf

    sys.path.insert(0, REPO)
    from tests.image_bombs import small_image
    from tfx_image_finetune.serving.predict import latest_version_dir, tf_reason

    serve = tf.saved_model.load(latest_version_dir(model_dir)).signatures["serving_default"]
    serve(image_bytes=tf.constant([small_image("JPEG")]))  # warm: the graph's first run allocates its pools
    process, rows = psutil.Process(), []
    for name, path in json.load(open(manifest)):
        with open(path, "rb") as f:
            data = f.read()
        _reset_peak()
        before, peak_before = process.memory_info().rss, _peak()
        start = time.perf_counter()
        try:
            answer = "answered: " + serve(image_bytes=tf.constant([data]))["classes"].numpy()[0].decode()
        except tf.errors.InvalidArgumentError as err:
            answer = "INVALID_ARGUMENT: " + tf_reason(err.message)
        seconds = time.perf_counter() - start
        after, peak_after = process.memory_info().rss, _peak()
        rows.append({"request": name, "bytes": len(data), "answer": answer, "seconds": round(seconds, 3),
                     "rss_before_mb": round(before / MB, 1), "rss_after_mb": round(after / MB, 1),
                     "rss_growth_mb": round((after - before) / MB, 1),
                     "peak_growth_mb": round(max(0, peak_after - peak_before) / MB, 1)})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", help="an exported or pushed model (default: build a minimal one)")
    p.add_argument("--json", help="also write the rows to this file")
    p.add_argument("--child", choices=["build", "measure"], help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    p.add_argument("--requests", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child == "build":
        print(_build(args.folder))
        return 0
    if args.child == "measure":
        print(json.dumps(_measure(args.model_dir, args.requests)))
        return 0
    with tempfile.TemporaryDirectory() as work:
        model_dir = args.model_dir
        if not model_dir:
            start = time.perf_counter()
            model_dir = _child(["--child", "build", "--folder", work]).strip().splitlines()[-1]
            print(f"built a minimal exported model in {time.perf_counter() - start:.0f} s: {model_dir}")
        requests = _write_requests(work)
        rows = json.loads(_child(["--child", "measure", "--model-dir", model_dir, "--requests", requests]
                                 ).strip().splitlines()[-1])
    for r in rows:
        print(f"{r['request']:<48} {r['bytes'] / 1e6:6.2f} MB  {r['seconds']:6.2f} s  RSS {r['rss_before_mb']:7.1f} -> "
              f"{r['rss_after_mb']:7.1f} MB (+{r['rss_growth_mb']:.1f}), peak +{r['peak_growth_mb']:.1f} MB  "
              f"{r['answer'][:110]}")
    refused = [r for r in rows if r["answer"].startswith("INVALID_ARGUMENT")]
    worst = max(max(r["rss_growth_mb"], r["peak_growth_mb"]) for r in refused)
    print(f"refused {len(refused)} of {len(rows) - 1} bombs; largest growth of a refused request: {worst:.1f} MB "
          f"(goal: under {GOAL_MB} MB)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0 if len(refused) == len(rows) - 1 and worst < GOAL_MB else 1


def _child(extra: list) -> str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), *extra], capture_output=True, text=True,
                          env=env, cwd=REPO)
    if proc.returncode:
        sys.exit(f"bomb_memory: {' '.join(extra[:2])} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


if __name__ == "__main__":
    sys.exit(main())
