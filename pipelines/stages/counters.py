"""Row counters the stages increment, and what a finished pipeline's metrics say.

Row counts come from this package's counters (``rows_<name>``). Per-stage
seconds come from Beam's execution-time sampling (``ptransform_execution_time``),
summed over every transform under a stage's top-level label; runners that do
not report it (a remote runner, say) leave them out.
"""

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter

__all__ = [
    "NAMESPACE", "REJECTED_PREFIX", "ROW_COUNTS", "count", "count_rejected", "counter_totals",
    "duplicates_found", "rejected_by_kind", "row_counts", "stage_seconds",
]

NAMESPACE = "tft_preprocessing"
# Every row read is train, eval, serving, rejected or a dropped duplicate;
# oversampled copies are records written beyond the rows read.
ROW_COUNTS = ("read", "train", "eval", "serving", "rejected", "duplicates_dropped",
              "oversampled")
_EXECUTION_TIME = "metric:ptransform_execution_time:total_msecs:v1"  # namespace "beam"

REJECTED_PREFIX = "rows_rejected_"


def count(name: str, rows: int) -> None:
    """Adds ``rows`` to the pipeline counter ``rows_<name>``."""
    beam.metrics.Metrics.counter(NAMESPACE, f"rows_{name}").inc(rows)


def count_rejected(kind: str) -> None:
    """Counts one rejected row, in all and by its kind (``rows_rejected_<kind>``)."""
    count("rejected", 1)
    beam.metrics.Metrics.counter(NAMESPACE, f"{REJECTED_PREFIX}{kind}").inc(1)


def counter_totals(result: beam.runners.runner.PipelineResult) -> dict[str, int]:
    """This package's counters by name, summed over the steps that incremented them."""
    totals: dict[str, int] = {}
    for counter in result.metrics().query(
            MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        name = counter.key.metric.name
        totals[name] = totals.get(name, 0) + (counter.committed or counter.attempted or 0)
    return totals


def row_counts(result: beam.runners.runner.PipelineResult) -> dict[str, int]:
    """Committed values of the ``rows_*`` counters, zero when never incremented."""
    totals = counter_totals(result)
    return {name: totals.get(f"rows_{name}", 0) for name in ROW_COUNTS}


def duplicates_found(result: beam.runners.runner.PipelineResult) -> dict[str, int]:
    """Rows repeating an earlier row of the same input, dropped or not, by input
    (``train``: the training input, both splits)."""
    totals = counter_totals(result)
    return {f"{name}_input": totals.get(f"rows_duplicates_{name}", 0)
            for name in ("train", "serving")}


def stage_seconds(result, stage_labels: dict[str, str]) -> dict[str, float] | None:
    """Seconds of execution time per stage, or None if the runner has no such metric."""
    monitoring = getattr(result, "monitoring_metrics", None)
    if monitoring is None:
        return None
    seconds: dict[str, float] = {}  # in pipeline order; a stage the run had not is left out
    ran = set()
    for counter in monitoring().query()["counters"]:
        if counter.key.metric.name != _EXECUTION_TIME or not counter.key.step:
            continue
        stage = stage_labels.get(counter.key.step.split("/", 1)[0])
        if stage:
            ran.add(stage)
            seconds[stage] = seconds.get(stage, 0.0) + (counter.committed or 0) / 1000.0
    return {stage: seconds[stage] for stage in dict.fromkeys(stage_labels.values())
            if stage in ran}


def rejected_by_kind(result) -> dict[str, int]:
    """Rejected rows per kind (``wrong_field_count``, ``unparsable``, ...)."""
    return {name.removeprefix(REJECTED_PREFIX): count
            for name, count in sorted(counter_totals(result).items())
            if name.startswith(REJECTED_PREFIX)}
