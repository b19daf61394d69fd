"""The InfraValidator-style check the pusher runs before a version becomes visible.

Load the staged SavedModel as TF Serving would and replay its `assets.extra/tf_serving_warmup_requests`
through the signatures they name: a model TF Serving could not load or warm up is never renamed into place.
"""

from __future__ import annotations

import os

from absl import logging

from tfx_image_finetune.serving_contract import SERVING_SIGNATURE, WARMUP_FILE


class ServableCheckError(RuntimeError):
    """The staged model failed to load or to answer one of its warmup requests."""


def run_predict_request(loaded, request):
    """A tensorflow_serving PredictRequest through a loaded SavedModel -> PredictResponse, as TF Serving does."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    name = request.model_spec.signature_name or SERVING_SIGNATURE
    if name not in loaded.signatures:
        raise KeyError(f"Serving signature name: {name!r} not found in signature def; "
                       f"the model has {sorted(loaded.signatures)}")
    signature = loaded.signatures[name]
    expected = signature.structured_input_signature[1]
    if set(request.inputs) != set(expected):
        raise ValueError(f"signature {name!r} takes inputs {sorted(expected)}, the request has {sorted(request.inputs)}")
    inputs = {key: tf.constant(tf.make_ndarray(proto), dtype=expected[key].dtype)
              for key, proto in request.inputs.items()}
    outputs = signature(**inputs)
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    response.model_spec.signature_name = name
    for key, tensor in outputs.items():
        if not request.output_filter or key in request.output_filter:
            response.outputs[key].CopyFrom(tf.make_tensor_proto(tensor.numpy()))
    return response


def check_servable(saved_model_dir: str) -> int:
    """Load the model and replay its warmup requests; the number replayed. Raises ServableCheckError."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    try:
        loaded = tf.saved_model.load(saved_model_dir)
    except Exception as err:  # any load failure means TF Serving could not load it either
        raise ServableCheckError(f"{saved_model_dir}: the SavedModel does not load: {err}") from err
    if SERVING_SIGNATURE not in loaded.signatures:
        raise ServableCheckError(f"{saved_model_dir}: no {SERVING_SIGNATURE!r} signature")
    warmup = os.path.join(saved_model_dir, WARMUP_FILE)
    if not tf.io.gfile.exists(warmup):
        logging.warning("%s has no %s; checked that it loads only.", saved_model_dir, WARMUP_FILE)
        return 0
    count = 0
    for count, record in enumerate(tf.data.TFRecordDataset(warmup), start=1):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        if log.WhichOneof("log_type") != "predict_log":
            raise ServableCheckError(f"{warmup}: record {count} is a {log.WhichOneof('log_type')}, "
                                     "only predict_log warmup requests are checked")
        try:
            run_predict_request(loaded, log.predict_log.request)
        except (tf.errors.OpError, KeyError, ValueError, TypeError) as err:
            message = getattr(err, "message", str(err)).splitlines()[0]
            raise ServableCheckError(f"{saved_model_dir}: warmup request {count} failed: {message}") from err
    return count
