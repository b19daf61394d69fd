"""preprocessing_fn through real tf.Transform (Beam): shapes, [-1, 1] range, label vocabulary, int labels."""


import numpy as np
import pytest
import tensorflow as tf

from tfx_image_finetune.trainer.transform import IMAGE_XF, LABEL_VOCAB, LABEL_XF, checked_label_ids
from tests.helpers import analyze_and_transform, encoded_image


def test_images_are_decoded_resized_and_scaled_to_minus_one_one(tmp_path):
    rows = [
        {"image": [encoded_image((255, 255, 255))], "label": [b"sunny"]},
        {"image": [encoded_image((0, 0, 0), fmt="PNG")], "label": [b"night"]},
        {"image": [encoded_image((255, 0, 0), size=(200, 90), fmt="GIF")], "label": [b"sunny"]},
        {"image": [encoded_image((128, 128, 128), fmt="BMP")], "label": [b"sunny"]},
    ]
    transformed, output = analyze_and_transform(rows, tf.io.FixedLenFeature([1], tf.string), tmp_path)
    images = np.stack([row[IMAGE_XF] for row in transformed])
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    np.testing.assert_allclose(images[0], 1.0, atol=1e-2)   # white
    np.testing.assert_allclose(images[1], -1.0, atol=1e-2)  # black
    np.testing.assert_allclose(images[2][..., 0], 1.0, atol=2e-2)  # red GIF: R channel high
    np.testing.assert_allclose(images[3], 128 / 127.5 - 1, atol=1e-2)
    vocab = [v.decode() for v in output.vocabulary_by_name(LABEL_VOCAB)]
    assert vocab == ["night", "sunny"]  # sorted names, not frequency order
    assert [int(row[LABEL_XF]) for row in transformed] == [1, 0, 1, 1]


def test_integer_labels_from_tfrecords_keep_their_numeric_order(tmp_path):
    rows = [{"image": [encoded_image((10 * i, 0, 0))], "label": [i % 11]} for i in range(22)]
    transformed, output = analyze_and_transform(rows, tf.io.FixedLenFeature([1], tf.int64), tmp_path, 16)
    vocab = [v.decode() for v in output.vocabulary_by_name(LABEL_VOCAB)]
    assert vocab == [str(i) for i in range(11)]  # 2 before 10, as the integers are ordered
    assert [int(row[LABEL_XF]) for row in transformed] == [i % 11 for i in range(22)]


@pytest.mark.parametrize("majority", ["cat", "dog"])
def test_class_ids_do_not_depend_on_the_class_balance(tmp_path, majority):
    minority = "dog" if majority == "cat" else "cat"
    rows = [{"image": [encoded_image((i, i, i))], "label": [majority.encode()]} for i in range(5)]
    rows.append({"image": [encoded_image((9, 9, 9))], "label": [minority.encode()]})
    transformed, output = analyze_and_transform(rows, tf.io.FixedLenFeature([1], tf.string), tmp_path)
    assert [v.decode() for v in output.vocabulary_by_name(LABEL_VOCAB)] == ["cat", "dog"]
    expected = {"cat": 0, "dog": 1}
    assert [int(row[LABEL_XF]) for row in transformed] == [expected[majority]] * 5 + [expected[minority]]


def test_a_label_outside_the_vocabulary_is_an_error_naming_it(tmp_path):
    rows = [{"image": [encoded_image((1, 1, 1))], "label": [b"cat"]}, {"image": [encoded_image((2, 2, 2))], "label": [b"dog"]}]
    _, output = analyze_and_transform(rows, tf.io.FixedLenFeature([1], tf.string), tmp_path)
    layer = output.transform_features_layer()

    def ids(labels):
        raw = {"image": tf.constant([[encoded_image((3, 3, 3))]] * len(labels)), "label": tf.constant([[x] for x in labels])}
        return checked_label_ids(raw["label"], layer(raw)[LABEL_XF]).numpy().tolist()

    assert ids([b"dog", b"cat"]) == [1, 0]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)not among the classes of the model.*bird"):
        ids([b"dog", b"bird"])


def test_a_non_image_fails_with_invalid_argument(tmp_path):
    rows = [{"image": [b"definitely not an image"], "label": [b"a"]}, {"image": [encoded_image((1, 1, 1))], "label": [b"b"]}]
    with pytest.raises(Exception, match="(?i)unknown image file format|invalid"):
        analyze_and_transform(rows, tf.io.FixedLenFeature([1], tf.string), tmp_path)


def test_the_trainer_refuses_a_vocabulary_that_is_not_the_task_the_pipeline_was_built_for(tmp_path):
    from tfx_image_finetune.trainer.task import ClassListError, check_training_examples, class_names

    rows = [{"image": [encoded_image((i, i, i))], "label": [name]} for i, name in enumerate([b"red", b"green", b"blue"])]
    _, output = analyze_and_transform(rows, tf.io.FixedLenFeature([1], tf.string), tmp_path)
    assert class_names(output, 3) == ["blue", "green", "red"]
    # Built for two classes (binary Evaluator metrics), the data has three: stop before training, naming both.
    with pytest.raises(ClassListError, match=r"has 3 classes \['blue', 'green', 'red'\], but the pipeline was built for 2"):
        class_names(output, 2)
    check_training_examples(["blue", "green", "red"], {"blue": 4, "green": 1, "red": 2})
    with pytest.raises(ClassListError, match=r"\['green'\] have no training examples"):
        check_training_examples(["blue", "green", "red"], {"blue": 4, "red": 2})


def test_float_labels_are_refused_naming_the_type(tmp_path):
    rows = [{"image": [encoded_image((1, 1, 1))], "label": [1.0]}, {"image": [encoded_image((2, 2, 2))], "label": [0.0]}]
    with pytest.raises(ValueError, match="strings or integers.*float32"):
        analyze_and_transform(rows, tf.io.FixedLenFeature([1], tf.float32), tmp_path)


def test_the_trainers_input_pipeline_names_a_label_the_model_does_not_know(tmp_path):
    from tfx_image_finetune.trainer.data import make_dataset

    rows = [{"image": [encoded_image((1, 1, 1))], "label": [b"cat"]}, {"image": [encoded_image((2, 2, 2))], "label": [b"dog"]}]
    _, output = analyze_and_transform(rows, tf.io.FixedLenFeature([1], tf.string), tmp_path)
    path = str(tmp_path / "examples.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for label in (b"dog", b"bird"):
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded_image((3, 3, 3))])),
                "label": tf.train.Feature(bytes_list=tf.train.BytesList(value=[label]))})).SerializeToString())
    ds = make_dataset([path], output, "label", batch_size=2, training=False)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)not among the classes of the model.*bird"):
        list(ds)
