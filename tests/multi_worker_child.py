"""Training workers on this machine: the project's run_fn with TFX's FnArgs, as TFX's Trainer executor calls it
on every replica of a Vertex AI Training job, one process per task with TF_CONFIG naming 127.0.0.1 ports.
`start` launches them (tests/test_multi_worker.py, benchmarks/multi_worker.py); run as a module, it is one."""

import json
import logging
import os
import socket
import subprocess
import sys
from typing import Dict, List, Sequence, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_ports(n: int) -> List[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start(args: Dict, out: str, tasks: Sequence[Tuple[str, int]]) -> Tuple[List[subprocess.Popen], List[str]]:
    """One process per (task type, index) of `tasks` (none: a single worker without TF_CONFIG), each with
    one TF thread pool thread per core share and its own TMPDIR; logs in <out>/<task>-<index>.log."""
    cluster: Dict[str, List[str]] = {}
    for (kind, _), port in zip(tasks, _free_ports(len(tasks))):
        cluster.setdefault(kind, []).append(f"127.0.0.1:{port}")
    procs, logs = [], []
    for kind, index in tasks or [("single", 0)]:
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TMPDIR=os.path.join(out, f"tmp-{kind}-{index}"),
                   TF_NUM_INTEROP_THREADS="1", TF_NUM_INTRAOP_THREADS="1")  # 2 cores, several processes
        os.makedirs(env["TMPDIR"])
        if tasks:
            env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})
        logs.append(os.path.join(out, f"{kind}-{index}.log"))
        with open(logs[-1], "w") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", "tests.multi_worker_child", json.dumps(args)],
                                          cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs, logs


if __name__ == "__main__":
    from absl import logging as absl_logging
    from tfx.components.trainer.fn_args_utils import FnArgs

    from tfx_image_finetune.trainer.task import run_fn

    absl_logging.set_verbosity(absl_logging.INFO)  # as TFX's executor logs: the Trainer's lines, the digest
    logging.getLogger().setLevel(logging.INFO)
    given = json.loads(sys.argv[1])
    run_fn(FnArgs(train_files=given["train_files"], eval_files=given["eval_files"],
                  transform_output=given["transform_output"], transform_graph_path=given["transform_output"],
                  serving_model_dir=given["serving_model_dir"], model_run_dir=given["model_run_dir"],
                  custom_config=given["custom_config"], hyperparameters=None, base_model=None))
