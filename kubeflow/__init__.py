"""Vertex AI Pipelines / Kubeflow Pipelines (KFP v2) runner."""
