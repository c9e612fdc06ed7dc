"""Row counters shared by the stages and read back for the run summary."""

import apache_beam as beam

__all__ = ["NAMESPACE", "count"]

NAMESPACE = "tft_preprocessing"


def count(name: str, rows: int) -> None:
    """Adds ``rows`` to the pipeline counter ``rows_<name>``."""
    beam.metrics.Metrics.counter(NAMESPACE, f"rows_{name}").inc(rows)
