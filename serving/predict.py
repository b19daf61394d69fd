"""`tfx-image-finetune predict`: classify image files with a pushed model.

Three ways to reach the model's `serving_default` signature, one behaviour: a pushed SavedModel folder
(`--model-dir`, no server), TF Serving's REST API (`--server`), or its gRPC PredictionService (`--grpc`).
Images go in batches; the model (like TF Serving) fails a whole batch when one element is not an image, so
then each image of that batch is retried alone: the good ones are answered and each bad one is named with
TensorFlow's own reason. A file whose header claims more pixels than the limit (`--max-image-pixels`) is
named as such and never sent (the exported model refuses it too, before decoding). Paths are checked (and
folders expanded) before any model is loaded. TensorFlow is imported only by the SavedModel and gRPC clients
(REST needs the stdlib only).
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.request
from typing import Iterator, List, NamedTuple, Optional, Sequence, Union

from tfx_image_finetune.data_contract import MAX_IMAGE_PIXELS
from tfx_image_finetune.image_header import pixel_limit_error
from tfx_image_finetune.serving_contract import (CLASS_IDS, CLASSES, IMAGE_INPUT, LABELS_FILE, PROBABILITIES,
                                                 SERVING_SIGNATURE, TFLITE_LABELS, pixels_of, tflite_probabilities,
                                                 versions)

BATCH_SIZE = 16
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")  # what the model's tf.io.decode_image reads


class Answer(NamedTuple):
    """The model's outputs for one image."""
    label: str
    class_id: int
    probabilities: List[float]


class Prediction(NamedTuple):
    """What the CLI prints: the file, its top class and that class's probability (and every class's)."""
    path: str
    label: str
    probability: float
    probabilities: Optional[List[float]] = None


class Failure(NamedTuple):
    """A file the model could not classify, and TensorFlow's reason."""
    path: str
    reason: str


class ServingError(Exception):
    """The model could not be reached or asked (unreachable server, unknown model or version, ...)."""


class NotAnImageError(ValueError):
    """The model could not decode an input as an image."""


def class_names(model_dir: str) -> Optional[List[str]]:
    """The pushed model's class names in id order (assets.extra/labels.txt), if it has them."""
    path = os.path.join(latest_version_dir(model_dir), LABELS_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


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
        self.model_dir = model_dir
        self.loaded = tf.saved_model.load(latest_version_dir(model_dir))  # OverlayWriter explains with it too
        self._serve = self.loaded.signatures[SERVING_SIGNATURE]

    def classify(self, images: List[bytes]) -> List[Answer]:
        tf = self._tf
        try:
            out = self._serve(**{IMAGE_INPUT: tf.constant(images)})
        except tf.errors.InvalidArgumentError as err:
            raise NotAnImageError(tf_reason(err.message)) from None
        return _answers(out[CLASSES].numpy(), out[CLASS_IDS].numpy(), out[PROBABILITIES].numpy())


class TFLiteClient:
    """A TFLite file of this project's contract (trainer/tflite.py), on one thread: each image decoded and resized
    as the SavedModel does (trainer.transform.decode_and_scale), handed over as 0..255 pixels; class names from
    the labels.txt beside it."""

    def __init__(self, path: str, max_pixels: int = MAX_IMAGE_PIXELS):
        import tensorflow as tf

        self._tf, self._max_pixels = tf, max_pixels
        self._interpreter = tf.lite.Interpreter(model_path=path, num_threads=1)
        self._interpreter.allocate_tensors()
        self._size = int(self._interpreter.get_input_details()[0]["shape"][1])
        self.names = tflite_labels(path)

    def classify(self, images: List[bytes]) -> List[Answer]:
        from tfx_image_finetune.trainer.transform import decode_and_scale

        tf, answers = self._tf, []
        for image in images:
            try:
                scaled = decode_and_scale(tf.constant([image]), self._size, self._max_pixels)[0].numpy()
            except tf.errors.InvalidArgumentError as err:
                raise NotAnImageError(tf_reason(err.message)) from None
            probs = tflite_probabilities(self._interpreter, pixels_of(scaled))
            class_id = int(probs.argmax())
            name = self.names[class_id] if self.names and class_id < len(self.names) else str(class_id)
            answers.append(Answer(name, class_id, [float(p) for p in probs]))
        return answers


def tflite_labels(path: str) -> Optional[List[str]]:
    """The class names in the labels.txt beside a TFLite file (as pushed), if there is one."""
    labels = os.path.join(os.path.dirname(os.path.abspath(path)), TFLITE_LABELS)
    if not os.path.isfile(labels):
        return None
    with open(labels, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


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
                payload = json.load(response)
        except urllib.error.HTTPError as err:
            message = _rest_error(err)
            if err.code == 404:
                raise ServingError(_not_found(self.server, self.model, self.version, message)) from None
            if err.code == 400:
                raise NotAnImageError(tf_reason(message)) from None
            raise ServingError(f"TF Serving at {self.server} answered HTTP {err.code}: {message}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ServingError(f"cannot reach TF Serving's REST API at {self.server}: {reason}") from None
        return rest_answers(payload, self.server)


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
                raise NotAnImageError(tf_reason(message)) from None
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise ServingError(f"cannot reach TF Serving's gRPC API at {self.server}: {message}") from None
            raise ServingError(f"TF Serving at {self.server} answered {code.name}: {message}") from None
        return answers_from_outputs({name: tf.make_ndarray(proto).tolist() for name, proto in response.outputs.items()},
                                    self.server)


def _answers(classes, class_ids, probabilities) -> List[Answer]:
    return [Answer(name.decode() if isinstance(name, bytes) else str(name), int(class_id), [float(p) for p in probs])
            for name, class_id, probs in zip(classes, class_ids, probabilities)]


def rest_answers(payload: dict, server: str = "TF Serving") -> List[Answer]:
    """A REST predict response in either documented form: row {"predictions": ...} or columnar {"outputs": ...};
    with one output TF Serving omits its name (a bare list), which is then taken as the probabilities."""
    if isinstance(payload, dict) and isinstance(payload.get("predictions"), list):
        rows = payload["predictions"]
        columns = {key: [row[key] for row in rows] for key in rows[0]} \
            if rows and all(isinstance(row, dict) for row in rows) else {PROBABILITIES: rows}
    elif isinstance(payload, dict) and "outputs" in payload:
        columns = payload["outputs"] if isinstance(payload["outputs"], dict) else {PROBABILITIES: payload["outputs"]}
    else:
        raise ServingError(f"{server} answered neither 'predictions' nor 'outputs': {str(payload)[:200]}")
    return answers_from_outputs(columns, server)


def answers_from_outputs(columns: dict, server: str = "TF Serving") -> List[Answer]:
    """Answers from the named outputs (lists, one item per image); without `classes` / `class_ids` (a model
    with only `probabilities`), the class is the argmax, named by its id."""
    if PROBABILITIES not in columns:
        raise ServingError(f"{server}: the model's outputs {sorted(columns)} have no 'probabilities'")
    probabilities = columns[PROBABILITIES]
    if not all(isinstance(row, list) and row for row in probabilities):
        raise ServingError(f"{server}: 'probabilities' is not one list of class probabilities per image")
    class_ids = columns.get(CLASS_IDS) or [max(range(len(row)), key=row.__getitem__) for row in probabilities]
    classes = columns.get(CLASSES) or [str(class_id) for class_id in class_ids]
    return _answers(classes, class_ids, probabilities)


def tf_reason(message: str) -> str:
    """TensorFlow's own reason ("Unknown image file format...", "Input is empty.") out of an op error's text,
    without the "Graph execution error:" header, the stack and the "[[{{node ...}}]]" suffix."""
    for line in message.splitlines():
        line = re.sub(r"\s*\[\[\{\{.*$", "", line).strip()
        line = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", line)  # TF Serving's prefix
        line = re.sub(r"^assertion failed: \[(.*)\]$", r"\1", line)  # the model's pixel limit (tf.debugging.Assert)
        if line and line != "Graph execution error:" and not line.startswith(("Detected at node", "<stack traces")) \
                and not line.startswith('File "'):
            return line
    return message.strip()


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


def image_files(paths: Sequence[str]) -> List[str]:
    """The files to classify: each file as given, each folder's image files (by extension, recursively, sorted,
    hidden files and folders skipped).

    Checked before any model is loaded: a missing path or a folder without images raises FileNotFoundError.
    """
    files, missing = [], []
    for path in paths:
        if os.path.isdir(path):
            found = []
            for root, folders, names in os.walk(path):
                folders[:] = [name for name in folders if not name.startswith(".")]  # hidden: skipped
                found += [os.path.join(root, name) for name in names
                          if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")]
            found.sort()
            if not found:
                raise FileNotFoundError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in folder {path!r}")
            files.extend(found)
        elif os.path.isfile(path):
            files.append(path)
        else:
            missing.append(path)
    if missing:
        raise FileNotFoundError(f"no such image file or folder: {', '.join(map(repr, missing))}")
    return files


def classify_files(client, paths: Sequence[str], batch_size: int = BATCH_SIZE,
                   max_pixels: int = MAX_IMAGE_PIXELS) -> Iterator[Union[Prediction, Failure]]:
    """A Prediction (file, top class, its probability) or a Failure (file, reason) per file, in the order given.

    A file whose header claims more than `max_pixels` pixels is a Failure without being sent."""
    for start in range(0, len(paths), batch_size):
        batch = list(paths[start:start + batch_size])
        contents, refused = {}, {}
        for path in batch:
            with open(path, "rb") as f:
                contents[path] = f.read()
            refused[path] = pixel_limit_error(contents[path], max_pixels)
        sent = [path for path in batch if not refused[path]]
        try:
            answers = dict(zip(sent, client.classify([contents[path] for path in sent]))) if sent else {}
        except NotAnImageError:  # all-or-nothing, as in TF Serving: ask again one image at a time to name it
            answers = {path: _classify_one(client, contents[path]) for path in sent}
        for path in batch:
            answer = refused[path] or answers[path]
            yield Failure(path, answer) if isinstance(answer, str) else \
                Prediction(path, answer.label, answer.probabilities[answer.class_id], answer.probabilities)


class OverlayWriter:
    """`predict --explain DIR`: for each answered file, DIR/<its name>.explain.png, the heat map of what drove its
    predicted class over the image the model saw (trainer/explain.py); a name met twice gets -2, -3..."""

    SUFFIX = ".explain.png"

    def __init__(self, client: SavedModelClient, folder: str):
        from tfx_image_finetune.trainer.explain import NotExplainableError, explainable

        if not explainable(client.loaded):
            raise NotExplainableError(f"--explain: the model at {client.model_dir!r} has no explanation functions "
                                      "(exported before they existed): train it again to explain it")
        os.makedirs(folder, exist_ok=True)
        self.client, self.folder, self.written = client, folder, set()

    def write(self, prediction: Prediction) -> str:
        """The overlay of `prediction`'s file for its predicted class; returns the PNG's path."""
        from tfx_image_finetune.trainer.explain import explain_images

        with open(prediction.path, "rb") as f:
            image = f.read()
        class_id = max(range(len(prediction.probabilities)), key=prediction.probabilities.__getitem__)
        explanation = explain_images(self.client.loaded, [image], [class_id])[0]
        stem, n = os.path.splitext(os.path.basename(prediction.path))[0], 1
        while (name := stem + (f"-{n}" if n > 1 else "") + self.SUFFIX) in self.written:
            n += 1
        self.written.add(name)
        target = os.path.join(self.folder, name)
        with open(target, "wb") as f:
            f.write(explanation.overlay_png)
        return target


def _classify_one(client, image: bytes) -> Union[Answer, str]:
    try:
        return client.classify([image])[0]
    except NotAnImageError as err:
        return str(err)
