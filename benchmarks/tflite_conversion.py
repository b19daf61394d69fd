"""The TFLite conversion's own cost: trainer/tflite.convert (the classifier function frozen) against the
converter's default SavedModel round trip (`experimental_lower_to_saved_model` left on), same model, same run,
with the largest difference between the two flatbuffers' outputs on the same images.

    .venv/bin/python benchmarks/tflite_conversion.py --backbone mobilenet_v2 --alpha 0.35 --image-size 160
"""

from __future__ import annotations

import argparse
import json
import time


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="mobilenet_v2")
    p.add_argument("--alpha", type=float, default=0.35)
    p.add_argument("--image-size", type=int, default=160)
    p.add_argument("--classes", type=int, default=2)
    p.add_argument("--json", help="write the figures here too")
    return p.parse_args(argv)


def outputs(flatbuffer: bytes, images, mode: str):
    import numpy as np
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    given, answer = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    out = []
    for image in images:
        interpreter.set_tensor(given["index"], image[None].astype(np.uint8 if mode == "int8" else np.float32))
        interpreter.invoke()
        out.append(interpreter.get_tensor(answer["index"]).astype(np.float64))
    return np.array(out)


def main(argv=None) -> None:
    args = parse_args(argv)
    import numpy as np

    from tfx_image_finetune.config import ModelConfig
    from tfx_image_finetune.trainer import tflite
    from tfx_image_finetune.trainer.model import build_model

    cfg = ModelConfig(backbone=args.backbone, alpha=args.alpha, image_size=args.image_size, weights="none")
    model, _ = build_model(cfg, args.classes, None, 0)
    rng = np.random.default_rng(0)
    images = [rng.uniform(0, 255, (args.image_size, args.image_size, 3)).astype(np.float32) for _ in range(8)]
    figures = {}
    for mode in ("float", "int8"):
        start = time.monotonic()
        frozen = tflite.convert(model, args.classes, args.image_size, mode, images)
        frozen_s = time.monotonic() - start
        converter = tflite.converter(model, args.classes, args.image_size, mode, images)
        converter.experimental_lower_to_saved_model = True  # TF's default: a SavedModel round trip
        start = time.monotonic()
        round_trip = converter.convert()
        round_trip_s = time.monotonic() - start
        figures[mode] = {"frozen_s": round(frozen_s, 2), "saved_model_round_trip_s": round(round_trip_s, 2),
                         "ratio": round(frozen_s / round_trip_s, 3),
                         "max_output_difference": float(np.abs(outputs(frozen, images, mode)
                                                               - outputs(round_trip, images, mode)).max())}
        print(f"{mode}: frozen {frozen_s:.1f} s, SavedModel round trip {round_trip_s:.1f} s, "
              f"ratio {figures[mode]['ratio']}, largest output difference {figures[mode]['max_output_difference']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "figures": figures}, f, indent=2)


if __name__ == "__main__":
    main()
