# The pipeline image for Vertex AI Pipelines / Kubeflow (and Dataflow's sdk_container_image).
# Build and push:  docker build -t gcr.io/PROJECT/tfx-image-finetune:latest . && docker push gcr.io/PROJECT/tfx-image-finetune:latest
FROM tensorflow/tfx:1.16.0

# Built in /src, which is removed after the install: the components run in /pipeline, where no source folder
# (pipeline/, kubeflow/, ...) can shadow an installed package of the same name on sys.path.
WORKDIR /src
COPY requirements.lock setup.py ./
# The lock's exact versions, over what the base image has (uv resolves in seconds; plain pip backtracks).
RUN python -m pip install --no-cache-dir uv \
 && uv pip install --system --no-cache -r requirements.lock
COPY tfx_image_finetune ./tfx_image_finetune
COPY cli ./cli
COPY local ./local
COPY kubeflow ./kubeflow
COPY report ./report
COPY serving ./serving
COPY pipeline ./pipeline
COPY components ./components
COPY trainer ./trainer
COPY schema ./schema
RUN uv pip install --system --no-cache --no-deps . && rm -rf /src
# The curated schema where the compiled spec points (CloudConfig.image_schema_dir).
COPY schema/schema.pbtxt /pipeline/schema/
WORKDIR /pipeline

# TFX's container entrypoint (from the base image) runs each component.
