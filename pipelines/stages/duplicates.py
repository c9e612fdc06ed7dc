"""``RepeatedRows`` and ``Deduplicate``: counts exact duplicate rows in every
input and, asked to, drops them from the training input.

Two rows are duplicates when their content fingerprints are equal: every
column holds the same decoded value (or both miss it) and they have the same
``row_key``, which decides their split (``pipelines.decode.fingerprints``). So
duplicates always share a split, and whichever of them is kept, the rows are
the same.

Counting is one pass: fingerprints are gathered by shard (their first bits) and
each shard counts its own with numpy; duplicates = rows - distinct rows.
Dropping keeps one row of every set of duplicates: the fingerprints seen more
than once (a side input, as small as the duplicated rows are few) take their
rows out of the batches, and one row per fingerprint is put back. Dropping
them before the split leaves every split's row set as it was, less the repeats.

Only the training input is deduplicated: serving rows are requests, each of
which counts (for skew, and for whoever reads the serving records).
"""

from collections.abc import Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa

from pipelines.decode.fingerprints import FINGERPRINT, content_fingerprints
from pipelines.stages import counters

__all__ = ["Deduplicate", "RepeatedRows"]

# Fingerprints are counted in this many groups, so no one worker holds them all.
SHARDS = 16


def _shards(batch: pa.RecordBatch):
    fingerprints = content_fingerprints(batch)
    shard = fingerprints.view("<u8")[::2] % SHARDS
    for index in np.unique(shard):
        yield int(index), fingerprints[shard == index]


def _count(shard: tuple[int, list[np.ndarray]], name: str) -> np.ndarray:
    """A shard's fingerprints -> those seen more than once; counts how many
    rows repeat an earlier one."""
    _, parts = shard
    fingerprints = np.concatenate(parts)
    distinct, seen = np.unique(fingerprints, return_counts=True)
    counters.count_duplicates(name, len(fingerprints) - len(distinct))
    return distinct[seen > 1]


def _all_repeated(shards) -> np.ndarray:
    return np.sort(np.concatenate([np.empty(0, FINGERPRINT), *shards]))


class _TakeOutRepeated(beam.DoFn):
    """Passes the rows seen once; a row of a repeated fingerprint goes to the
    ``repeated`` output, keyed by its fingerprint."""

    def process(self, batch: pa.RecordBatch, repeated: np.ndarray) -> Iterator[pa.RecordBatch]:
        if not len(repeated):
            yield batch
            return
        fingerprints = content_fingerprints(batch)
        taken = np.isin(fingerprints, repeated)
        if not taken.any():
            yield batch
            return
        if not taken.all():
            yield batch.filter(pa.array(~taken))
        for row in np.flatnonzero(taken):
            yield beam.pvalue.TaggedOutput(
                "repeated", (fingerprints[row].tobytes(), batch.slice(int(row), 1)))


def _one_of_each(group, counted: bool) -> pa.RecordBatch:
    _, rows = group
    rows = list(rows)
    if counted:
        counters.count(counters.DUPLICATES_DROPPED, len(rows) - 1)
    return rows[0]


def _as_batch(rows: list[pa.RecordBatch]) -> pa.RecordBatch:
    return pa.Table.from_batches(rows).combine_chunks().to_batches()[0]


class RepeatedRows(beam.PTransform):
    """Decoded batches of one input -> a one-element PCollection: the sorted
    fingerprints seen more than once. Counts the input's duplicates
    (``rows_duplicates_<name>``)."""

    def __init__(self, name: str):
        super().__init__()
        self._name = name

    def expand(self, batches):
        return (batches
                | "Fingerprints" >> beam.FlatMap(_shards)
                | "PerShard" >> beam.CombinePerKey(beam.combiners.ToListCombineFn())
                | "Count" >> beam.Map(_count, self._name)
                | "AllRepeated" >> beam.CombineGlobally(_all_repeated))


class Deduplicate(beam.PTransform):
    """Decoded training batches -> the same with one row of every set of
    duplicates kept, given ``repeated`` (``RepeatedRows`` of the same input).
    ``counted=False`` for a second pass over rows already counted."""

    def __init__(self, repeated, counted: bool = True):
        super().__init__()
        self._repeated = repeated
        self._counted = counted

    def expand(self, batches):
        taken = batches | "TakeOutRepeated" >> beam.ParDo(
            _TakeOutRepeated(), repeated=beam.pvalue.AsSingleton(self._repeated)
        ).with_outputs("repeated", main="once")
        kept = (taken.repeated
                | "GroupRepeated" >> beam.GroupByKey()
                | "OneOfEach" >> beam.Map(_one_of_each, self._counted)
                | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=4096)
                | "AsBatch" >> beam.Map(_as_batch))
        return (taken.once, kept) | "Merge" >> beam.Flatten()
