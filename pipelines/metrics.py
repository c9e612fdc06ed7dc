"""Row counters shared by the stages and read back for the run summary."""

import apache_beam as beam

__all__ = ["NAMESPACE", "REJECTED_PREFIX", "count", "count_rejected"]

NAMESPACE = "tft_preprocessing"


REJECTED_PREFIX = "rows_rejected_"


def count(name: str, rows: int) -> None:
    """Adds ``rows`` to the pipeline counter ``rows_<name>``."""
    beam.metrics.Metrics.counter(NAMESPACE, f"rows_{name}").inc(rows)


def count_rejected(kind: str) -> None:
    """Counts one rejected row, in all and by its kind (``rows_rejected_<kind>``)."""
    count("rejected", 1)
    beam.metrics.Metrics.counter(NAMESPACE, f"{REJECTED_PREFIX}{kind}").inc(1)
