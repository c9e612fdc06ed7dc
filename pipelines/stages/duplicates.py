"""``Deduplicate``: counts exact duplicate rows in every input and, asked to,
drops them from the training input.

Two rows are duplicates when every column of the schema holds the same decoded
value (or both miss it) and they have the same ``row_key``, which decides their
split: a keyed dataset's key is the key columns' text as written (``01`` and
``1`` decode alike but are different keys), a keyless one's is the values.
So duplicates always share a split, and whichever of them is kept, the rows
are the same. A row is recognised by its content fingerprint:
BLAKE2b (128 bits) of bytes that write each number as a presence byte and its
8 bytes (0 when missing), then each other value length-prefixed (``3:abc``) and
a missing one as ``-``, so two different rows cannot share their bytes, and
sharing a 128-bit fingerprint by chance is out of reach even for billions of
rows (64 bits would not be: a few percent for a billion rows). Numbers are
written as their bytes, not as text: writing them as text was four fifths of
the fingerprint's time.

Counting is one pass: fingerprints are gathered by shard (their first bits) and
each shard counts its own with numpy; duplicates = rows - distinct rows.
Dropping keeps one row of every set of duplicates: the fingerprints seen more
than once (a side input, as small as the duplicated rows are few) take their
rows out of the batches, and one row per fingerprint is put back. Dropping
them before the split leaves every split's row set as it was, less the repeats.

Only the training input is deduplicated: serving rows are requests, each of
which counts (for skew, and for whoever reads the serving records).
"""

import hashlib
from collections.abc import Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.stages import counters

__all__ = ["Deduplicate", "RepeatedRows", "content_fingerprints"]

# Fingerprints are counted in this many groups, so no one worker holds them all.
SHARDS = 16
_FINGERPRINT = np.dtype("V16")
_BINARY = pa.large_binary()


def _separator(text: bytes) -> pa.Scalar:
    return pa.scalar(text, _BINARY)


def _value_texts(values: pa.Array) -> pa.Array:
    """Each value as ``<byte length>:<text>``, a missing one as ``-``."""
    if not (pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type)):
        values = pc.cast(values, pa.string())  # shortest text that reads back exactly
    values = pc.cast(values, _BINARY)
    lengths = pc.cast(pc.cast(pc.binary_length(values), pa.string()), _BINARY)
    return pc.fill_null(pc.binary_join_element_wise(lengths, values, _separator(b":")),
                        _separator(b"-"))


def _is_number(values: pa.Array) -> bool:
    return pa.types.is_integer(values.type) or pa.types.is_floating(values.type)


def _number_bytes(numbers: list[pa.Array], rows: int) -> pa.Array:
    """Per row, for each column of NUMBERS, a presence byte and the value's 8
    bytes (0 when missing), as one binary value of fixed width."""
    parts = []
    for values in numbers:
        wide = pa.float64() if pa.types.is_floating(values.type) else pa.int64()
        parts.append(values.is_valid().to_numpy(zero_copy_only=False)
                     .astype(np.uint8).reshape(rows, 1))
        parts.append(pc.fill_null(values.cast(wide, safe=False), 0).to_numpy(zero_copy_only=False)
                     .view(np.uint8).reshape(rows, 8))
    matrix = np.ascontiguousarray(np.concatenate(parts, axis=1))
    offsets = np.arange(rows + 1, dtype=np.int64) * matrix.shape[1]
    return pa.Array.from_buffers(_BINARY, rows,
                                 [None, pa.py_buffer(offsets), pa.py_buffer(matrix)])


def content_fingerprints(batch: pa.RecordBatch) -> np.ndarray:
    """The 128-bit content fingerprint of every row of a decoded batch (its
    values and its ``row_key``), as an array of 16-byte values."""
    values = [pc.list_element(column, 0) for column in batch.columns]
    numbers = [v for v in values if _is_number(v)]
    parts = [_value_texts(v) for v in values if not _is_number(v)]
    if numbers:
        parts.insert(0, _number_bytes(numbers, batch.num_rows))
    rows = pc.binary_join_element_wise(*parts, _separator(b""))
    # to_numpy, not to_pylist: a quarter of the time for the same bytes objects.
    digests = b"".join(hashlib.blake2b(row, digest_size=16).digest()
                       for row in rows.to_numpy(zero_copy_only=False))
    return np.frombuffer(digests, dtype=_FINGERPRINT)


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
    counters.count(f"duplicates_{name}", len(fingerprints) - len(distinct))
    return distinct[seen > 1]


def _all_repeated(shards) -> np.ndarray:
    return np.sort(np.concatenate([np.empty(0, _FINGERPRINT), *shards]))


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
        counters.count("duplicates_dropped", len(rows) - 1)
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
