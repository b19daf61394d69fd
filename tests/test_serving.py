"""The TF Serving contract of the pushed model, over the wire: gRPC and REST stand-ins, the predict client.

The model is the one the session's real LocalDagRunner run pushed (conftest `first_run`).
"""

import glob
import io
import os
import socket

import grpc
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from PIL import Image
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tfx_image_finetune.serving import predict
from tests.conftest import predict_cli
from tests.tf_serving_standin import StandInServer
from tfx_image_finetune.serving_contract import versions
from tfx_image_finetune.trainer.transform import IMAGE_XF

pytestmark = pytest.mark.e2e  # the model the shared first_run pushed


@pytest.fixture(scope="module")
def server(first_run):
    with StandInServer(os.path.dirname(first_run.serving_model_dir)) as standin:
        yield standin


@pytest.fixture(scope="module")
def pushed(first_run):
    return tf.saved_model.load(_version_dir(first_run))


def _version_dir(cfg):
    return os.path.join(cfg.serving_model_dir, str(versions(cfg.serving_model_dir)[-1]))


def _as(fmt: str, jpeg: bytes) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).convert("RGB").save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def images(demo_images):
    """Two night and two sunny photos, each as JPEG, PNG and GIF."""
    jpegs = [open(os.path.join(demo_images, cls, f"{cls}_000{i}.jpg"), "rb").read()
             for cls in ("night", "sunny") for i in (1, 2)]
    return {fmt: [data if fmt == "JPEG" else _as(fmt, data) for data in jpegs] for fmt in ("JPEG", "PNG", "GIF")}


def _examples(images):
    return [tf.train.Example(features=tf.train.Features(feature={
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))})).SerializeToString()
        for data in images]


def _keras_probabilities(cfg, pushed, images):
    """The Keras model on the Transform artifact's output (applied outside the serving graph), as probabilities.

    The Keras model is rebuilt from the config and given the pushed version's variables (the SavedModel keeps
    no Keras layer traces: it is used through its signatures)."""
    from tfx_image_finetune.trainer.model import build_model
    from tfx_image_finetune.trainer.warm_start import restore

    transform_uri = glob.glob(os.path.join(cfg.pipeline_root, "Transform", "transform_graph", "*"))[0]
    raw = {"image": tf.constant([[data] for data in images]), "label": tf.constant([[b"night"]] * len(images))}
    transformed = tft.TFTransformOutput(transform_uri).transform_raw_features(raw)[IMAGE_XF]
    model, _ = build_model(cfg.model, 2, None)
    restore(model, _version_dir(cfg))
    logits = model(transformed, training=False).numpy()
    assert logits.shape == (len(images), 1)  # two classes: one logit, sigmoid
    positive = 1 / (1 + np.exp(-logits[:, 0].astype(np.float64)))
    return np.stack([1 - positive, positive], axis=1)


def _grpc_predict(address, signature, key, values):
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "image_classifier", signature
    request.inputs[key].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string))
    with grpc.insecure_channel(address) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
    return response, {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF"])
def test_served_outputs_equal_the_keras_model_on_the_transformed_images(first_run, pushed, server, images, fmt):
    data = images[fmt]
    expected = _keras_probabilities(first_run, pushed, data)
    labels = open(os.path.join(_version_dir(first_run), "assets.extra", "labels.txt")).read().split()
    served = {
        "serving_default": pushed.signatures["serving_default"](image_bytes=tf.constant(data)),
        "serving_examples": pushed.signatures["serving_examples"](examples=tf.constant(_examples(data))),
        "grpc serving_default": _grpc_predict(server.grpc_address, "serving_default", "image_bytes", data)[1],
        "grpc serving_examples": _grpc_predict(server.grpc_address, "serving_examples", "examples",
                                               _examples(data))[1],
    }
    # 1e-4: float32 round-off of the same computation in another op order (the logistic head's larger weights
    # reach ~1e-5); a preprocessing that differed (resize, scaling) would move probabilities by far more.
    for way, out in served.items():
        probabilities = np.asarray(out["probabilities"])
        np.testing.assert_allclose(probabilities, expected, atol=1e-4, err_msg=way)
        assert list(np.asarray(out["class_ids"])) == list(expected.argmax(axis=1)), way
        assert [c.decode() for c in np.asarray(out["classes"])] == [labels[i] for i in expected.argmax(axis=1)], way
    rest = predict.RestClient(server.rest_address, "image_classifier").classify(data)
    np.testing.assert_allclose([answer.probabilities for answer in rest], expected, atol=1e-4, err_msg="REST")
    assert [answer.label for answer in rest] == [labels[i] for i in expected.argmax(axis=1)]


def test_grpc_answers_name_the_version_and_a_non_image_is_invalid_argument(server, images):
    response, _ = _grpc_predict(server.grpc_address, "serving_default", "image_bytes", images["JPEG"][:1])
    assert response.model_spec.version.value > 0 and response.model_spec.signature_name == "serving_default"
    with pytest.raises(grpc.RpcError) as err:
        _grpc_predict(server.grpc_address, "serving_default", "image_bytes", [b"not an image"])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Unknown image file format" in err.value.details()
    # The model (and the server) carry on serving afterwards.
    assert _grpc_predict(server.grpc_address, "serving_default", "image_bytes", images["PNG"][:1])[1]["classes"].size == 1


def test_predict_prints_one_line_per_image_from_every_kind_of_endpoint(first_run, server, demo_images, capsys):
    files = [os.path.join(demo_images, cls, f"{cls}_000{i}.jpg") for cls in ("night", "sunny") for i in range(3)]
    version = str(versions(first_run.serving_model_dir)[-1])
    answers = {}
    for way, flags in {
        "model-dir": ["--model-dir", first_run.serving_model_dir],
        "rest": ["--server", server.rest_address],
        "grpc": ["--server", server.grpc_address, "--grpc"],
        "grpc version": ["--server", server.grpc_address, "--grpc", "--version", version],
        "rest version": ["--server", server.rest_address, "--model", "image_classifier", "--version", version],
    }.items():
        code, lines, err = predict_cli(capsys, *flags, *files)
        assert code == 0, (way, err)
        assert [line[0] for line in lines] == files, way
        assert all(line[1] in ("night", "sunny") and 0.5 <= float(line[2]) <= 1.0 for line in lines), (way, lines)
        answers[way] = [(line[1], round(float(line[2]), 3)) for line in lines]
    assert len({tuple(a) for a in answers.values()}) == 1, answers


def test_the_pipelines_pusher_names_its_versions_in_the_tf_serving_model_config(first_run):
    """The real run's Pusher wrote <serving-dir>/models.config, as TF Serving's ModelServerConfig parses it."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    with open(os.path.join(os.path.dirname(first_run.serving_model_dir), "models.config")) as f:
        config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    [model] = config.model_config_list.config
    assert (model.name, model.base_path, model.model_platform) == (
        first_run.serving.model_name, os.path.abspath(first_run.serving_model_dir), "tensorflow")
    assert list(model.model_version_policy.specific.versions) == versions(first_run.serving_model_dir)


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def test_predict_errors_are_clear(first_run, server, demo_images, tmp_path, capsys):
    good = os.path.join(demo_images, "night", "night_0000.jpg")
    notes = tmp_path / "notes.jpg"
    notes.write_text("not an image")
    dead = _closed_port()
    undecodable = f"{notes}: not an image the model can decode: Unknown image file format"
    cases = [
        (["--server", dead, good], f"cannot reach TF Serving's REST API at {dead}", []),
        (["--server", dead, "--grpc", "--timeout", "10", good], f"cannot reach TF Serving's gRPC API at {dead}", []),
        (["--server", server.rest_address, "--model", "nope", good],
         "does not serve model 'nope': Servable not found for request: Latest(nope)", []),
        (["--server", server.grpc_address, "--grpc", "--model", "nope", good], "does not serve model 'nope'", []),
        (["--server", server.grpc_address, "--grpc", "--version", "7", good],
         "does not serve model 'image_classifier' version 7", []),
        # An undecodable file is named with TensorFlow's reason; the good ones are still answered.
        (["--server", server.rest_address, good, str(notes)], undecodable, [good]),
        (["--server", server.grpc_address, "--grpc", str(notes), good], undecodable, [good]),
        (["--model-dir", first_run.serving_model_dir, good, str(notes)], undecodable, [good]),
        (["--server", server.rest_address, str(tmp_path / "missing.jpg")], "no such image file", []),
    ]
    for argv, message, answered in cases:
        code, lines, err = predict_cli(capsys, *argv)
        assert code == 1 and message in "\n".join(err) and [line[0] for line in lines] == answered, (argv, err)
    for argv, message in [(["--server", "http://localhost", good], "--server takes HOST:PORT"),
                          (["--model-dir", first_run.serving_model_dir, "--grpc", good], "--grpc and --version need")]:
        code, _, err = predict_cli(capsys, *argv)
        assert code == 2 and message in "\n".join(err), err
