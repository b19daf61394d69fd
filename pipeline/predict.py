"""`tfx-image-finetune predict`: classify image files with a pushed model.

Three ways to reach the model's `serving_default` signature, one behaviour: a pushed SavedModel folder
(`--model-dir`, no server), TF Serving's REST API (`--server`), or its gRPC PredictionService (`--grpc`).
Images go in batches; when the model rejects a batch as undecodable, each image is retried alone so the error
names the file. TensorFlow is imported only by the SavedModel and gRPC clients (REST needs the stdlib only).
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from typing import Dict, List, NamedTuple, Optional, Sequence

from trainer.serving_contract import IMAGE_INPUT, SERVING_SIGNATURE, versions

BATCH_SIZE = 16


class Answer(NamedTuple):
    """The model's outputs for one image."""
    label: str
    class_id: int
    probabilities: List[float]


class Prediction(NamedTuple):
    """What the CLI prints: the file, its top class and that class's probability."""
    path: str
    label: str
    probability: float


class ServingError(Exception):
    """The model could not be reached or asked (unreachable server, unknown model or version, ...)."""


class NotAnImageError(ValueError):
    """The model could not decode an input as an image."""


def latest_version_dir(model_dir: str) -> str:
    """A version folder itself, or the newest all-digit version below a TF Serving model folder."""
    if os.path.isfile(os.path.join(model_dir, "saved_model.pb")):
        return model_dir
    found = versions(model_dir)
    if not found:
        raise FileNotFoundError(f"--model-dir: no SavedModel in {model_dir!r} nor any version folder below it")
    return os.path.join(model_dir, str(found[-1]))


class SavedModelClient:
    """The pushed SavedModel, loaded in this process."""

    def __init__(self, model_dir: str):
        import tensorflow as tf

        self._tf = tf
        self._serve = tf.saved_model.load(latest_version_dir(model_dir)).signatures[SERVING_SIGNATURE]

    def classify(self, images: List[bytes]) -> List[Answer]:
        tf = self._tf
        try:
            out = self._serve(**{IMAGE_INPUT: tf.constant(images)})
        except tf.errors.InvalidArgumentError as err:
            raise NotAnImageError(err.message.splitlines()[0]) from None
        return _answers(out["classes"].numpy(), out["class_ids"].numpy(), out["probabilities"].numpy())


class RestClient:
    """TF Serving's REST predict API, row ("instances") format; binary inputs travel as {"b64": ...}."""

    def __init__(self, server: str, model: str, version: Optional[int] = None, timeout: float = 60.0):
        path = f"/v1/models/{model}" + (f"/versions/{version}" if version is not None else "")
        self.url = f"http://{server}{path}:predict"
        self.server, self.model, self.version, self.timeout = server, model, version, timeout

    def classify(self, images: List[bytes]) -> List[Answer]:
        body = json.dumps({"signature_name": SERVING_SIGNATURE,
                           "instances": [{"b64": base64.b64encode(image).decode("ascii")} for image in images]})
        request = urllib.request.Request(self.url, data=body.encode(), headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                rows = json.load(response)["predictions"]
        except urllib.error.HTTPError as err:
            message = _rest_error(err)
            if err.code == 404:
                raise ServingError(_not_found(self.server, self.model, self.version, message)) from None
            if err.code == 400:
                raise NotAnImageError(message) from None
            raise ServingError(f"TF Serving at {self.server} answered HTTP {err.code}: {message}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ServingError(f"cannot reach TF Serving's REST API at {self.server}: {reason}") from None
        return [Answer(row["classes"], row["class_ids"], row["probabilities"]) for row in rows]


class GrpcClient:
    """TF Serving's gRPC PredictionService (the tensorflow-serving-api protos)."""

    def __init__(self, server: str, model: str, version: Optional[int] = None, timeout: float = 60.0):
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self._grpc, self._tf = grpc, tf
        self.server, self.model, self.version, self.timeout = server, model, version, timeout
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(server))

    def classify(self, images: List[bytes]) -> List[Answer]:
        from tensorflow_serving.apis import predict_pb2

        grpc, tf = self._grpc, self._tf
        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = self.model, SERVING_SIGNATURE
        if self.version is not None:
            request.model_spec.version.value = self.version
        request.inputs[IMAGE_INPUT].CopyFrom(tf.make_tensor_proto(images, dtype=tf.string))
        try:
            response = self._stub.Predict(request, timeout=self.timeout)
        except grpc.RpcError as err:
            code, message = err.code(), err.details()
            if code == grpc.StatusCode.NOT_FOUND:
                raise ServingError(_not_found(self.server, self.model, self.version, message)) from None
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise NotAnImageError(message) from None
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise ServingError(f"cannot reach TF Serving's gRPC API at {self.server}: {message}") from None
            raise ServingError(f"TF Serving at {self.server} answered {code.name}: {message}") from None
        outputs = {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
        return _answers(outputs["classes"], outputs["class_ids"], outputs["probabilities"])


def _answers(classes, class_ids, probabilities) -> List[Answer]:
    return [Answer(name.decode() if isinstance(name, bytes) else str(name), int(class_id), [float(p) for p in probs])
            for name, class_id, probs in zip(classes, class_ids, probabilities)]


def _rest_error(err: "urllib.error.HTTPError") -> str:
    """TF Serving answers errors as {"error": "..."}."""
    body = err.read().decode("utf-8", "replace")
    try:
        return json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return body.strip() or err.reason


def _not_found(server: str, model: str, version: Optional[int], message: str) -> str:
    what = f"model {model!r}" + (f" version {version}" if version is not None else "")
    return f"TF Serving at {server} does not serve {what}: {message}"


def read_images(paths: Sequence[str]) -> Dict[str, bytes]:
    contents = {}
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no such image file: {path!r}")
        with open(path, "rb") as f:
            contents[path] = f.read()
    return contents


def classify_files(client, paths: Sequence[str], batch_size: int = BATCH_SIZE) -> List[Prediction]:
    """One Prediction (file, top class, its probability) per image, in the order given."""
    contents = read_images(paths)
    results: List[Prediction] = []
    for start in range(0, len(paths), batch_size):
        batch = list(paths[start:start + batch_size])
        try:
            answers = client.classify([contents[path] for path in batch])
        except NotAnImageError:  # name the file: ask again one image at a time
            answers = [_classify_one(client, path, contents[path]) for path in batch]
        for path, answer in zip(batch, answers):
            results.append(Prediction(path, answer.label, answer.probabilities[answer.class_id]))
    return results


def _classify_one(client, path: str, image: bytes) -> Answer:
    try:
        return client.classify([image])[0]
    except NotAnImageError as err:
        raise NotAnImageError(f"{path}: not an image the model can decode ({err})") from None
