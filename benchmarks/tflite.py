"""--tflite on real data: SavedModel vs float TFLite vs int8 TFLite, accuracy, size, latency, and the export's cost.

One pipeline run (the README's real-data command, + `--tflite int8`) gives the SavedModel and the int8 model,
judged by TFLiteGate on the 500 validation photos (the test split). The float model is then converted from the
same trained weights (restored from the SavedModel into a freshly built Keras model, as --warm-start does) and
judged by the same code (components/tflite_gate/executor.evaluate). Latency: per image on one CPU thread, in a
fresh one-thread process (components/tflite_gate/latency.py); the SavedModel's includes decoding the image.
The export's cost: the Trainer's export seconds (tflite/export.json) + TFLiteGate's seconds, against the run.

    .venv/bin/python benchmarks/tflite.py --json tflite.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=common.CATS_DOGS, help="image folder (default: ../shared cats and dogs)")
    p.add_argument("--weights", default=common.MOBILENET_WEIGHTS, help="MobileNetV2-0.35 ImageNet weights file")
    p.add_argument("--output", help="working folder (default: a temporary one)")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more `run` flags (e.g. --head-epochs 2)")
    p.add_argument("--json", help="write the figures here too")
    return p.parse_args(argv)


def float_model(model_uri: str, tmp: str, image_size: int) -> str:
    """The run's trained Keras model, restored from its SavedModel, converted to float TFLite; the file's path."""
    from tfx_image_finetune.component_configs import TrainerConfig
    from tfx_image_finetune.serving_contract import exported_task
    from tfx_image_finetune.trainer import tflite
    from tfx_image_finetune.trainer.model import build_model
    from tfx_image_finetune.trainer.warm_start import restore

    saved_model = os.path.join(model_uri, "Format-Serving")
    classes, config = exported_task(saved_model)
    model_cfg = TrainerConfig.from_custom_config(config).model
    model, _ = build_model(model_cfg, len(classes), None)
    restore(model, saved_model)
    return os.path.join(tflite.export(model, classes, image_size, "float", tmp), "model.tflite")


def main(argv=None) -> None:
    args = parse_args(argv)
    out = args.output or tempfile.mkdtemp(prefix="tflite-bench-")
    os.makedirs(out, exist_ok=True)
    run = common.run_cli(["run", "--data", args.data, "--backbone", "mobilenet_v2", "--alpha", "0.35",
                          "--weights", args.weights, "--tflite", "int8", "--output", out, *args.extra],
                         os.path.join(out, "run.log") if args.output else None)
    assert run["exit_code"] == 0, f"the run failed ({run}); see {out}/logs"

    import tensorflow as tf
    import tensorflow_transform as tft

    from tfx_image_finetune.components.tflite_gate.executor import evaluate
    from tfx_image_finetune.report import run_summary
    from tfx_image_finetune.trainer.transform import IMAGE_XF, LABEL_XF

    metadata = os.path.join(out, "metadata.sqlite")
    int8 = run_summary.tflite_evaluation(metadata)
    model_uri = run_summary.latest_artifact_uri(metadata, "Model")
    examples = run_summary.latest_artifact_uri(metadata, "Examples")
    graph = run_summary.latest_artifact_uri(metadata, "TransformGraph")
    size = json.load(open(os.path.join(model_uri, "Format-Serving", "assets.extra", "training_summary.json")))[
        "config"]["image_size"]
    with tempfile.TemporaryDirectory() as tmp:
        float_path = float_model(model_uri, tmp, size)
        floats = evaluate(tf.io.gfile.glob(os.path.join(examples, "Split-test", "*")),
                          os.path.join(model_uri, "Format-Serving"), float_path, tft.TFTransformOutput(graph),
                          IMAGE_XF, LABEL_XF)
    seconds = common.component_seconds(out)
    export_s = int8["export"]["seconds"]
    figures = {
        "test_examples": int8["examples"],
        "accuracy": {"saved_model": int8["saved_model_accuracy"], "float": floats["tflite_accuracy"],
                     "int8": int8["tflite_accuracy"]},
        "agreement_with_saved_model": {"float": floats["agreement"], "int8": int8["agreement"]},
        "bytes": {"saved_model": int8["saved_model_bytes"], "float": floats["tflite_bytes"], "int8": int8["tflite_bytes"]},
        "ms_per_image_1_thread": {"saved_model": int8["saved_model_ms_per_image"],
                                  "float": floats["tflite_ms_per_image"], "int8": int8["tflite_ms_per_image"]},
        "run_seconds": run["seconds"], "trainer_seconds": seconds.get("Trainer"),
        "export_seconds": export_s, "gate_seconds": seconds.get("TFLiteGate"),
        "int8_passed": int8["passed"], "reason": int8["reason"],
    }
    a, b, ms = figures["accuracy"], figures["bytes"], figures["ms_per_image_1_thread"]
    print(f"accuracy on {int8['examples']} test photos: SavedModel {a['saved_model']:.4f}, float {a['float']:.4f}, "
          f"int8 {a['int8']:.4f} ({100 * (a['int8'] - a['saved_model']):+.1f} points)")
    print(f"size: SavedModel {b['saved_model'] / 1e6:.2f} MB, float {b['float'] / 1e6:.2f} MB, int8 "
          f"{b['int8'] / 1e6:.2f} MB (int8 {b['saved_model'] / b['int8']:.1f}x smaller than the SavedModel, "
          f"{b['float'] / b['int8']:.1f}x than float)")
    print(f"ms/image, 1 thread: SavedModel {ms['saved_model']:.1f} (decode included), float {ms['float']:.1f}, int8 "
          f"{ms['int8']:.1f} (int8 {ms['float'] / ms['int8']:.2f}x faster than float, "
          f"{ms['saved_model'] / ms['int8']:.2f}x than the SavedModel)")
    added = export_s + (figures["gate_seconds"] or 0)
    print(f"export cost: {export_s:.1f} s in the Trainer + {figures['gate_seconds']} s TFLiteGate = {added:.1f} s of a "
          f"{run['seconds']:.0f} s run ({100 * added / run['seconds']:.1f}%); {int8['reason']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
