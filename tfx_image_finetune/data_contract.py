"""What the examples carry from ingest to serving: split names, the examples' compression, the extra features and
outputs, the pixel limit and the curated schema. Shared by the ExampleGens, Transform, the Trainer, the report and
predict; stdlib only (the CLI imports it)."""

import importlib.resources

# The three example splits: the Trainer fits on train and early-stops / keeps its best weights on selection;
# the Evaluator blesses on test, which played no part in choosing the model.
TRAIN_SPLIT, SELECTION_SPLIT, TEST_SPLIT = "train", "selection", "test"
# The ExampleGens write their examples as FORMAT_TFRECORDS_GZIP; every reader of those TFRecords opens them so.
EXAMPLES_COMPRESSION = "GZIP"
FILENAME_FEATURE = "filename"  # the image folder's relative path in each tf.Example (hash splits, report)
INGEST_REPORT_KEY = "ingest_report"  # the ExampleGens' extra output: kept and skipped files
# Images whose header claims more pixels are refused before decoding (image_header.py, trainer/pixel_limit.py):
# PIL's Image.MAX_IMAGE_PIXELS (1024 * 1024 * 1024 // 4 // 3, ~89.5 MP), what image tools already accept.
MAX_IMAGE_PIXELS = 89_478_485
LIMIT_FLAG = "--max-image-pixels"

# Where the curated raw-data schema ships: the `tfx_image_finetune.schema` package's folder (package data). A real
# folder path, not a resource stream: ImportSchemaGen (TFX) reads <schema_dir>/schema.pbtxt by path.
CURATED_SCHEMA_DIR = str(importlib.resources.files("tfx_image_finetune.schema"))
