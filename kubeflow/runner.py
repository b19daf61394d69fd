"""Vertex AI Pipelines / Kubeflow Pipelines v2: compile create_pipeline(...) to a KFP v2 spec, and submit it.

The pipeline definition is the local one; only the runner, the file system (gs://) and the Beam runner
(Dataflow, when enabled) differ.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

from tfx_image_finetune.component_configs import HYPERPARAMETERS
from tfx_image_finetune.config import PipelineConfig, validate_for_cloud
from tfx_image_finetune.pipeline.beam_args import local_beam_args, running_mode


def dataflow_args(cfg: PipelineConfig) -> List[str]:
    """Beam args for every Beam component: Dataflow when enabled, else the pod's cores (pipeline.beam_args)."""
    c = cfg.cloud
    if not c.dataflow:
        return local_beam_args(running_mode(cfg.runtime.direct_running_mode, None))  # a pod: its cores
    temp = c.dataflow_temp_location or f"{cfg.runtime.output_dir.rstrip('/')}/tmp"
    return [
        "--runner=DataflowRunner",
        f"--project={c.project}",
        f"--region={c.region}",
        f"--temp_location={temp}",
        f"--machine_type={c.dataflow_machine_type}",
        f"--max_num_workers={c.dataflow_max_workers}",
        f"--sdk_container_image={c.image_uri}",
        "--experiments=upload_graph",  # Transform's graph can exceed Dataflow's request size
    ]


def validated(cfg: PipelineConfig) -> PipelineConfig:
    """The config checked once, here, with the cloud's rules (nothing is listed: --split-folders and
    --num-classes say the layout)."""
    return validate_for_cloud(cfg.validate())


def compile_pipeline(cfg: PipelineConfig, output: str) -> str:
    """Write the KFP v2 pipeline spec (JSON) for `cfg` to `output`; returns the path."""
    validated(cfg)
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    from tfx_image_finetune.pipeline.pipeline import create_pipeline

    pipeline = create_pipeline(cfg, beam_pipeline_args=dataflow_args(cfg), for_kfp=True)
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(default_image=cfg.cloud.image_uri),
        output_dir=os.path.dirname(os.path.abspath(output)),
        output_filename=os.path.basename(output),
    )
    defaults = {name: getattr(cfg.training, name) for name in HYPERPARAMETERS}
    runner.run(pipeline, parameter_values=defaults, write_out=True)
    return output


def load_template(path: str) -> Dict[str, Any]:
    with open(path) as f:
        return json.load(f)


def pipeline_parameters(spec: Dict[str, Any]) -> Dict[str, Any]:
    """The compiled spec's runtime parameters with their defaults."""
    runtime = spec.get("runtimeConfig", {})
    defaults = dict(runtime.get("parameterValues", {}))
    for name, typed in runtime.get("parameters", {}).items():  # {"intValue": "20"} / {"doubleValue": 0.001}
        kind, value = next(iter(typed.items()))
        defaults[name] = {"intValue": int, "doubleValue": float}.get(kind, str)(value)
    declared = spec["pipelineSpec"]["root"].get("inputDefinitions", {}).get("parameters", {})
    return {name: defaults.get(name) for name in declared}


def job_request(spec: Dict[str, Any], template: str, project: str, region: str, pipeline_root: str,
                service_account: Optional[str], parameter_values: Dict[str, Any],
                enable_caching: bool = True) -> Dict[str, Any]:
    display_name = spec.get("displayName") or spec.get("pipelineSpec", {}).get("pipelineInfo", {}).get("name")
    return {
        "display_name": display_name,
        "template_path": os.path.abspath(template),
        "project": project,
        "location": region,
        "pipeline_root": pipeline_root,
        "service_account": service_account,
        "parameter_values": parameter_values,
        "enable_caching": enable_caching,
    }


def submit(request: Dict[str, Any]):
    """Create the Vertex AI PipelineJob and submit it (needs credentials and the network)."""
    from google.cloud import aiplatform

    aiplatform.init(project=request["project"], location=request["location"])
    job = aiplatform.PipelineJob(
        display_name=request["display_name"],
        template_path=request["template_path"],
        pipeline_root=request["pipeline_root"],
        parameter_values=request["parameter_values"],
        enable_caching=request["enable_caching"],
    )
    job.submit(service_account=request["service_account"])
    return job
