"""ExampleGen for existing tf.Example TFRecords that proves each image decodes and reports what it skips."""
