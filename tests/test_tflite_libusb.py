"""tflite-support's compiled modules link libusb-1.0, which a fresh machine lacks: the metadata writer the
--tflite export uses imports there, on the copy from the libusb-package wheel (no weights, no training)."""

import json
import os
import subprocess
import sys

from tests.conftest import REPO

CHILD = """
import json
from tfx_image_finetune.trainer.tflite import load_libusb
load_libusb()
from tensorflow_lite_support.metadata.python.metadata_writers import image_classifier
with open("/proc/self/maps") as f:
    print(json.dumps(sorted({line.split(maxsplit=5)[5].strip() for line in f if "libusb-1.0" in line})))
"""


def test_the_metadata_writer_imports_on_the_wheels_libusb_whatever_the_system_has():
    """In a fresh process (nothing loaded before): the import succeeds, and the only libusb mapped is the wheel's
    (a system copy, where there is one, is not what tflite-support runs on)."""
    import libusb_package

    done = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    mapped = json.loads(done.stdout.strip().splitlines()[-1])
    assert mapped == [os.path.realpath(libusb_package.get_library_path())], mapped
