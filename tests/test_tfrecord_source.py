"""`--source tfrecord`: existing tf.Example TFRecords, an undecodable image skipped and listed: the executor
alone (its ingest report), and the whole pipeline over them."""

import json
import os

import pytest
import tensorflow as tf

from tfx_image_finetune.local import demo_data
from tfx_image_finetune.local import runner as local_runner
from tfx_image_finetune.report import run_summary as md
from tests.conftest import small_config, last_states
from tests.helpers import SPLIT_RATIOS, run_component_executor
from tfx_image_finetune.serving_contract import versions

BAD_IMAGE = b"\xff\xd8\xff\xe0 this is no JPEG"


def _write_tfrecords(folder, images_dir):
    """Two TFRecord shards of (image, int64 label, filename) examples, the last one's image undecodable."""
    os.makedirs(folder)
    rows = []
    for label, cls in enumerate(demo_data.CLASSES):
        for name in sorted(os.listdir(os.path.join(images_dir, cls))):
            rows.append((open(os.path.join(images_dir, cls, name), "rb").read(), label, f"{cls}/{name}"))
    rows.append((BAD_IMAGE, 1, "sunny/broken.jpg"))
    for shard in range(2):
        with tf.io.TFRecordWriter(os.path.join(folder, f"data-{shard}.tfrecord")) as writer:
            for image, label, name in rows[shard::2]:
                writer.write(tf.train.Example(features=tf.train.Features(feature={
                    "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
                    "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                    "filename": tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode()])),
                })).SerializeToString())
    return len(rows) - 1


def test_the_tfrecord_executor_keeps_what_decodes_and_lists_the_undecodable_example(tmp_path):
    """The ingest report of the TFRecord source's executor (real Beam), as the pipeline's component builds it."""
    from tfx_image_finetune.components.image_folder_example_gen.component import hash_split_output
    from tfx_image_finetune.components.tfrecord_example_gen.component import TFRecordExampleGen

    images = str(tmp_path / "images")
    demo_data.generate(images, per_class=20, size=64)
    records = str(tmp_path / "records")
    good = _write_tfrecords(records, images)
    component = TFRecordExampleGen(input_base=records, pattern="*.tfrecord",
                                   output_config=hash_split_output(SPLIT_RATIOS))
    outputs = run_component_executor(component, str(tmp_path / "out"))
    path = os.path.join(outputs["ingest_report"].uri, "report.json")
    report = json.load(open(path))
    assert report["valid_images"] == good and report["skipped_files"] == 1
    skipped = report["skipped"][0]
    assert skipped["path"].startswith("data-") and "[sunny/broken.jpg]" in skipped["path"]
    assert skipped["kind"] == "not a decodable image"
    per_split = report["examples_per_split"]
    assert sum(sum(c.values()) for c in per_split.values()) == good and set(per_split["train"]) == {"0", "1"}
    lines = md.ingest_lines(path, report)
    assert "Skipped: 1 (not a decodable image 1)" in lines and lines[-1] == f"Ingest report: {path}"
    assert outputs["ingest_report"].get_int_custom_property("valid_images") == good
    written = sum(1 for split in ("train", "selection", "test") for f in tf.io.gfile.glob(
        os.path.join(outputs["examples"].uri, f"Split-{split}", "*.gz"))
        for _ in tf.data.TFRecordDataset(f, compression_type="GZIP"))
    assert written == good


@pytest.mark.e2e  # a whole LocalDagRunner run over TFRecords
def test_tfrecord_source_runs_end_to_end_and_lists_the_undecodable_example(tmp_path):
    images = str(tmp_path / "images")
    demo_data.generate(images, per_class=20, size=64)
    records = str(tmp_path / "records")
    good = _write_tfrecords(records, images)

    cfg = small_config(str(tmp_path / "out"), records)
    cfg.data.source, cfg.data.num_classes, cfg.data.tfrecord_pattern = "tfrecord", 2, "*.tfrecord"
    cfg.model.image_size = 64
    cfg.training.batch_size = 8
    cfg.serving.check_servable = False
    cfg.runtime.direct_running_mode = "in_memory"
    local_runner.run(cfg.validate())

    states = last_states(cfg.metadata_path, cfg.runtime.pipeline_name)
    assert all(state == "COMPLETE" for state in states.values()), states
    assert {"ImportExampleGen", "SchemaGen", "Trainer", "Evaluator", "Pusher"} <= set(states)
    # The report's content: the executor test above. Here: the run records it where the closing lines look.
    _, report = md.ingest_report(cfg.metadata_path)
    assert report["valid_images"] == good and report["skipped_files"] == 1
    assert md.blessed(cfg.metadata_path) and len(versions(cfg.serving_model_dir)) == 1
    history = json.load(open(tf.io.gfile.glob(os.path.join(cfg.pipeline_root, "Trainer/model_run/*/history.json"))[0]))
    assert sorted(history["classes"]) == ["0", "1"]  # int64 labels, through the label vocabulary
