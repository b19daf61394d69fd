"""TrainingHyperparameters: epochs and learning rates as a HyperParameters artifact for the Trainer.

Exists so these can be pipeline (runtime) parameters on Vertex AI / Kubeflow: TFX serializes a
RuntimeParameter inside the Trainer's `custom_config` as an opaque object, but a component's own int/float
execution parameters become real pipeline parameters, and the Trainer reads a HyperParameters input natively
(`fn_args.hyperparameters`).
"""
