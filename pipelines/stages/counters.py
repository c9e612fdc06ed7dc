"""Row counters the stages increment, and what a finished pipeline's metrics say.

Every counter is named here: the stages count with these constants, and the
readers (``pipelines.pipeline.execute``, the ``run`` command) read them back
with the functions below, so no counter name is written twice. Row counts are
this package's counters (``rows_<name>``). Per-stage seconds come from Beam's
execution-time sampling (``ptransform_execution_time``), summed over every
transform of a stage; runners that do not report it (a remote runner, say)
leave them out.
"""

from collections.abc import Callable, Sequence

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter

from pipelines import layout

__all__ = [
    "DUPLICATES_DROPPED", "EVAL", "NAMESPACE", "OVERSAMPLED", "READ", "REJECTED", "ROW_COUNTS",
    "SERVING", "SPLIT_DISAGREEMENTS", "TRAIN", "WINDOW_LATE", "count", "count_duplicates",
    "count_rejected", "counter_totals", "duplicates_found", "duplicates_input",
    "rejected_by_kind", "row_counts", "stage_seconds", "total",
]

NAMESPACE = "tft_preprocessing"
# Every row read is train, eval, serving, rejected or a dropped duplicate;
# oversampled copies are records written beyond the rows read.
READ, REJECTED = "read", "rejected"
TRAIN, EVAL, SERVING = layout.SPLITS
DUPLICATES_DROPPED, OVERSAMPLED = "duplicates_dropped", "oversampled"
ROW_COUNTS = (READ, TRAIN, EVAL, SERVING, REJECTED, DUPLICATES_DROPPED, OVERSAMPLED)
# BigQuery rows whose split label disagrees with the local one (fails the run).
SPLIT_DISAGREEMENTS = "split_disagreements"
# Streaming rows that arrived after their windows closed.
WINDOW_LATE = "window_late"

_PREFIX = "rows_"
_REJECTED_KIND = f"{_PREFIX}{REJECTED}_"  # rows_rejected_<kind>
_DUPLICATES = "duplicates_"  # rows_duplicates_<input>
_EXECUTION_TIME = "metric:ptransform_execution_time:total_msecs:v1"  # namespace "beam"


def count(name: str, rows: int) -> None:
    """Adds ``rows`` to the pipeline counter of ``name`` (one of the constants)."""
    beam.metrics.Metrics.counter(NAMESPACE, f"{_PREFIX}{name}").inc(rows)


def count_rejected(kind: str) -> None:
    """Counts one rejected row, in all and by its kind (``rows_rejected_<kind>``)."""
    count(REJECTED, 1)
    beam.metrics.Metrics.counter(NAMESPACE, f"{_REJECTED_KIND}{kind}").inc(1)


def count_duplicates(input_name: str, rows: int) -> None:
    """Counts ``rows`` repeating an earlier row of the input ``input_name``."""
    count(f"{_DUPLICATES}{input_name}", rows)


def counter_totals(result: beam.runners.runner.PipelineResult) -> dict[str, int]:
    """This package's counters by full name, summed over the steps that
    incremented them."""
    totals: dict[str, int] = {}
    for counter in result.metrics().query(
            MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        name = counter.key.metric.name
        totals[name] = totals.get(name, 0) + (counter.committed or counter.attempted or 0)
    return totals


def total(result: beam.runners.runner.PipelineResult, name: str) -> int:
    """The total of the counter of ``name`` (one of the constants), 0 if never counted."""
    return counter_totals(result).get(f"{_PREFIX}{name}", 0)


def row_counts(result: beam.runners.runner.PipelineResult) -> dict[str, int]:
    """The ``ROW_COUNTS`` by name, zero when never incremented."""
    totals = counter_totals(result)
    return {name: totals.get(f"{_PREFIX}{name}", 0) for name in ROW_COUNTS}


def duplicates_input(input_name: str) -> str:
    """The key of ``input_name`` in ``duplicates_found`` and the run's record."""
    return f"{input_name}_input"


def duplicates_found(result: beam.runners.runner.PipelineResult) -> dict[str, int]:
    """Rows repeating an earlier row of the same input, dropped or not, by input
    (``train_input``: the training input, both splits)."""
    totals = counter_totals(result)
    return {duplicates_input(name): totals.get(f"{_PREFIX}{_DUPLICATES}{name}", 0)
            for name in layout.INPUTS}


def stage_seconds(result, stage_of: Callable[[str], str | None], stages: Sequence[str]
                  ) -> dict[str, float] | None:
    """Seconds of execution time per stage, ``stage_of`` telling a step's stage
    from its full label, in the order of ``stages``; None if the runner has no
    such metric."""
    monitoring = getattr(result, "monitoring_metrics", None)
    if monitoring is None:
        return None
    seconds: dict[str, float] = {}
    for counter in monitoring().query()["counters"]:
        if counter.key.metric.name != _EXECUTION_TIME or not counter.key.step:
            continue
        stage = stage_of(counter.key.step)
        if stage:
            seconds[stage] = seconds.get(stage, 0.0) + (counter.committed or 0) / 1000.0
    # In pipeline order; a stage the run had not is left out.
    return {stage: seconds[stage] for stage in stages if stage in seconds}


def rejected_by_kind(result) -> dict[str, int]:
    """Rejected rows per kind (``wrong_field_count``, ``unparsable``, ...)."""
    return {name.removeprefix(_REJECTED_KIND): count
            for name, count in sorted(counter_totals(result).items())
            if name.startswith(_REJECTED_KIND)}
