"""The serving-folder pusher: atomic versions, increasing integers, no repeated push, nothing on failure."""

import os

import pytest

from tfx_image_finetune.components.pusher.executor import prune, push_atomically, version_of
from tfx_image_finetune.serving_contract import SOURCE_MODEL_FILE, versions


def _model(path, files=("saved_model.pb", "variables/variables.index")):
    for name in files:
        os.makedirs(os.path.dirname(os.path.join(path, name)), exist_ok=True)
        with open(os.path.join(path, name), "w") as f:
            f.write(name)
    return str(path)


def test_versions_increase_and_each_model_is_pushed_once(tmp_path):
    base = str(tmp_path / "serving" / "m")
    first = push_atomically(_model(tmp_path / "a"), base, "uri://model/1")
    second = push_atomically(_model(tmp_path / "b"), base, "uri://model/2")
    assert second > first and versions(base) == [first, second]
    assert version_of(base, "uri://model/1") == first
    assert version_of(base, "uri://model/3") is None
    assert open(os.path.join(base, str(first), SOURCE_MODEL_FILE)).read() == "uri://model/1"
    assert sorted(os.listdir(base)) == sorted([str(first), str(second)])  # no staging folders left


def test_a_partial_version_left_by_a_killed_push_is_not_taken_for_the_pushed_model(tmp_path):
    """On GCS a push killed mid-rename can leave <version>/ with its marker but without being in models.config."""
    import shutil

    base = str(tmp_path / "serving" / "m")
    first = push_atomically(_model(tmp_path / "a"), base, "uri://model/1")
    partial = os.path.join(base, str(first + 1))
    shutil.copytree(os.path.join(base, str(first)), partial)
    with open(os.path.join(partial, SOURCE_MODEL_FILE), "w") as f:
        f.write("uri://model/2")
    assert version_of(base, "uri://model/2") is None  # so a rerun pushes model 2 again, completely
    assert version_of(base, "uri://model/1") == first


def test_interrupted_push_leaves_no_version_and_the_previous_one_untouched(tmp_path):
    base = str(tmp_path / "serving" / "m")
    good = push_atomically(_model(tmp_path / "good"), base, "uri://good")
    before = sorted(os.listdir(os.path.join(base, str(good))))
    broken = _model(tmp_path / "broken")
    os.symlink(str(tmp_path / "gone"), os.path.join(broken, "zzz_dangling"))  # the copy fails part-way
    with pytest.raises(Exception):
        push_atomically(broken, base, "uri://broken")
    assert versions(base) == [good]
    assert os.listdir(base) == [str(good)]
    assert sorted(os.listdir(os.path.join(base, str(good)))) == before


def test_only_the_newest_versions_are_kept(tmp_path):
    base = str(tmp_path / "serving" / "m")
    pushed = [push_atomically(_model(tmp_path / f"m{i}"), base, f"uri://{i}") for i in range(4)]
    prune(base, 2)
    assert versions(base) == pushed[-2:]
    prune(base, 0)
    assert versions(base) == pushed[-2:]


def _config(base):
    """The model config file beside the model folder, parsed with TF Serving's own ModelServerConfig proto."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    path = os.path.join(os.path.dirname(base), "models.config")
    with open(path) as f:
        text = f.read()
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    return text, {model.name: model for model in config.model_config_list.config}


def _served(base):
    model = _config(base)[1][os.path.basename(base)]
    assert model.model_version_policy.WhichOneof("policy_choice") == "specific"
    return list(model.model_version_policy.specific.versions)


def test_the_model_config_names_a_version_only_once_it_is_complete(tmp_path):
    base = str(tmp_path / "serving" / "m")
    first = push_atomically(_model(tmp_path / "a"), base, "uri://1")
    model = _config(base)[1]["m"]
    assert (model.base_path, model.model_platform) == (base, "tensorflow") and _served(base) == [first]
    seen = []

    def check(staging):  # runs when the copy is complete, before the rename: the config must not name it yet
        seen.append((sorted(os.listdir(staging)), _served(base)))

    second = push_atomically(_model(tmp_path / "b"), base, "uri://2", check=check)
    assert seen == [(["assets.extra", "saved_model.pb", "variables"], [first])]
    assert _served(base) == [first, second] == versions(base)
    other = push_atomically(_model(tmp_path / "c"), str(tmp_path / "serving" / "other"), "uri://3")
    assert _served(base) == [first, second] and _served(str(tmp_path / "serving" / "other")) == [other]


def test_a_failed_push_leaves_the_model_config_as_it_was(tmp_path):
    from tfx_image_finetune.components.pusher.servable_check import ServableCheckError

    base = str(tmp_path / "serving" / "m")
    good = push_atomically(_model(tmp_path / "good"), base, "uri://good")
    before = _config(base)[0]
    broken = _model(tmp_path / "broken")
    os.symlink(str(tmp_path / "gone"), os.path.join(broken, "zzz_dangling"))  # the copy fails part-way
    with pytest.raises(Exception):
        push_atomically(broken, base, "uri://broken")

    def refuse(staging):
        raise ServableCheckError(f"{staging}: warmup request 1 failed")

    with pytest.raises(ServableCheckError):
        push_atomically(_model(tmp_path / "unservable"), base, "uri://unservable", check=refuse)
    assert _config(base)[0] == before and _served(base) == [good] == versions(base)
    # No temporary config left (the lock file stays: an empty file that only serialises the writers).
    assert sorted(os.listdir(tmp_path / "serving")) == [".models.config.lock", "m", "models.config"]


def test_pruned_versions_leave_the_model_config_before_their_folders_go(tmp_path):
    base = str(tmp_path / "serving" / "m")
    pushed = [push_atomically(_model(tmp_path / f"m{i}"), base, f"uri://{i}") for i in range(4)]
    assert _served(base) == pushed
    prune(base, 3)
    assert _served(base) == pushed[1:] == versions(base)
    # Make deleting the oldest version fail (a version folder that is a link: rmtree refuses it): the config
    # must already have stopped naming it, or TF Serving would keep a version whose files are going away.
    os.rename(os.path.join(base, str(pushed[1])), str(tmp_path / "moved"))
    os.symlink(str(tmp_path / "moved"), os.path.join(base, str(pushed[1])))
    with pytest.raises(Exception):
        prune(base, 2)
    assert _served(base) == pushed[2:]


def _servable(path, warmup_images, signature="serving_default"):
    """A small real SavedModel that decodes images, with TF Serving warmup requests for them."""
    import tensorflow as tf
    from tfx_image_finetune.trainer.export import write_warmup_requests
    from tfx_image_finetune.serving_contract import WARMUP_FILE

    class Decoder(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve(self, image_bytes):
            decode = lambda data: tf.reduce_mean(tf.cast(tf.io.decode_image(data, 3, expand_animations=False), tf.float32))
            return {"brightness": tf.map_fn(decode, image_bytes, fn_output_signature=tf.float32)}

    module = Decoder()
    tf.saved_model.save(module, str(path), signatures={signature: module.serve})
    os.makedirs(os.path.dirname(os.path.join(path, WARMUP_FILE)), exist_ok=True)
    write_warmup_requests(os.path.join(path, WARMUP_FILE), warmup_images)
    return str(path)


def _png():
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def test_a_model_whose_warmup_requests_fail_is_never_made_visible(tmp_path):
    from tfx_image_finetune.components.pusher.servable_check import ServableCheckError, check_servable

    base = str(tmp_path / "serving" / "m")
    good = _servable(tmp_path / "good", [_png(), _png()])
    assert check_servable(good) == 2
    pushed = push_atomically(good, base, "uri://good", check=check_servable)
    assert versions(base) == [pushed]

    bad = _servable(tmp_path / "bad", [_png(), b"GIF89a but not really"])
    with pytest.raises(ServableCheckError, match="warmup request 2 failed"):
        push_atomically(bad, base, "uri://bad", check=check_servable)
    unnamed = _servable(tmp_path / "unnamed", [_png()], signature="predict")
    with pytest.raises(ServableCheckError, match="no 'serving_default' signature"):
        push_atomically(unnamed, base, "uri://unnamed", check=check_servable)
    assert os.listdir(base) == [str(pushed)]  # no new version, no staging folder left


def _executor_push(tmp_path, model_dir, blessed, base, tflite_passed=None):
    """The pusher's real TFX executor, given Model / ModelBlessing artifacts as the pipeline would (and, with
    `tflite_passed`, TFLiteGate's verdict)."""
    import json

    from tfx.proto import pusher_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    from tfx_image_finetune.components.pusher.executor import Executor

    model, blessing, pushed = (standard_artifacts.Model(), standard_artifacts.ModelBlessing(),
                               standard_artifacts.PushedModel())
    model.uri, blessing.uri, pushed.uri = model_dir, str(tmp_path / "blessing"), str(tmp_path / "pushed_model")
    blessing.set_int_custom_property("blessed", int(blessed))
    destination = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base))
    inputs = {"model": [model], "model_blessing": [blessing]}
    if tflite_passed is not None:
        from tfx_image_finetune.components.tflite_gate.component import TFLiteEvaluation

        verdict = TFLiteEvaluation()
        verdict.set_int_custom_property("passed", int(tflite_passed))
        verdict.set_string_custom_property("reason", "TFLite accuracy 0.5000 vs SavedModel 0.9000")
        inputs["tflite_evaluation"] = [verdict]
    Executor().Do(inputs, {"pushed_model": [pushed]},
                  {"push_destination": proto_utils.proto_to_json(destination),
                   "custom_config": json.dumps({"keep_versions": 0, "check_servable": True})})
    return pushed


def test_the_executor_pushes_only_blessed_models_that_pass_the_servable_check(tmp_path):
    from tfx_image_finetune.components.pusher.servable_check import ServableCheckError

    base = str(tmp_path / "serving" / "m")
    # A Trainer's Model artifact holds the SavedModel in Format-Serving/.
    good = os.path.dirname(_servable(tmp_path / "good" / "Format-Serving", [_png()]))
    assert _executor_push(tmp_path, good, blessed=False, base=base).get_int_custom_property("pushed") == 0
    assert versions(base) == []
    with pytest.raises(ServableCheckError, match="warmup request 1 failed"):
        bad = os.path.dirname(_servable(tmp_path / "bad" / "Format-Serving", [b"\x89PNG broken"]))
        _executor_push(tmp_path, bad, blessed=True, base=base)
    assert not os.path.exists(base) or os.listdir(base) == []
    pushed = _executor_push(tmp_path, good, blessed=True, base=base)
    assert pushed.get_int_custom_property("pushed") == 1
    assert versions(base) == [int(pushed.get_string_custom_property("pushed_version"))]
    assert _served(base) == versions(base)
    os.remove(os.path.join(os.path.dirname(base), "models.config"))  # e.g. pushed before the config existed
    again = _executor_push(tmp_path, good, blessed=True, base=base)  # a rerun re-blessing the same model
    assert again.get_string_custom_property("pushed_version") == pushed.get_string_custom_property("pushed_version")
    assert _served(base) == versions(base)  # not copied again, but named in a new config


def test_the_vertex_pusher_refuses_an_unservable_model_before_any_vertex_call(tmp_path):
    """The Vertex executor's Do, as the pipeline runs it; the refusal comes before TFX's Vertex code runs at all
    (its first step copies the model into the PushedModel artifact, so that folder must stay absent)."""
    import json

    from tfx.extensions.google_cloud_ai_platform import constants
    from tfx.types import standard_artifacts

    from tfx_image_finetune.components.pusher.servable_check import ServableCheckError
    from tfx_image_finetune.components.pusher.vertex import Executor

    def do(model_dir, blessed):
        model, blessing, pushed = (standard_artifacts.Model(), standard_artifacts.ModelBlessing(),
                                   standard_artifacts.PushedModel())
        model.uri, blessing.uri, pushed.uri = model_dir, str(tmp_path / "blessing"), str(tmp_path / "pushed")
        blessing.set_int_custom_property("blessed", int(blessed))
        Executor().Do({"model": [model], "model_blessing": [blessing]}, {"pushed_model": [pushed]},
                      {"custom_config": json.dumps({
                          constants.ENABLE_VERTEX_KEY: True, constants.VERTEX_REGION_KEY: "europe-west4",
                          constants.VERTEX_CONTAINER_IMAGE_URI_KEY: "us-docker.pkg.dev/vertex-ai/prediction/x",
                          constants.SERVING_ARGS_KEY: {"project_id": "my-proj", "endpoint_name": "cats"}})})
        return pushed

    bad = os.path.dirname(_servable(tmp_path / "bad" / "Format-Serving", [b"\x89PNG broken"]))
    with pytest.raises(ServableCheckError, match="warmup request 1 failed"):
        do(bad, blessed=True)
    unloadable = _model(tmp_path / "unloadable" / "Format-Serving")
    with pytest.raises(ServableCheckError, match="does not load"):
        do(os.path.dirname(unloadable), blessed=True)
    assert not os.path.exists(tmp_path / "pushed")  # TFX's Vertex Do never started
    assert do(bad, blessed=False).get_int_custom_property("pushed") == 0  # unblessed: not pushed, not checked


RACE_TRIALS = 100


def _race_worker(name, trials, root, model_dir, barrier, results):
    """One pushing process: in each trial it waits for the others at the barrier, then pushes to that trial's
    serving dir (a real process, so the lock and the config write race as two pipelines would)."""
    from tfx_image_finetune.components.pusher.executor import push_atomically

    for trial in range(trials):
        base = os.path.join(root, str(trial), "serving", name.split("-")[0])
        barrier.wait(timeout=120)
        try:
            results.put((trial, name, push_atomically(model_dir, base, f"uri://{name}/{trial}")))
        except Exception as err:  # noqa: BLE001 - the parent counts it as a lost push
            results.put((trial, name, f"{type(err).__name__}: {err}"))


@pytest.mark.slow  # three spawned interpreters importing TFX, 300 pushes: 40-75 s on the shared machine
def test_concurrent_pushes_to_one_serving_dir_lose_no_version(tmp_path):
    """Three processes started together at a barrier, RACE_TRIALS times: two push model `a` (same model name:
    each must get its own version), one pushes model `b` (same models.config). Every pushed version must be
    on disk and named in models.config, for both models, in every trial."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # fresh interpreters, as separate pipeline runs would be
    names = ["a-1", "a-2", "b-1"]
    barrier, results = ctx.Barrier(len(names)), ctx.Queue()
    workers = [ctx.Process(target=_race_worker, args=(name, RACE_TRIALS, str(tmp_path / "trials"),
                                                      _model(tmp_path / "models" / name), barrier, results))
               for name in names]
    for worker in workers:
        worker.start()
    pushed = {}
    for _ in range(RACE_TRIALS * len(names)):
        trial, name, version = results.get(timeout=300)
        pushed.setdefault(trial, {})[name] = version
    for worker in workers:
        worker.join(timeout=60)
    lost = []
    for trial, by_name in sorted(pushed.items()):
        serving = tmp_path / "trials" / str(trial) / "serving"
        errors = [f"{name}: {v}" for name, v in by_name.items() if not isinstance(v, int)]
        a = sorted(v for name, v in by_name.items() if name.startswith("a-") and isinstance(v, int))
        b = [v for name, v in by_name.items() if name.startswith("b-") and isinstance(v, int)]
        config = _config(str(serving / "a"))[1] if os.path.exists(serving / "models.config") else {}
        served = {name: sorted(m.model_version_policy.specific.versions) for name, m in config.items()}
        ok = (not errors and len(set(a)) == 2 and served.get("a") == a == versions(str(serving / "a"))
              and served.get("b") == b == versions(str(serving / "b")))
        if not ok:
            lost.append(f"trial {trial}: pushed a={a} b={b} {errors}; config {served}; on disk "
                        f"a={versions(str(serving / 'a'))} b={versions(str(serving / 'b'))}")
    assert not lost, f"{len(lost)} of {RACE_TRIALS} trials lost a version:\n" + "\n".join(lost[:5])


def _record_run(output_dir, artifacts):
    """A real MLMD store at <output_dir>/metadata.sqlite with one pipeline_run context holding these TFX
    artifacts, as the LocalDagRunner records a run's outputs."""
    from ml_metadata.proto import metadata_store_pb2

    from tfx_image_finetune.report import run_summary

    os.makedirs(output_dir, exist_ok=True)
    s = run_summary.store(os.path.join(output_dir, "metadata.sqlite"))
    for artifact in artifacts:
        artifact.mlmd_artifact.type_id = s.put_artifact_type(artifact.artifact_type)
    ids = s.put_artifacts([a.mlmd_artifact for a in artifacts])
    context_type = s.put_context_type(metadata_store_pb2.ContextType(name="pipeline_run"))
    [context] = s.put_contexts([metadata_store_pb2.Context(type_id=context_type, name="run-a")])
    s.put_attributions_and_associations(
        [metadata_store_pb2.Attribution(artifact_id=i, context_id=context) for i in ids], [])
    return os.path.join(output_dir, "metadata.sqlite")


def test_the_closing_line_and_the_report_name_the_version_this_run_pushed(tmp_path):
    """Run A pushes, then run B (another --output, same --serving-dir and --model-name) pushes a newer version:
    A's closing line and report must name A's version, read from A's PushedModel artifact, not the newest on
    disk."""
    from tfx.types import standard_artifacts

    from tfx_image_finetune.report import run_report as report
    from tfx_image_finetune.report import run_summary

    base = str(tmp_path / "serving" / "m")
    model_a = os.path.dirname(_servable(tmp_path / "model_a" / "Format-Serving", [_png()]))
    model_b = os.path.dirname(_servable(tmp_path / "model_b" / "Format-Serving", [_png()]))
    pushed_a = _executor_push(tmp_path / "run_a", model_a, blessed=True, base=base)
    pushed_b = _executor_push(tmp_path / "run_b", model_b, blessed=True, base=base)
    version_a, version_b = (int(p.get_string_custom_property("pushed_version")) for p in (pushed_a, pushed_b))
    assert versions(base) == [version_a, version_b]
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "run_a" / "blessing")
    os.makedirs(blessing.uri, exist_ok=True)
    open(os.path.join(blessing.uri, "BLESSED"), "w").close()  # as TFX's Evaluator marks a blessed model
    output_a = str(tmp_path / "out_a")
    metadata = _record_run(output_a, [blessing, pushed_a])

    lines = run_summary.describe(metadata, base).splitlines()
    assert lines[-1].startswith("Model BLESSED") and lines[-1].endswith(
        f"; serving version: {os.path.join(base, str(version_a))}"), lines
    assert report.collect(output_a)["push"] == {"pushed": True, "version": str(version_a),
                                               "destination": os.path.join(base, str(version_a))}


def test_a_tflite_model_goes_into_the_version_only_if_it_passed_its_gate(tmp_path):
    import shutil

    base = str(tmp_path / "serving" / "m")
    good = os.path.dirname(_servable(tmp_path / "good" / "Format-Serving", [_png()]))
    _model(os.path.join(good, "tflite"), ("model.tflite", "labels.txt", "export.json"))
    worse = shutil.copytree(good, str(tmp_path / "worse"))
    refused = _executor_push(tmp_path, worse, blessed=True, base=base, tflite_passed=False)
    version = os.path.join(base, refused.get_string_custom_property("pushed_version"))
    assert refused.get_int_custom_property("pushed") == 1 and os.path.isfile(os.path.join(version, "saved_model.pb"))
    assert not os.path.exists(os.path.join(version, "tflite"))  # the SavedModel is pushed all the same
    assert refused.get_string_custom_property("tflite") == "not pushed: TFLite accuracy 0.5000 vs SavedModel 0.9000"
    passed = _executor_push(tmp_path, good, blessed=True, base=base, tflite_passed=True)
    version = os.path.join(base, passed.get_string_custom_property("pushed_version"))
    assert sorted(os.listdir(os.path.join(version, "tflite"))) == ["labels.txt", "model.tflite"]
    assert passed.get_string_custom_property("tflite") == "pushed"
    assert sorted(os.listdir(base)) == sorted(str(v) for v in versions(base))  # no staging folder left
