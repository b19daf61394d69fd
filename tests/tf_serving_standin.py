"""A stand-in for TF Serving on 127.0.0.1, for tests: no TF Serving binary can be installed on these machines.

It serves the model folders under one base directory (`<base>/<name>/<version>/`) the way tensorflow_model_server
does with `--model_base_path`: the newest version unless a request names one; gRPC PredictionService with the
real tensorflow-serving-api protos, and the REST predict API with TF Serving's documented JSON (row
"instances" and columnar "inputs" formats, {"b64": ...} for binary values, {"error": ...} on failure with 400
or 404). Errors carry TF Serving's wording, e.g. "Servable not found for request: Latest(name)".
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Optional, Tuple

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tfx_image_finetune.components.pusher.servable_check import run_predict_request
from tfx_image_finetune.serving_contract import SERVING_SIGNATURE, versions


class ServableNotFound(LookupError):
    pass


class ModelStore:
    """Loads each <name>/<version> SavedModel once, on first request."""

    def __init__(self, base: str):
        self.base = base
        self._loaded: Dict[Tuple[str, int], object] = {}
        self._lock = threading.Lock()

    def get(self, name: str, version: Optional[int]):
        available = versions(os.path.join(self.base, name)) if re.fullmatch(r"[\w.-]+", name) else []
        wanted = version if version is not None else (available[-1] if available else None)
        if wanted is None or wanted not in available:
            what = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
            raise ServableNotFound(f"Servable not found for request: {what}")
        with self._lock:
            if (name, wanted) not in self._loaded:
                self._loaded[(name, wanted)] = tf.saved_model.load(os.path.join(self.base, name, str(wanted)))
            return wanted, self._loaded[(name, wanted)]


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, store: ModelStore):
        self.store = store

    def Predict(self, request, context):
        spec = request.model_spec
        try:
            version, loaded = self.store.get(spec.name, spec.version.value if spec.HasField("version") else None)
            response = run_predict_request(loaded, request)
        except ServableNotFound as err:
            context.abort(grpc.StatusCode.NOT_FOUND, str(err))
        except (tf.errors.InvalidArgumentError, KeyError, ValueError, TypeError) as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, getattr(err, "message", str(err)))
        response.model_spec.version.value = version
        return response


def _decode_b64(value):
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, dict):
        return {k: _decode_b64(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_b64(v) for v in value]
    return value


def _to_json(name: str, value):
    """TF Serving's encoding: strings as text, or {"b64": ...} for outputs whose name ends in _bytes."""
    value = np.asarray(value)
    if value.dtype.kind in "OS":  # TF strings come back as object arrays or bytes scalars
        encode = (lambda b: {"b64": base64.b64encode(b).decode()}) if name.endswith("_bytes") else \
            (lambda b: b.decode("utf-8"))
        return np.vectorize(encode, otypes=[object])(value).tolist() if value.ndim else encode(value.item())
    return value.tolist()


def rest_predict(store: ModelStore, name: str, version: Optional[int], body: dict) -> dict:
    _, loaded = store.get(name, version)
    signature_name = body.get("signature_name", SERVING_SIGNATURE)
    if signature_name not in loaded.signatures:
        raise KeyError(f"Serving signature name: \"{signature_name}\" not found in signature def")
    signature = loaded.signatures[signature_name]
    specs = signature.structured_input_signature[1]
    if "instances" in body:
        rows = _decode_b64(body["instances"])
        if len(specs) == 1:  # one named input: each instance is its value, or {name: value}
            key = next(iter(specs))
            inputs = {key: [row[key] if isinstance(row, dict) else row for row in rows]}
        else:
            inputs = {k: [row[k] for row in rows] for k in specs}
    elif "inputs" in body:
        given = body["inputs"]
        inputs = {k: _decode_b64(v) for k, v in given.items()} if isinstance(given, dict) else \
            {next(iter(specs)): _decode_b64(given)}
    else:
        raise ValueError("Missing 'instances' or 'inputs' key")
    outputs = signature(**{k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()})
    arrays = {k: t.numpy() for k, t in outputs.items()}
    if "instances" in body:
        count = len(next(iter(arrays.values())))
        return {"predictions": [{k: _to_json(k, v[i]) for k, v in arrays.items()} for i in range(count)]}
    return {"outputs": {k: _to_json(k, v) for k, v in arrays.items()}}


_PREDICT_PATH = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?:predict$")


def _rest_handler(store: ModelStore):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            match = _PREDICT_PATH.match(self.path)
            if not match:
                return self._reply(404, {"error": f"Malformed request: POST {self.path}"})
            name, version = match.group(1), int(match.group(2)) if match.group(2) else None
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                self._reply(200, rest_predict(store, name, version, body))
            except ServableNotFound as err:
                self._reply(404, {"error": str(err)})
            except (tf.errors.InvalidArgumentError, KeyError, ValueError, TypeError) as err:
                self._reply(400, {"error": getattr(err, "message", str(err))})

        def _reply(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # keep pytest output clean
            pass

    return Handler


class StandInServer:
    """Both APIs over one ModelStore; `grpc_address` and `rest_address` are 127.0.0.1:<free port>."""

    def __init__(self, model_base: str):
        self.store = ModelStore(model_base)
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(self.store), self._grpc)
        self.grpc_address = f"127.0.0.1:{self._grpc.add_insecure_port('127.0.0.1:0')}"
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _rest_handler(self.store))
        self.rest_address = f"127.0.0.1:{self._http.server_address[1]}"
        self._http_thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def __enter__(self) -> "StandInServer":
        self._grpc.start()
        self._http_thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._grpc.stop(grace=None)
