"""Execute a compiled KFP v2 pipeline spec (what `tfx-image-finetune compile` writes) on this machine.

A test harness, not a product feature: Vertex AI Pipelines / Kubeflow cannot run here, but the code they
run inside each task can. For every task of the DAG, in dependency order, it builds the ExecutorInput the
KFP v2 launcher would, substitutes the placeholders of the task's container command and arguments, and runs
them as a subprocess with this venv's Python. Resolver tasks are answered from the artifacts earlier tasks
(of this and previous runs through the same `Store`) produced, as the service answers them from its metadata
store. `buckets` maps a `gs://bucket` prefix to a local folder standing in for it (like Vertex's /gcs/ FUSE
mount), so the spec is the one compiled for the cloud.

Formats followed (read, not copied):
- TFX 1.16 tfx/orchestration/kubeflow/v2/container/kubeflow_v2_run_executor.py and
  kubeflow_v2_entrypoint_utils.py: the entrypoint reads `inputs.parameters` (the legacy `Value`s of pipeline
  spec 2.0.0: no --json_serialized_inputs_spec_args is compiled), `inputs.artifacts` / `outputs.artifacts`
  (RuntimeArtifact: name, type, uri, metadata -> properties), `outputs.output_file` (read first: the driver's
  updated exec properties; then overwritten with the ExecutorOutput), task root = dirname(output_file).
- TFX tfx/orchestration/kubeflow/v2/file_based_example_gen/driver.py: the `lifecycle.preCacheCheck`
  container, run before the executor with the same executor input.
- TFX tfx/orchestration/kubeflow/v2/step_builder.py: a latest-blessed-model Resolver compiles to two resolver
  tasks whose `outputArtifactQueries` filter artifacts by schema_title, state, metadata and name.
- KFP sdk/python/kfp/local/executor_input_utils.py: task root <pipeline root>/<run>/<task>, output artifact
  URIs <task root>/<output key>, executor_output.json there; and its executor_output_utils.py: output
  artifacts take the metadata the executor wrote back, and that is what downstream tasks receive.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

PLACEHOLDER = re.compile(r"\{\{\$(.*?)\}\}")
FILTER_TERM = re.compile(r'^(schema_title|name)="(.*)"$|^state=(\w+)$|^metadata\.(\w+)\.number_value=([\d.]+)$')


class TaskFailed(RuntimeError):
    pass


class Store:
    """The artifacts tasks produced (all LIVE), in creation order: what resolver tasks query."""

    def __init__(self):
        self.artifacts: List[Dict[str, Any]] = []

    def query(self, filter_: str) -> List[Dict[str, Any]]:
        """Artifacts matching a resolver filter (terms joined by AND), latest first."""
        matches = list(reversed(self.artifacts))
        for term in filter_.split(" AND "):
            m = FILTER_TERM.match(term.strip())
            if not m:
                raise ValueError(f"resolver filter term not understood: {term!r}")
            key, quoted, state, meta_key, number = m.groups()
            if key == "schema_title":
                matches = [a for a in matches if _title(a["type"]) == quoted]
            elif key == "name":
                matches = [a for a in matches if a["name"] == quoted]
            elif state:
                matches = [a for a in matches if state == "LIVE"]
            else:
                matches = [a for a in matches if a.get("metadata", {}).get(meta_key) == float(number)]
        return matches


def _title(type_schema: Dict[str, str]) -> str:
    if "schemaTitle" in type_schema:
        return type_schema["schemaTitle"]
    return re.search(r"^title: (\S+)", type_schema["instanceSchema"], re.M).group(1)


def _legacy_value(value: Any, kind: str) -> Dict[str, Any]:
    """A pipeline parameter as the legacy `Value` of pipeline spec 2.0.0 (INT, DOUBLE or STRING)."""
    return {"INT": lambda: {"intValue": str(int(value))},
            "DOUBLE": lambda: {"doubleValue": float(value)}}.get(kind, lambda: {"stringValue": str(value)})()


def _topological(tasks: Dict[str, Dict[str, Any]]) -> List[str]:
    order: List[str] = []
    while len(order) < len(tasks):
        ready = sorted(n for n, t in tasks.items() if n not in order
                       and all(d in order for d in _upstream(t)))
        if not ready:
            raise ValueError(f"cycle among {sorted(set(tasks) - set(order))}")
        order += ready
    return order


def _upstream(task: Dict[str, Any]) -> set:
    producers = {a["taskOutputArtifact"]["producerTask"]
                 for a in task.get("inputs", {}).get("artifacts", {}).values() if "taskOutputArtifact" in a}
    return set(task.get("dependentTasks", [])) | producers


class Run:
    """One pipeline run: `run()` executes every task; `outputs[task][key]` are its RuntimeArtifact dicts."""

    def __init__(self, spec_path: str, workdir: str, buckets: Dict[str, str],
                 parameter_values: Optional[Dict[str, Any]] = None, store: Optional[Store] = None,
                 timeout_s: int = 900):
        text = open(spec_path).read()
        for bucket, local in buckets.items():
            text = text.replace(bucket.rstrip("/") + "/", local.rstrip("/") + "/")
        doc = json.loads(text)
        self.spec = doc["pipelineSpec"]
        runtime = doc.get("runtimeConfig", {})
        self.pipeline_root = runtime["gcsOutputDirectory"]
        declared = self.spec["root"].get("inputDefinitions", {}).get("parameters", {})
        values = {n: next(iter(v.values())) for n, v in runtime.get("parameters", {}).items()}
        values.update(parameter_values or {})
        unknown = set(parameter_values or {}) - set(declared)
        if unknown:
            raise ValueError(f"not pipeline parameters: {sorted(unknown)}")
        self.parameters = {n: _legacy_value(values[n], p["type"]) for n, p in declared.items()}
        self.run_id = f"{self.spec['pipelineInfo']['name']}-{time.strftime('%Y%m%d%H%M%S')}"
        self.workdir, self.store, self.timeout_s = workdir, store or Store(), timeout_s
        self.outputs: Dict[str, Dict[str, List[Dict[str, Any]]]] = {}
        self.seconds: Dict[str, float] = {}
        self.commands: Dict[str, List[List[str]]] = {}  # what each task ran, placeholders substituted

    def run(self) -> "Run":
        tasks = self.spec["root"]["dag"]["tasks"]
        for name in _topological(tasks):
            start = time.monotonic()
            self.run_task(name, tasks[name])
            self.seconds[name] = round(time.monotonic() - start, 1)
        return self

    def run_task(self, name: str, task: Dict[str, Any]) -> None:
        component = self.spec["components"][task["componentRef"]["name"]]
        executor = self.spec["deploymentSpec"]["executors"][component["executorLabel"]]
        executor_input = self._executor_input(name, task, component)
        if "resolver" in executor:
            self.outputs[name] = self._resolve(executor["resolver"], executor_input)
            return
        container = executor["container"]
        output_file = executor_input["outputs"]["outputFile"]
        if os.path.exists(output_file):
            os.remove(output_file)
        for step in (container.get("lifecycle", {}).get("preCacheCheck"), container):
            if step:
                self._call(name, step["command"] + step.get("args", []), executor_input)
        with open(output_file) as f:
            written = json.load(f).get("artifacts", {})
        self.outputs[name] = {}
        for key, listed in executor_input["outputs"]["artifacts"].items():
            artifact = dict(listed["artifacts"][0])
            back = written.get(key, {}).get("artifacts", [{}])[0]
            artifact["metadata"] = {**artifact.get("metadata", {}), **back.get("metadata", {})}
            self.outputs[name][key] = [artifact]
            self.store.artifacts.append(artifact)

    def _executor_input(self, name: str, task: Dict[str, Any], component: Dict[str, Any]) -> Dict[str, Any]:
        task_root = os.path.join(self.pipeline_root, self.run_id, name)
        inputs = task.get("inputs", {})
        parameters = {}
        for key, source in inputs.get("parameters", {}).items():
            if "componentInputParameter" in source:
                parameters[key] = self.parameters[source["componentInputParameter"]]
            else:
                parameters[key] = source["runtimeValue"]["constantValue"]
        artifacts = {}
        for key, source in inputs.get("artifacts", {}).items():
            producer = source["taskOutputArtifact"]
            listed = self.outputs[producer["producerTask"]].get(producer["outputArtifactKey"], [])
            if listed:  # a resolver that found nothing gives no artifact: the input is absent
                artifacts[key] = {"artifacts": listed}
        outputs = {
            key: {"artifacts": [{"name": f"{self.run_id}/{name}/{key}", "type": spec["artifactType"],
                                 "uri": os.path.join(task_root, key), "metadata": {}}]}
            for key, spec in component.get("outputDefinitions", {}).get("artifacts", {}).items()
        }
        return {"inputs": {"parameters": parameters, "artifacts": artifacts},
                "outputs": {"artifacts": outputs, "outputFile": os.path.join(task_root, "executor_output.json")}}

    def _resolve(self, resolver: Dict[str, Any], executor_input: Dict[str, Any]) -> Dict[str, List[Dict]]:
        """Latest artifact matching each query; none (no baseline yet, or no input to follow) gives none."""
        resolved = {}
        for key, query in resolver["outputArtifactQueries"].items():
            try:
                filter_ = self._substitute(query["filter"], executor_input)
            except KeyError:  # the query follows an input artifact the upstream resolver did not find
                resolved[key] = []
                continue
            resolved[key] = self.store.query(filter_)[:1]
        return resolved

    def _substitute(self, text: str, executor_input: Dict[str, Any]) -> str:
        def value(match: re.Match) -> str:
            path = match.group(1)
            if path == "":
                return json.dumps(executor_input)
            m = re.fullmatch(r"\.inputs\.parameters\['(\w+)'\]", path)
            if m:
                return str(next(iter(executor_input["inputs"]["parameters"][m.group(1)].values())))
            m = re.fullmatch(r"\.inputs\.artifacts\['(\w+)'\]\.metadata\['(\w+)'\]", path)
            if m:
                return str(executor_input["inputs"]["artifacts"][m.group(1)]["artifacts"][0]["metadata"][m.group(2)])
            m = re.fullmatch(r"\.outputs\.artifacts\['(\w+)'\]\.uri", path)
            if m:
                return executor_input["outputs"]["artifacts"][m.group(1)]["artifacts"][0]["uri"]
            if path == ".outputs.output_file":
                return executor_input["outputs"]["outputFile"]
            raise ValueError(f"placeholder not supported by the harness: {match.group(0)}")
        return PLACEHOLDER.sub(value, text)

    def _call(self, name: str, argv: List[str], executor_input: Dict[str, Any]) -> None:
        argv = [self._substitute(a, executor_input) for a in argv]
        if argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        self.commands.setdefault(name, []).append(argv)
        os.makedirs(self.workdir, exist_ok=True)
        log_path = os.path.join(self.workdir, f"{name}.log")
        with open(log_path, "ab") as log:
            proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, timeout=self.timeout_s,
                                  cwd=self.workdir)
        if proc.returncode != 0:
            with open(log_path, errors="replace") as f:
                tail = f.read()[-6000:]
            raise TaskFailed(f"task {name} exited {proc.returncode}: {' '.join(argv[:3])} ...\n{tail}")
