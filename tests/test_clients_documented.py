"""The clients (serving/predict.py RestClient, GrpcClient) against TF Serving's documented responses, not the
stand-in's.

A tiny HTTP server answers fixed bodies, each in the form TF Serving documents:
- api_rest.md (tensorflow/serving, tensorflow_serving/g3doc/api_rest.md), "Predict API" > "Response format": a
  row-format request is answered {"predictions": [...]} (a list of objects when the model has several named
  outputs; with one output the name is omitted and each prediction is its bare value), a columnar one
  {"outputs": {...}} (or the bare value for one output).
- api_rest.md, top: "In case of error, all APIs will return a JSON object in the response body with `error` as
  key"; its example: 404 with { "error": "Servable not found for request: Latest(half)" }.
- tensorflow_serving/model_servers/http_server.cc ToHTTPStatusCode: INVALID_ARGUMENT and FAILED_PRECONDITION ->
  400, NOT_FOUND -> 404, UNAVAILABLE -> 503, INTERNAL/UNKNOWN -> 500.
- gRPC: tensorflow_serving/apis/predict.proto (PredictResponse: model_spec, outputs map<string, TensorProto>),
  and the same status (NOT_FOUND "Servable not found for request: ...", INVALID_ARGUMENT with TensorFlow's
  message, here in the "{{function_node ...}} message" form TensorFlow gives errors raised inside functions).
"""

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tfx_image_finetune.serving import predict
from tfx_image_finetune.cli.main import main

ROW_MULTI = {"predictions": [{"probabilities": [0.2, 0.8], "class_ids": 1, "classes": "sunny"},
                             {"probabilities": [0.9, 0.1], "class_ids": 0, "classes": "night"}]}
COLUMNAR_MULTI = {"outputs": {"probabilities": [[0.2, 0.8], [0.9, 0.1]], "class_ids": [1, 0],
                              "classes": ["sunny", "night"]}}
ROW_SINGLE = {"predictions": [[0.2, 0.8], [0.9, 0.1]]}  # one output: its name omitted
COLUMNAR_SINGLE = {"outputs": [[0.2, 0.8], [0.9, 0.1]]}
BAD_IMAGE = "Unknown image file format. One of JPEG, PNG, GIF, BMP required.\n\t [[{{node DecodeImage}}]]"


class DocumentedServer:
    """Replies to POST /v1/models/<name>[/versions/<v>]:predict with the body fixed for <name>; records requests."""

    def __init__(self):
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, body))
                match = re.fullmatch(r"/v1/models/([^/:]+)(?:/versions/(\d+))?:predict", self.path)
                name, version = match.groups()
                images = [base64.b64decode(row["b64"]) for row in body["instances"]]
                if name == "overloaded":
                    return self._reply(503, {"error": "Servable image_classifier is not ready: loading"})
                if name != "image_classifier" and name not in FORMS or version == "7":
                    what = f"Specific({name}, {version})" if version else f"Latest({name})"
                    return self._reply(404, {"error": f"Servable not found for request: {what}"})
                if any(image.startswith(b"not an image") for image in images):  # all-or-nothing, as TF Serving
                    return self._reply(400, {"error": BAD_IMAGE})
                reply = FORMS.get(name, ROW_MULTI)
                self._reply(200, _first(reply, len(images)))

            def _reply(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def close(self):
        self._http.shutdown()
        self._http.server_close()


FORMS = {"row_multi": ROW_MULTI, "columnar_multi": COLUMNAR_MULTI, "row_single": ROW_SINGLE,
         "columnar_single": COLUMNAR_SINGLE}


def _first(reply, count):
    """The fixed body cut to the number of images asked (the bodies hold two)."""
    if "predictions" in reply:
        return {"predictions": reply["predictions"][:count]}
    outputs = reply["outputs"]
    return {"outputs": {k: v[:count] for k, v in outputs.items()} if isinstance(outputs, dict) else outputs[:count]}


@pytest.fixture(scope="module")
def server():
    documented = DocumentedServer()
    yield documented
    documented.close()


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_documented_response_form_is_read(server, form):
    answers = predict.RestClient(server.address, form).classify([b"image one", b"image two"])
    assert [(a.class_id, a.probabilities) for a in answers] == [(1, [0.2, 0.8]), (0, [0.9, 0.1])]
    # Named outputs give the class names; a single unnamed output gives probabilities only, named by class id.
    assert [a.label for a in answers] == (["sunny", "night"] if form.endswith("multi") else ["1", "0"])
    path, body = server.requests[-1]
    assert path == f"/v1/models/{form}:predict"
    assert body == {"signature_name": "serving_default", "instances": [{"b64": base64.b64encode(b).decode()}
                                                                       for b in (b"image one", b"image two")]}


def test_error_bodies_become_clear_errors(server):
    client = predict.RestClient(server.address, "image_classifier")
    with pytest.raises(predict.NotAnImageError) as bad:
        client.classify([b"image one", b"not an image"])
    assert str(bad.value) == "Unknown image file format. One of JPEG, PNG, GIF, BMP required."
    with pytest.raises(predict.ServingError, match=r"does not serve model 'nope': Servable not found for request: "
                                                   r"Latest\(nope\)$"):
        predict.RestClient(server.address, "nope").classify([b"image one"])
    with pytest.raises(predict.ServingError, match=r"does not serve model 'image_classifier' version 7: Servable not "
                                                   r"found for request: Specific\(image_classifier, 7\)$"):
        predict.RestClient(server.address, "image_classifier", version=7).classify([b"image one"])
    assert server.requests[-1][0] == "/v1/models/image_classifier/versions/7:predict"
    with pytest.raises(predict.ServingError, match=r"answered HTTP 503: Servable image_classifier is not ready"):
        predict.RestClient(server.address, "overloaded").classify([b"image one"])


def test_a_rejected_batch_is_asked_again_per_file_over_rest(server, tmp_path, capsys):
    files = []
    for name, content in [("a.jpg", b"image a"), ("b.jpg", b"not an image"), ("c.jpg", b"image c")]:
        (tmp_path / name).write_bytes(content)
        files.append(str(tmp_path / name))
    before = len(server.requests)
    code = main(["predict", "--server", server.address, *files])
    out, err = capsys.readouterr()
    assert code == 1
    assert [line.split("\t")[0] for line in out.strip().splitlines()] == [files[0], files[2]]
    assert err.strip() == (f"tfx-image-finetune: error: {files[1]}: not an image the model can decode: "
                           "Unknown image file format. One of JPEG, PNG, GIF, BMP required.")
    assert [len(body["instances"]) for _, body in server.requests[before:]] == [3, 1, 1, 1]


class DocumentedPredictionService:
    """A gRPC PredictionService whose Predict answers fixed, documented responses (see the module docstring)."""

    def __init__(self):
        import grpc
        from concurrent import futures
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        outer = self

        class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
            def Predict(self, request, context):
                return outer.predict(request, context)

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), self._server)
        self.address = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
        self._server.start()

    def predict(self, request, context):
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        spec = request.model_spec
        images = tf.make_ndarray(request.inputs["image_bytes"]).tolist()
        if spec.name not in ("image_classifier", "probabilities_only") or spec.version.value == 7:
            what = f"Specific({spec.name}, {spec.version.value})" if spec.HasField("version") else \
                f"Latest({spec.name})"
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {what}")
        if any(image.startswith(b"not an image") for image in images):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{{{{function_node __inference_serve_99}}}} {BAD_IMAGE}")
        response = predict_pb2.PredictResponse()
        response.model_spec.name, response.model_spec.signature_name = spec.name, "serving_default"
        response.model_spec.version.value = 1796000000
        outputs = {"probabilities": tf.constant([[0.2, 0.8], [0.9, 0.1]][:len(images)])}
        if spec.name == "image_classifier":
            outputs.update(class_ids=tf.constant([1, 0][:len(images)], tf.int64),
                           classes=tf.constant([b"sunny", b"night"][:len(images)]))
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response

    def close(self):
        self._server.stop(grace=None)


@pytest.fixture(scope="module")
def grpc_server():
    documented = DocumentedPredictionService()
    yield documented
    documented.close()


def test_the_grpc_client_reads_documented_responses_and_statuses(grpc_server):
    answers = predict.GrpcClient(grpc_server.address, "image_classifier").classify([b"image one", b"image two"])
    assert [(a.label, a.class_id, a.probabilities) for a in answers] == [
        ("sunny", 1, [pytest.approx(0.2), pytest.approx(0.8)]), ("night", 0, [pytest.approx(0.9), pytest.approx(0.1)])]
    only = predict.GrpcClient(grpc_server.address, "probabilities_only").classify([b"image one"])
    assert [(a.label, a.class_id) for a in only] == [("1", 1)]
    with pytest.raises(predict.NotAnImageError) as bad:
        predict.GrpcClient(grpc_server.address, "image_classifier").classify([b"image one", b"not an image"])
    assert str(bad.value) == "Unknown image file format. One of JPEG, PNG, GIF, BMP required."
    with pytest.raises(predict.ServingError, match=r"does not serve model 'nope': Servable not found for request: "
                                                   r"Latest\(nope\)$"):
        predict.GrpcClient(grpc_server.address, "nope").classify([b"image one"])
    with pytest.raises(predict.ServingError, match=r"version 7: Servable not found for request: "
                                                   r"Specific\(image_classifier, 7\)$"):
        predict.GrpcClient(grpc_server.address, "image_classifier", version=7).classify([b"image one"])
