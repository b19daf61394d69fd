"""TrainingHyperparameters: epochs and learning rates in, the Trainer's HyperParameters artifact out.

A Python-function component: its int/float parameters compile to real KFP pipeline parameters
(tests/test_kubeflow.py), and the Trainer reads the artifact natively as `fn_args.hyperparameters`.
"""

import json
import os

from tfx.dsl.component.experimental.annotations import OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from tfx_image_finetune.component_configs import check_hyperparameters

FILE_NAME = "hyperparameters.json"


@component
def TrainingHyperparameters(  # noqa: N802 - a component class, named as TFX names its own
    head_epochs: Parameter[int],
    finetune_epochs: Parameter[int],
    head_learning_rate: Parameter[float],
    finetune_learning_rate: Parameter[float],
    hyperparameters: OutputArtifact[standard_artifacts.HyperParameters],
) -> None:
    """Checks the values (a pipeline parameter can be set to anything at submit time) and writes them."""
    import tensorflow as tf  # gfile: the artifact may live on gs://

    values = check_hyperparameters(dict(head_epochs=head_epochs, finetune_epochs=finetune_epochs,
                                        head_learning_rate=head_learning_rate,
                                        finetune_learning_rate=finetune_learning_rate))
    tf.io.gfile.makedirs(hyperparameters.uri)  # LocalDagRunner creates it; the KFP v2 entrypoint does not
    with tf.io.gfile.GFile(os.path.join(hyperparameters.uri, FILE_NAME), "w") as f:
        json.dump(values, f)
