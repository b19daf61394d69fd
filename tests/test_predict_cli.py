"""`tfx-image-finetune predict` with bad input: good files still answered, bad ones named with TensorFlow's reason,
paths checked (folders expanded) before the model loads.

The model is a small SavedModel with the serving contract (image_bytes -> probabilities, class_ids, classes) that
decodes with the pipeline's own Transform ops (`trainer.transform.decode_and_scale`): no pipeline run needed.
"""

import io
import os

import pytest
from PIL import Image

from tfx_image_finetune.serving import predict
from tests.conftest import predict_cli, save_color_contract_model

BAD_FILES = {
    "notes.jpg": "Unknown image file format. One of JPEG, PNG, GIF, BMP required.",
    "empty.png": "Input is empty.",
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_color_contract_model(str(tmp_path_factory.mktemp("served") / "image_classifier"))


def _image(path, color, fmt="PNG"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buf, format=fmt)
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    return str(path)


def test_bad_files_are_named_with_tensorflows_reason_and_the_good_ones_still_answered(model_dir, tmp_path, capsys):
    red, blue = _image(tmp_path / "red.png", (250, 0, 0)), _image(tmp_path / "blue.jpg", (0, 0, 250), "JPEG")
    (tmp_path / "notes.jpg").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    files = [red, str(tmp_path / "notes.jpg"), blue, str(tmp_path / "empty.png")]
    code, lines, err = predict_cli(capsys, "--model-dir", model_dir, *files)
    assert code == 1
    assert [(path, label) for path, label, _ in lines] == [(red, "red"), (blue, "blue")]
    assert all(float(p) > 0.9 for _, _, p in lines), lines
    assert err == [f"tfx-image-finetune: error: {tmp_path / name}: not an image the model can decode: {reason}"
                   for name, reason in BAD_FILES.items()]
    assert predict_cli(capsys, "--model-dir", model_dir, red, blue)[0] == 0


def test_the_model_fails_the_whole_batch_and_the_client_names_the_element(model_dir, tmp_path):
    """TF Serving's all-or-nothing batch is kept by the model; the client asks again per image."""
    client = predict.SavedModelClient(model_dir)
    good = open(_image(tmp_path / "red.png", (250, 0, 0)), "rb").read()
    with pytest.raises(predict.NotAnImageError, match=r"^Unknown image file format\. One of JPEG"):
        client.classify([good, b"not an image", good])
    (tmp_path / "bad.gif").write_bytes(b"GIF89a, and nothing else")
    results = list(predict.classify_files(client, [str(tmp_path / "red.png"), str(tmp_path / "bad.gif")]))
    assert results[0][:3] == (str(tmp_path / "red.png"), "red", pytest.approx(results[0].probability))
    assert isinstance(results[1], predict.Failure) and results[1].path == str(tmp_path / "bad.gif")
    assert "Graph execution error" not in results[1].reason and "[[" not in results[1].reason


def test_a_folder_is_expanded_to_its_image_files_recursively_and_sorted(model_dir, tmp_path, capsys):
    folder = tmp_path / "photos"
    expected = sorted([_image(folder / "b.png", (250, 0, 0)), _image(folder / "a" / "z.JPG", (0, 0, 250), "JPEG"),
                       _image(folder / "c" / "d" / "e.bmp", (250, 0, 0), "BMP")])
    (folder / "readme.txt").write_text("not an image, and not an image file name")
    _image(folder / ".staging-1" / "hidden.png", (250, 0, 0))
    code, lines, err = predict_cli(capsys, "--model-dir", model_dir, str(folder))
    assert code == 0, err
    assert [line[0] for line in lines] == expected
    assert [line[1] for line in lines] == ["blue", "red", "red"]  # a/z.JPG, b.png, c/d/e.bmp


def test_paths_are_checked_before_the_model_is_loaded(tmp_path, capsys):
    """The model folder does not exist either: the answer names the image path, so it was checked first."""
    (tmp_path / "empty_folder").mkdir()
    no_model = str(tmp_path / "no_model")
    for argv, message in [
        ([str(tmp_path / "missing.jpg"), str(tmp_path / "gone.png")],
         f"no such image file or folder: '{tmp_path / 'missing.jpg'}', '{tmp_path / 'gone.png'}'"),
        ([str(tmp_path / "empty_folder")], "no image files (.jpg, .jpeg, .png, .gif, .bmp) in folder"),
    ]:
        code, lines, err = predict_cli(capsys, "--model-dir", no_model, *argv)
        assert code == 1 and not lines and message in err[-1], err


@pytest.mark.parametrize("message, reason", [
    ("Graph execution error:\n\nDetected at node map/while/decode_image/DecodeImage defined at (most recent call "
     "last):\n<stack traces unavailable>\nInput is empty.\n\t [[{{node map/while/decode_image/DecodeImage}}]] "
     "[Op:__inference_signature_wrapper_serve_262]", "Input is empty."),
    ("{{function_node __inference_serve_1234}} Unknown image file format. One of JPEG, PNG, GIF, BMP required.\n\t "
     "[[{{node decode_image/DecodeImage}}]]", "Unknown image file format. One of JPEG, PNG, GIF, BMP required."),
    ("Invalid PNG. Failed to initialize decoder.", "Invalid PNG. Failed to initialize decoder."),
])
def test_tensorflows_reason_is_kept_from_every_form_of_op_error(message, reason):
    assert predict.tf_reason(message) == reason


def test_output_file_has_every_class_probability_as_csv_or_json_lines(model_dir, tmp_path, capsys):
    import csv
    import json

    red, blue = _image(tmp_path / "in" / "red.png", (250, 0, 0)), _image(tmp_path / "in" / "blue.png", (0, 0, 250))
    (tmp_path / "in" / "notes.jpg").write_text("not an image")
    labels = tmp_path / "labels.txt"
    labels.write_text("blue\nred\n")
    out_csv = tmp_path / "p.csv"
    code, lines, err = predict_cli(capsys, "--model-dir", model_dir, "--predictions", str(out_csv), "--labels", str(labels),
                                   str(tmp_path / "in"))
    assert code == 1 and "notes.jpg: not an image the model can decode" in err[-1]  # still named, still exit 1
    assert lines == [[f"Wrote 2 prediction(s) to {out_csv} (csv); 1 file(s) failed"]]
    rows = list(csv.DictReader(open(out_csv)))
    assert [(r["file"], r["class"]) for r in rows] == [(blue, "blue"), (red, "red")]
    for r in rows:
        assert abs(float(r["blue"]) + float(r["red"]) - 1) < 1e-5
        assert float(r[r["class"]]) > 0.9
    out_json = tmp_path / "p.out"
    code, _, _ = predict_cli(capsys, "--model-dir", model_dir, "--predictions", str(out_json), "--format", "jsonl", red)
    assert code == 0
    row = json.loads(open(out_json).read())
    assert row["file"] == red and row["class"] == "red" and set(row["probabilities"]) == {"class_0", "class_1"}
    assert row["probabilities"]["class_1"] > 0.9  # no labels.txt in this model: columns by class id
    code, _, err = predict_cli(capsys, "--model-dir", model_dir, "--predictions", str(tmp_path / "p.txt"), red)
    assert code == 2 and "cannot tell the format" in err[-1]


def test_output_rows_are_written_batch_by_batch(model_dir, tmp_path):
    """Images are read a batch at a time and each row is on disk before the next batch is read: the files
    of the second batch are deleted after the first batch's rows are written, and only then is it missed."""
    from tfx_image_finetune.serving.predict_output import PredictionWriter

    files = [_image(tmp_path / "in" / f"{i:02d}.png", (250, 0, 0)) for i in range(predict.BATCH_SIZE + 3)]
    client = predict.SavedModelClient(model_dir)
    results = predict.classify_files(client, files)
    with open(tmp_path / "p.csv", "w", newline="") as f:
        writer = PredictionWriter(f, "csv", ["blue", "red"])
        for _ in range(predict.BATCH_SIZE):
            result = next(results)
            writer.write(result.path, result.label, result.probabilities)
        assert len(open(tmp_path / "p.csv").read().splitlines()) == predict.BATCH_SIZE + 1  # header + rows
        for path in files[predict.BATCH_SIZE:]:
            os.remove(path)
        with pytest.raises(FileNotFoundError):
            next(results)


def test_explain_writes_an_overlay_png_per_answered_image(model_dir, tmp_path, capsys):
    red, blue = _image(tmp_path / "a" / "red.png", (250, 0, 0)), _image(tmp_path / "b" / "red.png", (0, 0, 250))
    (tmp_path / "notes.jpg").write_text("not an image")
    overlays = tmp_path / "overlays"
    code, lines, err = predict_cli(capsys, "--model-dir", model_dir, "--explain", str(overlays), red,
                                   str(tmp_path / "notes.jpg"), blue)
    assert code == 1 and len(err) == 1  # the bad file is named as without --explain, and gets no overlay
    assert [(path, label, overlay) for path, label, _, overlay in lines] == [
        (red, "red", str(overlays / "red.explain.png")), (blue, "blue", str(overlays / "red-2.explain.png"))]
    assert sorted(os.listdir(overlays)) == ["red-2.explain.png", "red.explain.png"]
    for name, rgb in (("red.explain.png", (250, 0, 0)), ("red-2.explain.png", (0, 0, 250))):
        overlay = Image.open(overlays / name)
        assert overlay.format == "PNG" and overlay.size == (8, 8)  # the model's input, as it saw the image
        # a one-colour image: every pixel mattered alike (this model averages), so the heat covers it evenly
        assert len(set(overlay.getdata())) == 1 and overlay.getpixel((0, 0)) != rgb
    code, lines, _ = predict_cli(capsys, "--model-dir", model_dir, "--explain", str(overlays), "--predictions",
                                 str(tmp_path / "p.csv"), red)
    assert code == 0 and lines[-1][0].endswith(f"; 1 overlay(s) in {overlays}"), lines


def test_explain_refuses_a_server_and_a_model_without_the_functions(tmp_path, capsys):
    red = _image(tmp_path / "red.png", (250, 0, 0))
    code, _, err = predict_cli(capsys, "--server", "localhost:8501", "--explain", str(tmp_path / "x"), red)
    assert code == 2 and err[-1].endswith("--explain needs --model-dir: explanations take gradients through the "
                                          "model in this process"), err
    old = save_color_contract_model(str(tmp_path / "old"), explainable=False)
    code, lines, err = predict_cli(capsys, "--model-dir", old, "--explain", str(tmp_path / "x"), red)
    assert code == 1 and not lines and "has no explanation functions" in err[-1], err
