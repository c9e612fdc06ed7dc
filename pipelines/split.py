"""Deterministic train/eval assignment by a row key's 64-bit farmhash fingerprint.

A row's key (the dataset's key columns joined with ``|``) is fingerprinted with
farmhash ``Fingerprint64``, the function behind BigQuery's ``FARM_FINGERPRINT``.
The signed fingerprint is the row's ``row_key``; its bucket is
``abs(row_key) mod 100``, which is ``MOD(ABS(FARM_FINGERPRINT(key)), 100)`` in
BigQuery, so a row lands in the same split locally and in the warehouse.
Buckets below ``eval_percent`` are eval, the rest train.
"""

from collections.abc import Iterable

import apache_beam as beam
import farmhash
import numpy as np
import pyarrow as pa

from pipelines import metrics, progress
from pipelines.errors import UserError

__all__ = [
    "KEY_SEPARATOR", "ROW_KEY", "SplitExamples", "eval_percent", "row_keys",
    "split_buckets",
]

KEY_SEPARATOR = "|"
# The column every decoded row carries: the signed fingerprint of its key.
ROW_KEY = "row_key"


def row_keys(keys: Iterable[str]) -> np.ndarray:
    """Signed 64-bit farmhash fingerprints of the UTF-8 ``keys`` (BigQuery's
    FARM_FINGERPRINT)."""
    keys = list(keys)
    try:
        fingerprints = np.fromiter((farmhash.fingerprint64(k) for k in keys), dtype=np.uint64)
    except ValueError:
        # pyfarmhash takes C strings, so a key holding "\0" fails there;
        # TensorFlow's Fingerprint64 is the same function over the exact bytes.
        import tensorflow as tf

        fingerprints = tf.fingerprint(
            tf.constant([k.encode("utf-8") for k in keys]), method="farmhash64"
        ).numpy().view("<u8").ravel()
    return fingerprints.view(np.int64)


def split_buckets(keys: np.ndarray) -> np.ndarray:
    """``abs(row_key) mod 100`` for an array of signed row keys.

    The absolute value is taken in unsigned arithmetic so that INT64_MIN, whose
    negation overflows int64, still gets a bucket (BigQuery's ABS errors there;
    one key in 2**64 is affected).
    """
    unsigned = keys.view(np.uint64)
    magnitude = np.where(keys < 0, ~unsigned + np.uint64(1), unsigned)
    return (magnitude % np.uint64(100)).astype(np.int64)


def eval_percent(eval_fraction: float) -> int:
    """The number of buckets (of 100) that go to eval.

    Raises:
      UserError: the fraction is not a whole percentage strictly between 0 and 1.
    """
    percent = round(eval_fraction * 100)
    if not 0 < percent < 100 or abs(percent - eval_fraction * 100) > 1e-9:
        raise UserError(
            f"--eval_fraction must be a whole percentage between 0.01 and 0.99, "
            f"got {eval_fraction}")
    return percent


class _AssignSplit(beam.DoFn):
    """Routes each row of a batch to train (main output) or eval by its bucket."""

    def __init__(self, percent: int, counted: bool):
        self._percent = percent
        self._counted = counted

    def process(self, batch: pa.RecordBatch):
        keys = batch.column(ROW_KEY).flatten().to_numpy()
        is_eval = split_buckets(keys) < self._percent
        for name, mask in (("train", ~is_eval), ("eval", is_eval)):
            rows = int(mask.sum())
            if rows:
                if self._counted:
                    metrics.count(name, rows)
                    progress.advance("split", rows)
                part = batch if rows == batch.num_rows else batch.filter(pa.array(mask))
                yield part if name == "train" else beam.pvalue.TaggedOutput(name, part)


def _count_serving(batch: pa.RecordBatch) -> pa.RecordBatch:
    metrics.count("serving", batch.num_rows)
    progress.advance("split", batch.num_rows)
    return batch


class SplitExamples(beam.PTransform):
    """``{"train"?, "serving"?}`` raw batches to ``{"train", "eval", "serving"?}``
    (train and eval when train is given). ``counted=False`` for a second pass
    over rows already counted."""

    def __init__(self, eval_fraction: float, counted: bool = True):
        super().__init__()
        self._percent = eval_percent(eval_fraction)
        self._counted = counted

    def expand(self, raw):
        splits = {}
        if "train" in raw:
            assigned = raw["train"] | "AssignSplit" >> beam.ParDo(
                _AssignSplit(self._percent, self._counted)).with_outputs("eval", main="train")
            splits = {"train": assigned.train, "eval": assigned.eval}
        if "serving" in raw:
            splits["serving"] = (raw["serving"] | "CountServing" >> beam.Map(_count_serving)
                                 if self._counted else raw["serving"])
        return splits
