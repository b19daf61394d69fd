"""TFX's Trainer executor, handing run_fn the examples per class of its training and evaluation splits from the
ExampleGen's ingest report (vertex.py: the same for the executor that starts a Vertex AI Training job).

run_fn needs those counts before it trains (the fine-tuning strategy, class weights, whether the decoded images
fit the cache). ExampleGen counted them in its Beam pass; reading report.json here saves a full pass over the
training TFRecords on every worker (minutes on a large set). They reach run_fn in `custom_config`, through the
executor's public `Do` arguments only, so a Vertex AI job carries them as it carries the rest of the config.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from tfx.components.trainer import executor as trainer_executor
from tfx.proto import trainer_pb2
from tfx.types import standard_component_specs as specs
from tfx.utils import json_utils, proto_utils

from tfx_image_finetune.component_configs import EXAMPLES_PER_CLASS_KEY
from tfx_image_finetune.components.ingest_report import read_report
from tfx_image_finetune.data_contract import INGEST_REPORT_KEY


def examples_per_class(report: Dict[str, Any], exec_properties: Dict[str, Any]) -> Optional[Dict[str, Dict[str, int]]]:
    """{"train": {class: n}, "eval": {class: n}} summed over the Trainer's train / eval splits; None when the
    report has no counts for one of them (a report written before counts were kept)."""
    per_split = report.get("examples_per_split") or {}
    out = {}
    for role, key, proto in (("train", specs.TRAIN_ARGS_KEY, trainer_pb2.TrainArgs()),
                             ("eval", specs.EVAL_ARGS_KEY, trainer_pb2.EvalArgs())):
        splits = list(proto_utils.json_to_proto(exec_properties[key], proto).splits) or [role]
        if any(split not in per_split for split in splits):
            return None
        counts: Dict[str, int] = {}
        for split in splits:
            for label, n in per_split[split].items():
                counts[label] = counts.get(label, 0) + int(n)
        out[role] = counts
    return out


class CountsFromIngestReport:
    """Mixin before a Trainer executor: the ingest report's counts go into custom_config; the report itself is
    not passed on (TFX's executor has no use for it, and a Vertex job need not deserialize its type)."""

    def Do(self, input_dict: Dict[str, List[Any]], output_dict: Dict[str, List[Any]],
           exec_properties: Dict[str, Any]) -> None:
        input_dict = dict(input_dict)
        reports = input_dict.pop(INGEST_REPORT_KEY, None)
        counts = examples_per_class(read_report(reports[0].uri) or {}, exec_properties) if reports else None
        if counts:
            custom_config = json_utils.loads(exec_properties.get(specs.CUSTOM_CONFIG_KEY) or "null") or {}
            exec_properties = {**exec_properties,
                               specs.CUSTOM_CONFIG_KEY: json_utils.dumps({**custom_config, EXAMPLES_PER_CLASS_KEY: counts})}
        return super().Do(input_dict, output_dict, exec_properties)


class Executor(CountsFromIngestReport, trainer_executor.GenericExecutor):
    """Trains in this process."""
