"""``JoinLookups``: each decoded batch with the columns of the dataset's
reference tables joined by key (``pipelines.decode.lookups``); the tables are
loaded once per worker process."""

import apache_beam as beam
import pyarrow as pa

from pipelines.decode.lookups import Lookup, add_lookups

__all__ = ["JoinLookups"]


class JoinLookups(beam.PTransform):
    def __init__(self, lookups: tuple[Lookup, ...]):
        super().__init__()
        self._lookups = lookups

    def expand(self, batches):
        return batches | "Join" >> beam.Map(_joined, self._lookups)


def _joined(batch: pa.RecordBatch, lookups: tuple[Lookup, ...]) -> pa.RecordBatch:
    return add_lookups(lookups, batch)
