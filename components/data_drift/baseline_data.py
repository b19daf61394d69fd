"""Resolver policy: the training data (statistics, ingest report) of the model this run would replace.

That model is the latest blessed model of the same task (LatestBlessedModelOfSameTask, as the Evaluator's
baseline); its data is found by MLMD lineage (lineage.py), which a resolver strategy may query and a component
may not. Local runs only, like the policy it extends (the compiled Vertex pipeline takes TFX's own).
"""

from __future__ import annotations

from tfx_image_finetune.components.data_drift.lineage import data_artifacts, trained_on
from tfx_image_finetune.components.evaluator.baseline_resolution import MODEL, LatestBlessedModelOfSameTask

STATISTICS, INGEST_REPORT = "statistics", "ingest_report"


class BaselineDataOfSameTask(LatestBlessedModelOfSameTask):
    def resolve_artifacts(self, store, input_dict):
        found = self.latest_of_same_task(input_dict)
        out = {key: [] for key in input_dict}
        if not found[MODEL]:
            return out
        examples = trained_on(store, found[MODEL][0].uri)
        statistics, report = data_artifacts(store, examples) if examples is not None else (None, None)
        for key, wanted in ((STATISTICS, statistics), (INGEST_REPORT, report)):
            out[key] = [a for a in input_dict[key] if wanted is not None and a.id == wanted.id]
        return out
