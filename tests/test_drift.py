"""Data drift (components/data_drift, report/drift.py): the distances, TFDV's label comparator, the image
properties compared; two runs against the shared e2e run's model, and --fail-on-drift."""

import os

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv

from tfx_image_finetune.components.data_drift.compare import distance, image_drifts, label_drift, warning_lines


def test_distances_are_tfdvs_l_infinity_and_jensen_shannon():
    assert distance([50, 50], [75, 25], "linf") == pytest.approx(0.25)
    assert distance([1, 0], [0, 1], "js") == pytest.approx(1.0) and distance([3, 1], [6, 2], "js") == 0
    assert distance([2, 2], [1, 1], "linf") == 0  # shares, not counts


def _stats(tmp_path, name, labels):
    path = str(tmp_path / name)
    stats = tfdv.generate_statistics_from_dataframe(pd.DataFrame({"label": labels}))
    with open(path, "wb") as f:  # as StatisticsGen writes FeatureStats.pb
        f.write(stats.SerializeToString())
    return path


@pytest.mark.parametrize("comparator,threshold", [("linf", 0.2), ("js", 0.05)])
def test_the_label_distribution_goes_through_tfdvs_comparator(tmp_path, comparator, threshold):
    before = _stats(tmp_path, "before", ["night"] * 50 + ["sunny"] * 50)
    same = _stats(tmp_path, "same", ["night"] * 25 + ["sunny"] * 25)
    skewed = _stats(tmp_path, "skewed", ["night"] * 60 + ["sunny"] * 12)
    assert not label_drift(same, before, "label", threshold, comparator)["drifted"]
    found = label_drift(skewed, before, "label", threshold, comparator)
    assert found["drifted"] and found["distance"] == pytest.approx(
        distance([60, 12], [50, 50], comparator), abs=1e-4)
    assert found["detail"] == "{night: 50%, sunny: 50%} -> {night: 83%, sunny: 17%}"


def _summary(count, brightness_bin, width_bin, fmt="JPEG"):
    histogram = {p: [0] * 16 for p in ("width", "height", "aspect", "brightness", "contrast")}
    histogram["brightness"][brightness_bin] = histogram["width"][width_bin] = count
    histogram["height"][width_bin] = histogram["aspect"][4] = histogram["contrast"][3] = count
    mean = {"width": 16.0 * width_bin, "height": 16.0 * width_bin, "aspect": 1.0, "brightness": 16.0 * brightness_bin,
            "contrast": 24.0}
    return {"count": count, "format": {fmt: count}, "colour": {"RGB": count}, "mean": mean, "histogram": histogram}


def test_image_properties_drift_when_their_distributions_move():
    before = {"image_stats": {"train": {"night": _summary(40, 2, 6), "sunny": _summary(40, 12, 6)}}}
    darker_smaller = {"image_stats": {"train": {"night": _summary(40, 1, 3), "sunny": _summary(8, 5, 3)}}}
    found = {f["what"]: f for f in image_drifts(darker_smaller, before, 0.2, "linf")}
    assert {name for name, f in found.items() if f["drifted"]} == {"width", "height", "brightness"}
    assert found["brightness"]["distance"] == pytest.approx(40 / 48)  # bin 1 holds 40 of 48 now, none before
    assert not any(f["drifted"] for f in image_drifts(before, before, 0.2, "linf"))
    assert image_drifts({}, before, 0.2, "linf") == []  # a run from before the statistics: nothing to compare
    lines = warning_lines({"comparator": "linf", "findings": list(found.values())})
    assert len(lines) == 3 and lines[0].startswith("WARNING: data drift against the replaced model's training data: ")


def _darker_smaller_imbalanced(source, target):
    """The demo images at 40% brightness and half size, with a quarter of the sunny ones."""
    import os

    from PIL import Image

    for cls in ("night", "sunny"):
        names = sorted(os.listdir(os.path.join(source, cls)))
        os.makedirs(os.path.join(target, cls))
        for name in names[: len(names) // 4] if cls == "sunny" else names:
            image = Image.open(os.path.join(source, cls, name)).convert("RGB")
            image = image.resize((image.width // 2, image.height // 2)).point(lambda v: int(v * 0.4))
            image.save(os.path.join(target, cls, name), quality=95)
    return str(target)


@pytest.mark.e2e
def test_a_darker_smaller_imbalanced_run_drifts_and_one_on_the_same_data_does_not(first_run, tmp_path):
    """Two runs on copies of the shared first run (whose blessed model each would replace): the same settings
    (every step up to the Trainer cached; the Evaluator judges the model against the first run's), and darker
    images."""
    import re

    from tfx_image_finetune.local import runner as local_runner
    from tfx_image_finetune.metadata_store import store
    from tfx_image_finetune.local.run_child import drift_lines
    from tfx_image_finetune.report import drift
    from tests.conftest import copy_of_run, last_states

    same = copy_of_run(first_run, str(tmp_path / "same"))
    same.data.fail_on_drift = True
    local_runner.run(same)  # the gate passes on the same data
    states = last_states(same.metadata_path, same.runtime.pipeline_name)
    assert states["Trainer"] == "CACHED" and states["Evaluator"] == "COMPLETE", states
    result = drift.drift(same.metadata_path, same.data.drift_threshold)
    assert result["baseline"] and len(result["findings"]) == 8  # labels, 5 image properties, format, colour
    assert not [f for f in result["findings"] if f["drifted"] or f["distance"] > 1e-6]
    assert drift_lines(same) == []

    other = copy_of_run(first_run, str(tmp_path / "other"))
    other.data.path = _darker_smaller_imbalanced(first_run.data.path, tmp_path / "darker")
    other.data.fail_on_drift = True  # first: stopped before training
    other.model.tflite = "none"
    models = len(store(other.metadata_path).get_artifacts_by_type("Model"))
    with pytest.raises(Exception, match=r"--fail-on-drift: stopped before training; label distribution L-infinity"):
        local_runner.run(other)
    assert len(store(other.metadata_path).get_artifacts_by_type("Model")) == models  # nothing trained
    other.data.fail_on_drift = False  # then: the run, with the drift as warnings
    local_runner.run(other)
    found = {f["what"]: f for f in drift.drift(other.metadata_path, other.data.drift_threshold)["findings"]}
    drifted = {what for what, f in found.items() if f["drifted"]}
    assert {"label distribution", "width", "height", "brightness"} <= drifted  # (contrast may fall with brightness)
    assert not {"aspect", "format", "colour"} & drifted  # still square RGB JPEGs
    assert found["label distribution"]["distance"] > 0.25  # 50/50 -> 80/20 (ingest: same split percentages)
    lines = drift_lines(other)
    assert len(lines) == len(drifted) and all(line.startswith("WARNING: data drift") for line in lines), lines
    page = open(os.path.join(other.runtime.output_dir, "report.html"), encoding="utf-8").read()
    shown = dict(re.findall(r'data-drift="([^"]+)" data-drifted="(true|false)"', page))
    assert {what for what, flag in shown.items() if flag == "true"} == drifted
