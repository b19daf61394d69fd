"""--tflite: the export's contract (float equal to Keras, int8 agreeing with the SavedModel, builtins only,
metadata with labels and normalization) and the gate that refuses a worse TFLite model.

One small classifier is trained for the module: ImageNet MobileNetV2-0.35 at 96 px, head only, on noisy
red/blue images passed through the project's Transform graph; half of them are its test split.
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import standard_artifacts

from tfx_image_finetune.components.tflite_gate.executor import EVALUATION_FILE, PASSED_PROPERTY, Executor
from tfx_image_finetune.config import ModelConfig, Strategy
from tfx_image_finetune.serving_contract import (EXAMPLES_INPUT, EXAMPLES_SIGNATURE, PROBABILITIES, TFLITE_DIR,
                                                 TFLITE_FILE, pixels_of, tflite_probabilities)
from tfx_image_finetune.trainer import tflite
from tfx_image_finetune.trainer.export import ServingModule, export_saved_model
from tfx_image_finetune.trainer.model import build_model, compile_model, probabilities
from tfx_image_finetune.trainer.transform import IMAGE_XF, LABEL_XF
from tests.conftest import MOBILENET_WEIGHTS, color_classes, predict_cli
from tests.helpers import analyze_and_transform

pytestmark = [
    pytest.mark.slow,  # trains a small classifier and converts it three times
    pytest.mark.skipif(not os.path.isfile(MOBILENET_WEIGHTS), reason="needs ../shared MobileNetV2-0.35 weights"),
]
SIZE, CLASSES = 96, ["blue", "red"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """{model, test (examples, images, labels), transform dir, model artifact folders: float, int8, broken}."""
    tmp = tmp_path_factory.mktemp("tflite")
    root = color_classes(str(tmp / "images"), {"blue": (60, 80, 190), "red": (190, 70, 60)}, per_class=40)
    rows = [{"image": [open(os.path.join(root, c, n), "rb").read()], "label": [c.encode()]}
            for c in CLASSES for n in sorted(os.listdir(os.path.join(root, c)))]
    transformed, tft_output = analyze_and_transform(rows, tf.io.FixedLenFeature([1], tf.string), tmp, SIZE)
    # Train on the Transform outputs of every other image of each class; test on the rest's serialized
    # examples through the same Transform graph (in their order, which Beam's output need not keep).
    train = [t for i, t in enumerate(sorted(transformed, key=lambda t: int(t[LABEL_XF]))) if i % 2 == 0]
    examples = [tf.train.Example(features=tf.train.Features(feature={
        k: tf.train.Feature(bytes_list=tf.train.BytesList(value=v)) for k, v in row.items()})).SerializeToString()
        for row in rows[1::2]]
    test = tft_output.transform_features_layer()(
        tf.io.parse_example(tf.constant(examples), tft_output.raw_feature_spec()))
    cfg = ModelConfig(backbone="mobilenet_v2", alpha=0.35, image_size=SIZE, weights=MOBILENET_WEIGHTS,
                      strategy=Strategy.CLASSIFIER_ONLY)
    model, base = build_model(cfg, 2, MOBILENET_WEIGHTS)
    base.trainable = False  # the head only, as phase 1
    compile_model(model, 2, 1e-3)
    train_images = np.stack([t[IMAGE_XF] for t in train])
    model.fit(train_images, np.array([int(t[LABEL_XF]) for t in train]), epochs=8, batch_size=8, verbose=0)
    folders = {name: str(tmp / name) for name in ("float", "int8", "broken")}
    export_saved_model(ServingModule(model, tft_output, CLASSES, "image", "label"),
                       os.path.join(folders["float"], "Format-Serving"), CLASSES, {}, [])
    representative = tflite.representative_pixels([train_images])
    for name, mode, calibration in (("float", "float", None), ("int8", "int8", representative),
                                    ("broken", "int8", [np.zeros((SIZE, SIZE, 3), np.float32)] * 8)):
        if name != "float":
            shutil.copytree(os.path.join(folders["float"], "Format-Serving"), os.path.join(folders[name], "Format-Serving"))
        tflite.export(model, CLASSES, SIZE, mode, folders[name], calibration)
    return {"model": model, "examples": examples, "images": test[IMAGE_XF].numpy(),
            "labels": tf.reshape(test[LABEL_XF], [-1]).numpy(), "transform_dir": str(tmp / "transform_fn"),
            "folders": folders, "images_dir": root}


def interpreter(folder):
    found = tf.lite.Interpreter(model_path=os.path.join(folder, TFLITE_DIR, TFLITE_FILE), num_threads=1)
    found.allocate_tensors()
    return found


def test_float_output_equals_the_keras_model_to_1e_4(trained):
    lite = interpreter(trained["folders"]["float"])
    assert lite.get_input_details()[0]["shape"].tolist() == [1, SIZE, SIZE, 3]
    assert lite.get_input_details()[0]["dtype"] == np.float32
    keras_probs = probabilities(trained["model"](trained["images"], training=False), 2).numpy()
    lite_probs = np.stack([tflite_probabilities(lite, pixels_of(image)) for image in trained["images"]])
    assert lite_probs.shape == keras_probs.shape
    np.testing.assert_allclose(lite_probs, keras_probs, atol=1e-4)
    assert np.mean(np.argmax(keras_probs, 1) == trained["labels"]) >= 0.9  # a trained model, not a constant


def test_int8_takes_uint8_pixels_uses_builtins_only_and_agrees_with_the_saved_model(trained):
    folder = trained["folders"]["int8"]
    lite = interpreter(folder)
    given, answer = lite.get_input_details()[0], lite.get_output_details()[0]
    assert given["dtype"] == np.uint8 and answer["dtype"] == np.uint8
    assert given["quantization"] == (1.0, 0)  # the input's uint8 values are the pixels themselves
    assert not [op["op_name"] for op in lite._get_ops_details() if op["op_name"].startswith("Flex")]
    serve = tf.saved_model.load(os.path.join(folder, "Format-Serving")).signatures[EXAMPLES_SIGNATURE]
    saved = np.argmax(serve(**{EXAMPLES_INPUT: tf.constant(trained["examples"])})[PROBABILITIES].numpy(), 1)
    lite_top1 = np.array([np.argmax(tflite_probabilities(lite, pixels_of(x))) for x in trained["images"]])
    assert np.mean(lite_top1 == saved) >= 0.95
    assert os.path.getsize(os.path.join(folder, TFLITE_DIR, TFLITE_FILE)) * 2 < os.path.getsize(
        os.path.join(trained["folders"]["float"], TFLITE_DIR, TFLITE_FILE))


def test_metadata_reads_back_with_the_labels_and_the_normalization(trained):
    from tensorflow_lite_support.metadata.python import metadata  # libusb: loaded by the export (trained)

    for name in ("float", "int8"):
        path = os.path.join(trained["folders"][name], TFLITE_DIR, TFLITE_FILE)
        shown = metadata.MetadataDisplayer.with_model_file(path)
        assert shown.get_packed_associated_file_list() == ["labels.txt"]
        assert shown.get_associated_file_buffer("labels.txt").decode().split() == CLASSES
        meta = json.loads(shown.get_metadata_json())
        unit = meta["subgraph_metadata"][0]["input_tensor_metadata"][0]["process_units"][0]["options"]
        assert (unit["mean"], unit["std"]) == ([0.0], [1.0])  # the model rescales pixels itself


def gate(trained, name, tmp):
    """Runs the TFLiteGate executor on the model artifact `name` over the test examples; the evaluation."""
    split = tmp / name / "examples" / "Split-test"
    split.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(split / "data.gz"), options="GZIP") as writer:
        for example in trained["examples"]:
            writer.write(example)
    examples, model = standard_artifacts.Examples(), standard_artifacts.Model()
    examples.uri, examples.split_names = str(tmp / name / "examples"), '["test"]'
    model.uri = trained["folders"][name]
    graph = standard_artifacts.TransformGraph()
    graph.uri = trained["transform_dir"]
    evaluation = standard_artifacts.ModelEvaluation()  # any artifact: the executor writes a file and properties
    evaluation.uri = str(tmp / name / "evaluation")
    os.makedirs(evaluation.uri)
    Executor().Do({"examples": [examples], "model": [model], "transform_graph": [graph]}, {"evaluation": [evaluation]},
                  {"split": "test", "max_accuracy_drop": 0.01, "image_feature": IMAGE_XF, "label_feature": LABEL_XF})
    with open(os.path.join(evaluation.uri, EVALUATION_FILE)) as f:
        return evaluation, json.load(f)


def test_the_gate_passes_the_int8_model_and_refuses_one_with_a_broken_representative_set(trained, tmp_path):
    good, result = gate(trained, "int8", tmp_path)
    assert good.get_int_custom_property(PASSED_PROPERTY) == 1, result["reason"]
    assert result["examples"] == len(trained["examples"]) and result["agreement"] >= 0.95
    assert result["tflite_bytes"] < result["saved_model_bytes"] and result["tflite_ms_per_image"] > 0 < result["saved_model_ms_per_image"]
    bad, result = gate(trained, "broken", tmp_path)
    assert bad.get_int_custom_property(PASSED_PROPERTY) == 0
    assert result["tflite_accuracy"] < result["saved_model_accuracy"] - 0.01, result
    assert "points below" in result["reason"]


def test_predict_tflite_prints_what_predict_prints_for_the_saved_model(trained, tmp_path, capsys):
    folder = trained["folders"]["float"]
    files = [os.path.join(trained["images_dir"], c, "001.png") for c in CLASSES]
    (tmp_path / "notes.jpg").write_text("not an image")
    code, lite, err = predict_cli(capsys, "--tflite", os.path.join(folder, TFLITE_DIR, TFLITE_FILE), *files,
                                  str(tmp_path / "notes.jpg"))
    assert code == 1 and "notes.jpg: not an image the model can decode" in err[0]  # the others still answered
    code, saved, _ = predict_cli(capsys, "--model-dir", os.path.join(folder, "Format-Serving"), *files)
    assert code == 0 and [row[:2] for row in lite] == [row[:2] for row in saved] == [[f, c] for f, c in zip(files, CLASSES)]
    assert all(abs(float(a[2]) - float(b[2])) <= 2e-4 for a, b in zip(lite, saved))
    code, _, err = predict_cli(capsys, "--tflite", str(tmp_path / "missing.tflite"), *files)
    assert code != 0 and "missing.tflite" in " ".join(err)


def test_conversion_adds_no_warning_to_the_run(trained, caplog):
    """The conversion's switches (no SavedModel round trip; uint8 input calibrated, not given TF1 statistics)
    leave the console as it was: no WARNING record, no Python warning."""
    import logging
    import warnings

    pixels = [np.full((SIZE, SIZE, 3), v, np.float32) for v in (0.0, 128.0, 255.0)]
    with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for mode in ("float", "int8"):
            assert tflite.convert(trained["model"], 2, SIZE, mode, pixels)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [str(w.message) for w in caught if "tensorflow" in w.filename and "lite" in w.filename]
