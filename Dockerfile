# The pipeline image for Vertex AI Pipelines / Kubeflow (and Dataflow's sdk_container_image).
# Build and push:  docker build -t gcr.io/PROJECT/tfx-image-finetune:latest . && docker push gcr.io/PROJECT/tfx-image-finetune:latest
FROM tensorflow/tfx:1.16.0

WORKDIR /pipeline
COPY requirements.lock setup.py ./
# The lock's exact versions, over what the base image has (uv resolves in seconds; plain pip backtracks).
RUN python -m pip install --no-cache-dir uv \
 && uv pip install --system --no-cache -r requirements.lock
COPY pipeline ./pipeline
COPY components ./components
COPY trainer ./trainer
COPY kubeflow ./kubeflow
COPY schema ./schema
RUN uv pip install --system --no-cache --no-deps .

# TFX's container entrypoint (from the base image) runs each component.
