"""What the benchmarks share: running the pipeline's CLI with its wall time and the peak memory of its whole
process tree, its seconds per component from MLMD, the Trainer's history, and generated image folders."""

from __future__ import annotations

import glob
import json
import os
import random
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

import psutil

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TFX_IMAGE_FINETUNE_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
CATS_DOGS = os.path.join(SHARED, "data", "cats_and_dogs_filtered")
MOBILENET_WEIGHTS = os.path.join(SHARED, "weights",
                                 "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5")
CLI = [os.path.join(os.path.dirname(sys.executable), "tfx-image-finetune")]


def _tree_rss(root: int) -> int:
    """Resident bytes of `root` and all its descendants now (processes that end meanwhile count 0)."""
    try:
        top = psutil.Process(root)
        tree = [top, *top.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in tree:
        try:
            total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def run_cli(args: List[str], log_path: Optional[str] = None) -> Dict[str, float]:
    """`tfx-image-finetune ARGS`: exit code, wall seconds, peak resident MiB of its process tree (0.2 s polls)."""
    start = time.monotonic()
    with open(log_path or os.devnull, "w") as log:
        proc = subprocess.Popen(CLI + args, stdout=log, stderr=subprocess.STDOUT)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _tree_rss(proc.pid))
            time.sleep(0.2)
    return {"exit_code": proc.returncode, "seconds": round(time.monotonic() - start, 1),
            "peak_mib": round(peak / 2 ** 20)}


def component_seconds(output: str) -> Dict[str, float]:
    """{component: seconds of its latest execution} from the run's MLMD."""
    from tfx_image_finetune.report.run_summary import execution_seconds

    return {name: round(seconds, 1) for name, seconds in execution_seconds(os.path.join(output, "metadata.sqlite")).items()}


def trainer_history(output: str) -> Dict:
    """The latest Trainer's history.json (its `seconds`: phase-1 features and each phase's fit)."""
    paths = glob.glob(os.path.join(output, "pipeline_root", "Trainer", "model_run", "*", "history.json"))
    if not paths:
        return {}
    with open(max(paths, key=lambda p: int(p.split(os.sep)[-2]))) as f:
        return json.load(f)


def fit_seconds(history: Dict) -> float:
    return round(sum((history.get("seconds") or {}).values()), 1)


def accuracy(output: str) -> Tuple[float, int]:
    """(the Evaluator's accuracy on the test split, its example count)."""
    from tfx_image_finetune.report.run_summary import eval_metrics

    metrics = eval_metrics(os.path.join(output, "metadata.sqlite"))
    value = metrics.get("binary_accuracy", metrics.get("sparse_categorical_accuracy"))
    return value, int(metrics.get("example_count", 0))


def generated_folder(root: str, classes: int, per_class: int, size: int = 160, seed: int = 0) -> str:
    """<root>/<class>/<n>.jpg: `classes` kinds of drawn shapes on noisy backgrounds, deterministic by seed;
    written once (a folder with the right file count is reused)."""
    from PIL import Image, ImageDraw, ImageFilter

    done = os.path.join(root, ".complete")
    if os.path.exists(done):
        return root
    rng = random.Random(seed)
    for c in range(classes):
        folder = os.path.join(root, f"class_{c}")
        os.makedirs(folder, exist_ok=True)
        hue = (c * 97) % 256
        for n in range(per_class):
            image = Image.new("RGB", (size, size), (hue, rng.randint(0, 255), 255 - hue))
            draw = ImageDraw.Draw(image)
            for _ in range(3):
                x, y, r = rng.randint(0, size), rng.randint(0, size), rng.randint(size // 10, size // 3)
                box = (x - r, y - r, x + r, y + r)
                color = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
                [draw.ellipse, draw.rectangle, draw.pieslice][c % 3](
                    box, fill=color, **({"start": 0, "end": 270} if c % 3 == 2 else {}))
            image = image.filter(ImageFilter.GaussianBlur(rng.random()))
            image.save(os.path.join(folder, f"{n:06d}.jpg"), quality=85)
    open(done, "w").close()
    return root


def parse_with_budget(p, argv, head_epochs: int, finetune_epochs: int):
    """The epoch budget, the work folder and --json, shared by the scripts; prints the machine and settings."""
    import tempfile

    p.add_argument("--head-epochs", type=int, default=head_epochs)
    p.add_argument("--finetune-epochs", type=int, default=finetune_epochs)
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "tfx_image_finetune_bench"),
                   help="generated images (kept between runs) and the runs' output folders")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    print(machine_line())
    print(settings_line(args))
    return args


def settings_line(args) -> str:
    return "settings: " + ", ".join(f"{k}={v}" for k, v in sorted(vars(args).items()))


def machine_line() -> str:
    mem = psutil.virtual_memory().total // 2 ** 30
    return f"machine: {os.cpu_count()} CPU cores, {mem} GiB memory, load {os.getloadavg()[0]:.2f} at the start"
