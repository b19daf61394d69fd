"""DriftGate (`--fail-on-drift`): stops the run before Transform when this run's training data moved further
than the threshold from the replaced model's (compare.py); without a model to replace it passes."""

from tfx.dsl.component.experimental.annotations import InputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from tfx_image_finetune.components.image_folder_example_gen.component import ImageIngestReport


class DataDriftError(ValueError):
    """The training data drifted beyond the threshold from the replaced model's (--fail-on-drift)."""


@component
def DriftGate(  # noqa: N802
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    ingest_report: InputArtifact[ImageIngestReport],
    threshold: Parameter[float],
    comparator: Parameter[str],
    label_key: Parameter[str],
    baseline_statistics: InputArtifact[standard_artifacts.ExampleStatistics] = None,
    baseline_ingest_report: InputArtifact[ImageIngestReport] = None,
) -> None:
    """Fails the run, naming every drifted distribution, if any."""
    from tfx_image_finetune.components.data_drift.compare import image_drifts, label_drift, warning_lines
    from tfx_image_finetune.components.data_drift.lineage import statistics_file
    from tfx_image_finetune.components.ingest_report import read_report

    if baseline_statistics is None or baseline_ingest_report is None:
        return  # nothing is replaced: nothing to drift from
    findings = [label_drift(statistics_file(statistics.uri), statistics_file(baseline_statistics.uri), label_key,
                            threshold, comparator)]
    findings += image_drifts(read_report(ingest_report.uri) or {}, read_report(baseline_ingest_report.uri) or {},
                             threshold, comparator)
    lines = warning_lines({"comparator": comparator, "findings": findings})
    if lines:
        raise DataDriftError("--fail-on-drift: stopped before training; "
                             + "; ".join(line.split(": ", 2)[-1] for line in lines))
