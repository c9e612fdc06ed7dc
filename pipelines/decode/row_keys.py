"""Row keys and split buckets: the contract a row's split is decided by, locally
and in BigQuery.

A row's key (the dataset's key columns joined with ``|``) is fingerprinted with
farmhash ``Fingerprint64``, the function behind BigQuery's ``FARM_FINGERPRINT``.
The signed fingerprint is the row's ``row_key``; its bucket is
``abs(row_key) mod 100``, which is ``MOD(ABS(FARM_FINGERPRINT(key)), 100)`` in
BigQuery, so a row lands in the same split locally and in the warehouse.
Buckets below ``eval_percent`` are eval, the rest train.
"""

from collections.abc import Iterable

import farmhash
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines.decode import DEFAULT_EVAL_FRACTION
from pipelines.errors import UserError

__all__ = [
    "DEFAULT_EVAL_FRACTION", "FLOAT_FORMAT", "KEY_SEPARATOR", "NULL_TEXT", "ROW_KEY",
    "check_stratify_by", "column_texts", "eval_mask", "eval_percent", "eval_rows", "is_eval",
    "row_keys", "split_buckets", "stratified_eval_mask", "stratum_eval_rows", "stratum_limit",
    "value_text",
]


KEY_SEPARATOR = "|"
# The column every decoded row carries: the signed fingerprint of its key.
ROW_KEY = "row_key"

# A dataset without key columns keys each row by its whole content (so duplicate
# rows land together), written as one text that BigQuery can write too: every
# value in schema order, joined with KEY_SEPARATOR; integers in decimal
# (CAST(x AS STRING)), floats as FLOAT_FORMAT of their double value
# (FORMAT('%.17g', x): exact, and the same in C, Python and BigQuery), text as it
# is, and a missing value as NULL_TEXT (CONCAT with a NULL is NULL in BigQuery).
FLOAT_FORMAT = "%.17g"
NULL_TEXT = "\\N"


def value_text(value, feature_type: int) -> str:
    """One value in a keyless row's key text (BigQuery rows arrive as Python values)."""
    if value is None:
        return NULL_TEXT
    if feature_type == schema_pb2.FLOAT:
        return FLOAT_FORMAT % float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def column_texts(values: pa.Array, feature_type: int) -> pa.Array:
    """A decoded column in a keyless row's key text: integers as int64, floats as
    float64 (parsed from the file's text, not the narrower stored float32), text
    as binary or string."""
    if feature_type == schema_pb2.FLOAT:
        texts = pa.array([None if v is None else FLOAT_FORMAT % v for v in values.to_pylist()],
                         pa.string())
    else:
        texts = pc.cast(values, pa.string())
    return pc.fill_null(texts, NULL_TEXT)


def row_keys(keys: Iterable[str] | pa.Array) -> np.ndarray:
    """Signed 64-bit farmhash fingerprints of the UTF-8 ``keys`` (BigQuery's
    FARM_FINGERPRINT), texts or an Arrow string array."""
    if isinstance(keys, pa.Array):
        # A numpy array of str: a quarter of to_pylist's time.
        keys = keys.to_numpy(zero_copy_only=False)
    elif not isinstance(keys, np.ndarray):
        keys = list(keys)
    try:
        fingerprints = np.fromiter(map(farmhash.fingerprint64, keys), dtype=np.uint64,
                                   count=len(keys))
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


def eval_mask(keys: np.ndarray, percent: int) -> np.ndarray:
    """Which signed row keys belong to eval (the others are train), with
    ``percent`` buckets of 100 held out (``eval_percent``): the one place the
    split is decided, for CSV and BigQuery rows alike."""
    return split_buckets(keys) < percent


def check_stratify_by(column: str | None, columns: list) -> None:
    """A stratified split needs a column every row has (of ``columns``, the
    schema's ``Column``s): a class to count the row in."""
    if column is None:
        return
    by_name = {c.name: c for c in columns}
    if column not in by_name:
        raise UserError(f"--stratify_by {column}: no such column; the schema's columns: "
                        f"{', '.join(by_name)}")
    if not by_name[column].required:
        raise UserError(f"--stratify_by {column}: the column may be missing, and a row "
                        f"without a class cannot be stratified; pick a required column")


def stratum_eval_rows(rows: int, percent: int) -> int:
    """The rows of one class held out for eval when splitting by class
    (``--stratify_by``): ``percent`` of them, half rounded up, as BigQuery's
    ``DIV(rows * percent + 50, 100)``."""
    return (rows * percent + 50) // 100


def stratum_limit(sorted_keys: np.ndarray, percent: int) -> int | None:
    """The largest row key of a class that goes to eval: its rows with the
    ``stratum_eval_rows`` smallest keys are eval, as ranking by
    ``FARM_FINGERPRINT`` within the class does in BigQuery (rows with equal keys,
    duplicates, share a rank and a split). None: the class has no eval row."""
    count = stratum_eval_rows(len(sorted_keys), percent)
    return int(sorted_keys[count - 1]) if count else None


def stratified_eval_mask(classes: list, keys: np.ndarray, limits: dict) -> np.ndarray:
    """Which rows are eval, given each row's class and the classes' ``stratum_limit``."""
    bounds = np.array([limits.get(c) for c in classes], dtype=object)
    has_eval = np.array([b is not None for b in bounds], dtype=bool)
    limit = np.where(has_eval, bounds, 0).astype(np.int64)
    return has_eval & (keys <= limit)


def is_eval(batch: pa.RecordBatch, percent: int) -> np.ndarray:
    """``eval_mask`` of the rows of a decoded batch."""
    return eval_mask(batch.column(ROW_KEY).flatten().to_numpy(), percent)


def eval_rows(batch: pa.RecordBatch, percent: int, stratify_by: str | None = None
              ) -> np.ndarray:
    """Which rows of a batch holding *every* training row are eval, as the
    pipeline splits them: by bucket or, stratified, by each class's
    ``stratum_limit`` over the batch's own rows (``StratumLimits``)."""
    if stratify_by is None:
        return is_eval(batch, percent)
    classes = batch.column(stratify_by).flatten().to_pylist()
    keys = batch.column(ROW_KEY).flatten().to_numpy()
    by_class = np.array(classes, dtype=object)
    limits = {value: stratum_limit(np.sort(keys[by_class == value]), percent)
              for value in set(classes)}
    return stratified_eval_mask(classes, keys, limits)
