"""A push killed with SIGKILL leaves its temporary copies; the next run's supervisor removes them, and only them
(components/pusher/staging.py)."""

import os
import signal
import subprocess
import sys

from tfx_image_finetune.components.pusher import staging

# A process that makes a push's two temporary copies, says where, and waits to be killed.
PUSHER = """
import os, sys, time
from tfx_image_finetune.components.pusher import staging
model_dir = sys.argv[1]
folder = os.path.join(model_dir, staging.name(staging.MODEL_PREFIX))
os.makedirs(os.path.join(folder, "variables"))
config = os.path.join(os.path.dirname(model_dir), staging.name(staging.CONFIG_PREFIX))
open(config, "w").write("model_config_list {}")
print(folder, config, flush=True)
time.sleep(600)
"""


def _pusher(model_dir):
    proc = subprocess.Popen([sys.executable, "-c", PUSHER, model_dir], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().split()


def test_the_copies_of_a_killed_push_are_removed_and_those_of_a_live_one_kept(tmp_path):
    model_dir = str(tmp_path / "serving" / "image_classifier")
    os.makedirs(os.path.join(model_dir, "1"))  # a pushed version
    killed, killed_paths = _pusher(model_dir)
    alive, alive_paths = _pusher(model_dir)
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert all(os.path.exists(p) for p in killed_paths + alive_paths)
        assert sorted(staging.remove_stale(model_dir)) == sorted(killed_paths)
        assert not [p for p in killed_paths if os.path.exists(p)]
        assert all(os.path.exists(p) for p in alive_paths)
        assert os.path.isdir(os.path.join(model_dir, "1"))
    finally:
        alive.kill()
        alive.wait()
    assert sorted(staging.remove_stale(model_dir)) == sorted(alive_paths)
    assert sorted(os.listdir(model_dir)) == ["1"] and os.listdir(os.path.dirname(model_dir)) == ["image_classifier"]
