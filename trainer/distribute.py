"""Where the Trainer runs: one process, the GPUs of one worker, or several workers.

Vertex AI Training sets TF_CONFIG in every replica of a multi-worker job (`chief` for the first pool, `worker`
for the others), and every replica runs the same Trainer executor and `run_fn`. TFX only tells the chief apart
and leaves "export once" to the module: here the chief alone writes what outlives the run (SavedModel, history,
TensorBoard logs); the other workers write the same files to scratch folders of their own, removed when they
are done. Everything the workers decide (early stopping, the best epoch, the fine-tuning strategy) comes from
values they share: metrics are all-reduced by Keras, and `check_agreed` refuses a run whose workers differ.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Iterator

from tfx_image_finetune.trainer.keras2 import keras, tf

log = logging.getLogger(__name__)
CHIEF_EXPORT_WAIT_SECONDS = 600  # a worker waits this long for the chief's SavedModel (TFX checks it exists)


class WorkerLostError(RuntimeError):
    """A training worker stopped (crashed, killed or unreachable): the whole training fails, naming it."""


class WorkersDisagreeError(RuntimeError):
    """Workers computed different values for something they must share (e.g. the fine-tuning strategy)."""


@dataclass(frozen=True)
class Cluster:
    """This process's place in the training cluster that TF_CONFIG describes (a cluster of one without it)."""

    task_type: str  # "chief", "worker" ("master": the legacy name of the chief); "" outside a cluster
    task_index: int
    workers: int  # processes that train: chief and workers
    has_chief: bool = False

    @classmethod
    def from_env(cls) -> "Cluster":
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
        cluster = config.get("cluster") or {}
        workers = sum(len(cluster.get(kind, [])) for kind in ("chief", "master", "worker"))
        if not workers:
            return cls("", 0, 1)
        task = config.get("task") or {}
        return cls(str(task.get("type", "")), int(task.get("index", 0)), workers,
                   has_chief=bool(cluster.get("chief") or cluster.get("master")))

    @property
    def is_chief(self) -> bool:
        """The chief; in a cluster without one, worker 0 (TF's own rule for MultiWorkerMirroredStrategy)."""
        if self.workers == 1:
            return True
        if self.task_type in ("chief", "master"):
            return self.task_index == 0
        return not self.has_chief and self.task_type == "worker" and self.task_index == 0

    @property
    def name(self) -> str:
        return f"{self.task_type} {self.task_index}" if self.task_type else "the only worker"


def device_distribution(cluster: Cluster) -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy for a cluster of several workers, MirroredStrategy across the GPUs of one
    worker, TF's default strategy otherwise. Must run before the process's first TF operation: collective ops
    cannot be configured after that."""
    if cluster.workers > 1:
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as err:
            raise RuntimeError(f"{cluster.name}: MultiWorkerMirroredStrategy could not start ({err}); it must be "
                               "created before any TensorFlow operation runs in the process") from err
        log.info("%s of %d workers, MultiWorkerMirroredStrategy over %d replica(s)", cluster.name, cluster.workers,
                 strategy.num_replicas_in_sync)
        return strategy
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        log.info("training on %d GPUs with MirroredStrategy", len(gpus))
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def check_agreed(strategy: tf.distribute.Strategy, value: float, what: str) -> None:
    """Every replica must hold the same `value`: summed over the replicas it is `value` times their count, or
    some worker computed another one (training on, they would build different models and hang or diverge)."""
    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        return
    summed = tf.function(lambda: strategy.reduce(tf.distribute.ReduceOp.SUM,
                                                 strategy.run(lambda: tf.constant(float(value))), axis=None))
    total = summed()
    if abs(float(total) - replicas * float(value)) > 1e-6 * max(1.0, abs(float(value)) * replicas):
        raise WorkersDisagreeError(f"the training workers disagree on {what}: this one has {value}, the "
                                   f"{replicas} replicas sum to {float(total)}")


@contextlib.contextmanager
def output_dir(path: str, cluster: Cluster) -> Iterator[str]:
    """`path` on the chief; on another worker a scratch folder of its own, removed afterwards."""
    if cluster.is_chief:
        yield path
        return
    scratch = tempfile.mkdtemp(prefix=f"tfx-image-finetune-{cluster.task_type}-{cluster.task_index}-")
    try:
        yield os.path.join(scratch, os.path.basename(path.rstrip("/")) or "out")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def wait_for_chief_export(serving_model_dir: str, cluster: Cluster,
                          timeout: float = CHIEF_EXPORT_WAIT_SECONDS) -> None:
    """A worker returns once the chief's SavedModel is complete: TFX's Trainer executor, on every replica,
    fails a run whose serving model folder does not exist when run_fn returns."""
    if cluster.is_chief:
        return
    marker = os.path.join(serving_model_dir, "saved_model.pb")
    deadline = time.monotonic() + timeout
    while not tf.io.gfile.exists(marker):
        if time.monotonic() > deadline:
            raise WorkerLostError(f"{cluster.name}: the chief wrote no SavedModel to {serving_model_dir} within "
                                  f"{timeout:.0f} s of the end of training")
        time.sleep(1.0)


_TASK = re.compile(r"/job:(\w+)/replica:\d+/task:(\d+)")


def lost_worker(err: BaseException, cluster: Cluster) -> WorkerLostError:
    """A collective that failed because a peer went away, as an error naming that peer (as TF names it)."""
    peers = sorted({f"{job} {task}" for job, task in _TASK.findall(str(err))} - {cluster.name})
    who = ", ".join(peers) if peers else "another worker"
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return WorkerLostError(f"training stopped on {cluster.name}: {who} is gone ({type(err).__name__}: {first})")


PEER_FAILURES = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
                 tf.errors.AbortedError)


@contextlib.contextmanager
def mixed_precision(enabled: bool) -> Iterator[None]:
    """`--mixed-precision`: Keras' mixed_float16 policy (float16 compute, float32 variables) for what is built
    and trained inside; the logits layer is float32 (trainer/model.py), so outputs stay float32."""
    if not enabled:
        yield
        return
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
