"""What keeps memory bounded: the Trainer's streamed input (above the cache budget) and the Evaluator's chunks."""

import numpy as np
import tensorflow as tf

from tfx_image_finetune.trainer.data import choose_input, make_dataset
from tfx_image_finetune.trainer.export import in_chunks
from tests.helpers import analyze_and_transform, encoded_image


def test_the_input_is_streamed_only_above_the_budget():
    small = choose_input(1000, 100, 160, budget_mb=2048)  # 1,100 x 160 x 160 x 3 x 4 bytes = 322 MiB
    assert small["in_memory"] and small["decoded_mib"] == 322
    assert small["feature_budget_bytes"] == (2048 - 322) * 2 ** 20 + (322 * 2 ** 20 - 1100 * 160 * 160 * 12)
    large = choose_input(8000, 800, 160, budget_mb=2048)
    assert not large["in_memory"] and large["feature_budget_bytes"] == 2048 * 2 ** 20


def test_streamed_and_in_memory_inputs_give_every_example_once_per_epoch(tmp_path):
    """Shards read interleaved, records shuffled as bytes, decoded per batch: the same examples as the cached path."""
    rows = [{"image": [encoded_image((25 * i, 0, 0))], "label": [b"cat" if i % 2 else b"dog"]} for i in range(10)]
    _, output = analyze_and_transform(rows, tf.io.FixedLenFeature([1], tf.string), tmp_path)
    shards = []
    for shard in range(3):
        shards.append(str(tmp_path / f"examples-{shard}.gz"))
        with tf.io.TFRecordWriter(shards[-1], options="GZIP") as writer:
            for row in rows[shard::3]:
                writer.write(tf.train.Example(features=tf.train.Features(feature={
                    key: tf.train.Feature(bytes_list=tf.train.BytesList(value=value))
                    for key, value in row.items()})).SerializeToString())

    def one_epoch(in_memory):
        seen = []
        for images, labels in make_dataset(shards, output, "label", batch_size=4, training=True, in_memory=in_memory):
            assert images.shape[0] <= 4
            seen += [(round(float(m), 4), int(l)) for m, l in zip(tf.reduce_mean(images, [1, 2, 3]), labels)]
        return sorted(seen)

    streamed = one_epoch(in_memory=False)
    assert len(streamed) == 10 and len(set(streamed)) == 10
    assert streamed == one_epoch(in_memory=True) == one_epoch(in_memory=False)


def test_evaluation_chunks_give_the_whole_batchs_result():
    """TFMA hands the Evaluator's signatures whatever batch it grew; they decode 32 at a time, same result."""
    examples = tf.constant([str(i).encode() for i in range(70)])  # 32 + 32 + 6
    def score(chunk):
        tf.debugging.assert_less_equal(tf.shape(chunk)[0], 32, message="a chunk larger than EVALUATION_CHUNK")
        return tf.strings.to_number(chunk)[:, None] * 2.0

    chunked = tf.function(lambda x: in_chunks(score, x))(examples)
    np.testing.assert_array_equal(chunked.numpy()[:, 0], np.arange(70) * 2.0)
