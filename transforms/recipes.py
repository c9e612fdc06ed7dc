"""The building blocks of generated ``preprocessing_fn``s (``python -m pipelines init``).

A generated ``transforms.py`` calls one of these per raw column, so that every
choice it made is one readable line to edit. Each takes the raw tensor as TFT
hands it over: a ``[batch, 1]`` dense tensor for a required column, a sparse
one for a column with missing values; each returns ``[batch]`` tensors. The
analyzers see the training split only (TFT's full pass), and are named after
their column so that their cache keys are stable across tracings.
"""

import math

import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform import schema_inference

__all__ = [
    "cyclical", "dense", "hashed", "integer_class", "label_vocabulary", "missing",
    "number", "timestamp_features", "vocabulary", "z_score_imputed",
]

SECONDS_PER_DAY = 86_400


def dense(x, default_value=None) -> tf.Tensor:
    """A ``[batch, 1]`` dense or sparse feature as a ``[batch]`` tensor; the
    missing values of a sparse one become ``default_value``."""
    if isinstance(x, tf.sparse.SparseTensor):
        x = tf.sparse.to_dense(
            tf.sparse.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]),
            default_value=default_value)
    return tf.squeeze(x, axis=1)


def missing(x) -> tf.Tensor:
    """1 where the value is missing, 0 where present (``int64``)."""
    if not isinstance(x, tf.sparse.SparseTensor):
        return tf.zeros_like(dense(x), dtype=tf.int64)
    present = tf.sparse.SparseTensor(x.indices, tf.ones_like(x.values, dtype=tf.int64),
                                     x.dense_shape)
    return 1 - dense(present, default_value=0)


def z_score_imputed(x, name: str) -> tf.Tensor:
    """z-score with the training mean and variance of the present values; a
    missing value is imputed with the mean (a z-score of 0). Pair it with
    ``missing(x)`` so that the model can tell an imputed value from a real one.
    Scaling before imputing keeps the analysis to one pass over the data."""
    if isinstance(x, tf.sparse.SparseTensor):
        x = tf.sparse.SparseTensor(x.indices, tf.cast(x.values, tf.float32), x.dense_shape)
    else:
        x = tf.cast(x, tf.float32)
    z = dense(tft.scale_to_z_score(x, name=name), default_value=0.0)
    # A column with no value in training has no mean: its z-scores are NaN.
    return tf.where(tf.math.is_finite(z), z, tf.zeros_like(z))


def number(x) -> tf.Tensor:
    """The value as ``float32`` (a regression label, kept in its own units)."""
    return tf.cast(dense(x, default_value=0), tf.float32)


def vocabulary(x, name: str, oov_buckets: int = 1, missing_value: str = "") -> tf.Tensor:
    """Ids of a training vocabulary (most frequent value first); values not seen
    in training share ``oov_buckets`` extra ids; a missing value is
    ``missing_value``, one more category."""
    return tft.compute_and_apply_vocabulary(
        dense(x, default_value=missing_value), num_oov_buckets=oov_buckets,
        vocab_filename=name)


def hashed(x, buckets: int, missing_value: str = "") -> tf.Tensor:
    """Hash buckets of a string column with too many values for a vocabulary,
    with the range recorded in the transformed schema (a model sizes its
    embedding by it; TFT records it for vocabularies, not for hashes)."""
    ids = tft.hash_strings(dense(x, default_value=missing_value), buckets)
    schema_inference.set_tensor_schema_override(
        ids, tf.constant(0, tf.int64), tf.constant(buckets - 1, tf.int64))
    return ids


def label_vocabulary(x, name: str) -> tf.Tensor:
    """A text label as class ids, in the training split's order of frequency
    (so a binary label's more frequent class is 0). No OOV bucket: a class not
    seen in training has no id to learn."""
    return tft.compute_and_apply_vocabulary(dense(x, default_value=""), vocab_filename=name)


def integer_class(x, classes: int) -> tf.Tensor:
    """An integer label already numbered ``0 .. classes - 1``, with its range in
    the transformed schema (what tells a model it is a class, not a number)."""
    ids = tf.cast(dense(x, default_value=0), tf.int64)
    schema_inference.set_tensor_schema_override(
        ids, tf.constant(0, tf.int64), tf.constant(classes - 1, tf.int64))
    return ids


def cyclical(value: tf.Tensor, period: float) -> tuple[tf.Tensor, tf.Tensor]:
    """sin/cos encoding, so that 23:59 sits next to 00:00 and Sunday next to Monday."""
    angle = tf.cast(value, tf.float32) * (2.0 * math.pi / period)
    return tf.sin(angle), tf.cos(angle)


def timestamp_features(x, name: str, text: bool = False) -> dict[str, tf.Tensor]:
    """A timestamp as the model can use it, never hashed: the hour of the day and
    the day of the week as cycles, and the time itself scaled to [0, 1] over
    the training range. ``x`` holds seconds since 1970-01-01 UTC, or with
    ``text`` ``YYYY-MM-DD[ T]HH:MM[:SS]`` strings (read as UTC). A missing or
    unreadable time is imputed with the training mean and flagged."""
    if text:
        seconds, known = _parse_datetime(dense(x, default_value=""))
    else:
        seconds = tf.cast(dense(x, default_value=0), tf.float64)
        known = tf.cast(1 - missing(x), tf.bool)
    # float64: a float32 of seconds since 1970 is off by up to two minutes.
    mean = tft.mean(tf.boolean_mask(seconds, known), name=f"{name}_mean",
                    output_dtype=tf.float64)
    seconds = tf.where(known, seconds, tf.cast(mean, tf.float64))
    day_seconds = tf.math.floormod(seconds, SECONDS_PER_DAY)
    days = tf.math.floordiv(seconds, SECONDS_PER_DAY)
    hour_sin, hour_cos = cyclical(day_seconds / 3600.0, period=24.0)
    # 1970-01-01 was a Thursday: + 3 makes Monday 0.
    weekday_sin, weekday_cos = cyclical(tf.math.floormod(days + 3, 7), period=7.0)
    return {
        f"{name}_hour_sin": hour_sin, f"{name}_hour_cos": hour_cos,
        f"{name}_weekday_sin": weekday_sin, f"{name}_weekday_cos": weekday_cos,
        f"{name}_scaled": tf.cast(tft.scale_to_0_1(seconds, name=f"{name}_scaled"), tf.float32),
        f"{name}_missing": 1 - tf.cast(known, tf.int64),
    }


def _parse_datetime(text: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Seconds since 1970 of ``YYYY-MM-DD[ T]HH:MM[:SS...]`` strings, and whether
    each string was one."""
    pattern = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d*)?)?)?.*$"
    known = tf.strings.regex_full_match(text, pattern)
    padded = tf.where(known, tf.strings.substr(text + " 00:00:00", 0, 19),
                      "1970-01-01 00:00:00")

    def part(start: int, length: int) -> tf.Tensor:
        return tf.strings.to_number(tf.strings.substr(padded, start, length), tf.int64)

    days = _days_from_civil(part(0, 4), part(5, 2), part(8, 2))
    seconds = days * SECONDS_PER_DAY + part(11, 2) * 3600 + part(14, 2) * 60
    seconds += tf.strings.to_number(
        tf.where(tf.strings.regex_full_match(tf.strings.substr(padded, 17, 2), r"\d\d"),
                 tf.strings.substr(padded, 17, 2), "0"), tf.int64)
    return tf.cast(seconds, tf.float64), known


def _days_from_civil(year: tf.Tensor, month: tf.Tensor, day: tf.Tensor) -> tf.Tensor:
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
    ``days_from_civil``)."""
    shifted_year = year - tf.cast(month <= 2, tf.int64)
    era = tf.math.floordiv(shifted_year, 400)
    year_of_era = shifted_year - era * 400
    month_from_march = tf.math.floormod(month + 9, 12)
    day_of_year = (153 * month_from_march + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468
