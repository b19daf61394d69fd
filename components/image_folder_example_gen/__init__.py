"""ExampleGen for image folders: <root>/<class>/<file> -> tf.Examples (image, label, filename)."""
