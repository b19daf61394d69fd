"""Decompression bombs (issue 20): an image above the pixel limit is refused from its header, never decoded.

The bombs (tests/image_bombs.py) are real, validly encoded 20000x20000 images (a 1.6 MB JPEG, a 49 KB PNG)
and small real images whose header claims that size. The exported model is built with the project's export
code over a real tf.Transform graph and a tiny Keras head: no pipeline run. The memory a refused request
costs is measured by benchmarks/bomb_memory.py, not here.
"""

import json
import shutil
import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import predict_cli, save_color_contract_model
from tests.image_bombs import BOMB_SIDE, animated_gif, claiming, export_model, jpeg_bomb, png_bomb, small_image
from tfx_image_finetune.component_configs import TrainerConfig, TransformConfig
from tfx_image_finetune.config import PipelineConfig
from tfx_image_finetune.data_contract import MAX_IMAGE_PIXELS
from tfx_image_finetune.image_header import TOO_LARGE, dimensions, pixel_limit_error, size
from tests.helpers import run_example_gen

FORMATS = ("JPEG", "PNG", "GIF", "BMP")
BOMB_REASON = (f"image above the pixel limit: {BOMB_SIDE}x{BOMB_SIDE} = {BOMB_SIDE ** 2} pixels, "
               f"the limit is {MAX_IMAGE_PIXELS} (--max-image-pixels)")


@pytest.fixture(scope="module")
def bombs():
    return {"jpeg": jpeg_bomb(), "png": png_bomb(), "gif": claiming("GIF", BOMB_SIDE, BOMB_SIDE),
            "bmp": claiming("BMP", BOMB_SIDE, -BOMB_SIDE), "png header": claiming("PNG", BOMB_SIDE, BOMB_SIDE)}


def test_the_real_bombs_are_complete_images_of_the_full_size(bombs):
    """Not a header trick: libjpeg decodes every 8x8 block of the JPEG (at 1/8 scale), and the PNG's data
    inflates to all 20000 rows."""
    assert len(bombs["jpeg"]) < 2_000_000 and len(bombs["png"]) < 100_000
    small = tf.io.decode_jpeg(bombs["jpeg"], ratio=8)
    assert small.shape == (BOMB_SIDE // 8, BOMB_SIDE // 8, 1)
    assert float(tf.reduce_mean(tf.cast(small, tf.float32))) == 128  # mid-grey everywhere
    data = bombs["png"]
    length = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    inflate, rows = zlib.decompressobj(), 0
    raw = inflate.decompress(data[41:41 + length], 1 << 20)
    while raw:
        rows += len(raw)
        raw = inflate.decompress(inflate.unconsumed_tail, 1 << 20)
    assert inflate.eof and rows == BOMB_SIDE * (1 + BOMB_SIDE // 8)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_header_readers_agree_on_every_format_tensorflow_decodes(fmt):
    """The Python reader (ExampleGen, predict, the report) and the in-graph one (the exported model)."""
    from tfx_image_finetune.trainer import pixel_limit

    for data, expected in [(small_image(fmt, size=(37, 23)), (37, 23)), (claiming(fmt, 30000, 12345), (30000, 12345))]:
        assert dimensions(data) == expected
        assert tuple(pixel_limit.dimensions(tf.constant(data)).numpy()) == expected
    assert dimensions(b"not an image") is None and dimensions(b"") is None
    assert list(pixel_limit.dimensions(tf.constant(b"not an image")).numpy()) == [0, 0]


def test_a_gifs_frames_count_together_and_a_frame_larger_than_its_screen_counts():
    """giflib reads every frame, each as large as its own descriptor says, whatever the logical screen and
    whatever frame TensorFlow keeps."""
    from tfx_image_finetune.trainer import pixel_limit

    big_frame = bytearray(small_image("GIF"))
    at = big_frame.index(b"\x2c")  # the first image descriptor
    big_frame[at + 5:at + 9] = struct.pack("<HH", BOMB_SIDE, BOMB_SIDE)
    for data, found, reason in [
        (bytes(big_frame), (16, 16, BOMB_SIDE ** 2, 1), "16x16, 1 frame(s) = 400000000 pixels, the limit is 1000 "),
        (animated_gif(20, 3), (20, 20, 1200, 3), "20x20, 3 frame(s) = 1200 pixels, the limit is 1000 "),
    ]:
        assert tuple(size(data)) == found == tuple(pixel_limit.size(tf.constant(data)).numpy())
        assert pixel_limit_error(data, 1000) == f"{TOO_LARGE}: {reason}(--max-image-pixels)"
    assert pixel_limit_error(animated_gif(20, 2), 1000) == ""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The model as the pipeline exports it: the Transform config is the config's own (the default limit)."""
    config = PipelineConfig()
    config.model.image_size = 8
    return export_model(str(tmp_path_factory.mktemp("exported")), TransformConfig.of(config).to_custom_config())


def _examples(images):
    return tf.constant([tf.train.Example(features=tf.train.Features(feature={
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))})).SerializeToString()
        for data in images])


@pytest.mark.parametrize("kind", ["jpeg", "png", "gif", "bmp", "png header"])
def test_the_exported_model_refuses_a_bomb_with_invalid_argument_naming_the_limit(exported, bombs, kind):
    good = small_image("JPEG")
    for signature, inputs in [("serving_default", {"image_bytes": tf.constant([good, bombs[kind]])}),
                              ("serving_examples", {"examples": _examples([good, bombs[kind]])})]:
        with pytest.raises(tf.errors.InvalidArgumentError) as err:
            exported.signatures[signature](**inputs)
        assert BOMB_REASON in err.value.message, (signature, err.value.message)
    out = exported.signatures["serving_default"](image_bytes=tf.constant([good, small_image("PNG", (0, 0, 250))]))
    assert out["probabilities"].shape == (2, 2) and np.allclose(out["probabilities"].numpy().sum(axis=1), 1)


def test_the_limit_travels_from_the_config_into_the_exported_model(tmp_path):
    config = PipelineConfig()
    config.model.image_size, config.data.max_image_pixels = 8, 300
    assert TrainerConfig.of(config, 2).to_custom_config()["transform"]["max_image_pixels"] == 300  # training summary
    model = export_model(str(tmp_path), TransformConfig.of(config).to_custom_config())
    serve = model.signatures["serving_default"]
    assert serve(image_bytes=tf.constant([small_image("GIF", size=(20, 15))]))["classes"].shape == (1,)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"21x15 = 315 pixels, the limit is 300 \(--max-image"):
        serve(image_bytes=tf.constant([small_image("GIF", size=(21, 15))]))
    assert serve(image_bytes=tf.constant([animated_gif(12, 2)]))["classes"].shape == (1,)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"12x12, 3 frame\(s\) = 432 pixels, the limit is 300 "):
        serve(image_bytes=tf.constant([animated_gif(12, 3)]))


def test_a_bomb_in_a_class_folder_is_a_listed_skip(demo_images, tmp_path, bombs):
    from tfx_image_finetune.report.run_summary import ingest_lines

    root = tmp_path / "data"
    shutil.copytree(demo_images, root)
    (root / "night" / "bomb.png").write_bytes(bombs["png"])
    (root / "sunny" / "bomb.jpg").write_bytes(bombs["jpeg"])
    (root / "sunny" / "huge.bmp").write_bytes(claiming("BMP", 12000, 8000))
    (root / "sunny" / "fine.gif").write_bytes(small_image("GIF", size=(300, 200)))
    splits, report = run_example_gen(str(root), str(tmp_path / "out"))
    assert report["valid_images"] == 121 and report["skipped_files"] == 3
    skipped = {r["path"]: (r["kind"], r["reason"]) for r in report["skipped"]}
    assert skipped == {"night/bomb.png": (TOO_LARGE, BOMB_REASON), "sunny/bomb.jpg": (TOO_LARGE, BOMB_REASON),
                       "sunny/huge.bmp": (TOO_LARGE, BOMB_REASON.replace(f"{BOMB_SIDE}x{BOMB_SIDE} = 400000000",
                                                                         "12000x8000 = 96000000"))}
    assert "Skipped: 3 (image above the pixel limit 3)" in ingest_lines(None, report)
    assert "sunny/fine.gif" in {name for rows in splits.values() for name, _ in rows}
    # The limit is the execution's: data.max_image_pixels reaches the executor as an execution parameter.
    _, lower = run_example_gen(str(root), str(tmp_path / "lower"), max_image_pixels=300 * 200 - 1)
    assert lower["skipped_per_reason"] == {".": {TOO_LARGE: 4}}


def test_a_bomb_in_a_tfrecord_example_is_a_listed_skip(bombs):
    from tfx_image_finetune.components.tfrecord_example_gen.executor import _CheckExample

    record = tf.train.Example(features=tf.train.Features(feature={
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[bombs["png"]])),
        "label": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"cat"]))})).SerializeToString()
    [row] = _CheckExample("/data", "image", "label", MAX_IMAGE_PIXELS).process(("/data/a.tfrecord", record))
    assert json.loads(row.value)["reason"] == BOMB_REASON and json.loads(row.value)["kind"] == TOO_LARGE


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The serving contract over the pipeline's own decode (trainer.transform.decode_and_scale, default limit)."""
    return save_color_contract_model(str(tmp_path_factory.mktemp("served") / "image_classifier"))


def test_predict_names_each_bomb_and_answers_the_other_files(served, bombs, tmp_path, capsys):
    red = tmp_path / "red.png"
    red.write_bytes(small_image("PNG"))
    for name in ("jpeg", "png"):
        (tmp_path / f"bomb.{name}").write_bytes(bombs[name])
    files = [str(tmp_path / "bomb.jpeg"), str(red), str(tmp_path / "bomb.png")]
    code, lines, err = predict_cli(capsys, "--model-dir", served, *files)
    assert code == 1 and [line[:2] for line in lines] == [[str(red), "red"]]
    assert err == [f"tfx-image-finetune: error: {path}: {BOMB_REASON}" for path in files[::2]]
    # Sent anyway (a client allowing more), the model refuses it before decoding, with the same words.
    code, lines, err = predict_cli(capsys, "--model-dir", served, "--max-image-pixels", str(10 ** 9), *files)
    assert code == 1 and [line[:2] for line in lines] == [[str(red), "red"]]
    assert err == [f"tfx-image-finetune: error: {path}: {BOMB_REASON}" for path in files[::2]]


def test_the_report_makes_no_thumbnail_of_a_bomb(bombs):
    from tfx_image_finetune.report.render import thumbnail

    assert thumbnail(small_image("JPEG", size=(400, 300))).startswith("data:image/jpeg;base64,")
    assert thumbnail(bombs["jpeg"]) is None and thumbnail(bombs["png"]) is None
    # 120 MP: PIL itself only warns below twice its own limit (179 MP) and would decode it.
    assert thumbnail(png_bomb(12000, 10000)) is None
