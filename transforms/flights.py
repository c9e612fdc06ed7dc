"""The TFT ``preprocessing_fn`` for the NYC flights 2013 data.

The raw features are those of ``schemas/flights.pbtxt``: required columns
arrive as dense ``[batch, 1]`` tensors, columns with missing values (``NA`` in
the CSV: cancelled flights have no times or delays, some rows no ``tailnum``)
as sparse ones. Every output is a ``[batch]`` tensor.

The label ``delayed`` is 1 when the flight arrived more than 15 minutes late or
never arrived: no arrival delay is recorded for cancelled and for diverted
flights. ``arr_delay``, ``arr_time`` and ``air_time`` are known only after the
flight, so they feed the label alone, never a feature; ``dep_delay`` is kept as
a feature (the model predicts at departure).
"""

import math

import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform import schema_inference

__all__ = ["LABEL_INPUTS", "LABEL_KEY", "OUTPUT_KEYS", "SERVING_INPUTS", "preprocessing_fn"]

LABEL_KEY = "delayed"
DELAY_THRESHOLD_MINUTES = 15
# The raw features the model's inputs are computed from: what a serving request
# carries. tests/test_serving.py checks that they suffice for every output but
# the label.
SERVING_INPUTS = ("year", "month", "day", "hour", "minute", "carrier", "origin", "dest",
                  "distance", "dep_delay", "tailnum")
# Raw features only the label needs; known after the flight, absent at serving.
LABEL_INPUTS = ("arr_delay",)

VOCABULARY_FEATURES = ("carrier", "origin", "dest")
OOV_BUCKETS = 1
TAILNUM_HASH_BUCKETS = 1000
ROUTE_HASH_BUCKETS = 512
DISTANCE_QUANTILE_BUCKETS = 10

OUTPUT_KEYS = (
    "dep_delay_z", "dep_delay_missing", "distance_log", "distance_bucket",
    "sched_dep_minute_01", "sched_hour_sin", "sched_hour_cos",
    "day_of_week_sin", "day_of_week_cos", "carrier_id", "origin_id", "dest_id",
    "tailnum_hash", "origin_x_dest", LABEL_KEY,
)


def preprocessing_fn(inputs: dict) -> dict:
    """Raw flights features -> model-ready features and the ``delayed`` label."""
    outputs = {}

    # Analyzers are named so that their cache keys are stable across tracings.
    outputs["dep_delay_z"], outputs["dep_delay_missing"] = _z_score_imputing_mean(
        inputs["dep_delay"], name="dep_delay_z")

    distance = tf.cast(_dense(inputs["distance"]), tf.float32)
    outputs["distance_log"] = tft.scale_to_z_score(tf.math.log1p(distance), name="distance_log")
    outputs["distance_bucket"] = tft.bucketize(
        distance, DISTANCE_QUANTILE_BUCKETS, name="distance_bucket")

    hour = tf.cast(_dense(inputs["hour"]), tf.float32)
    minute = tf.cast(_dense(inputs["minute"]), tf.float32)
    outputs["sched_dep_minute_01"] = tft.scale_to_0_1(
        hour * 60.0 + minute, name="sched_dep_minute_01")
    outputs["sched_hour_sin"], outputs["sched_hour_cos"] = _cyclical(
        hour + minute / 60.0, period=24.0)

    day_of_week = _day_of_week(
        _dense(inputs["year"]), _dense(inputs["month"]), _dense(inputs["day"]))
    outputs["day_of_week_sin"], outputs["day_of_week_cos"] = _cyclical(
        tf.cast(day_of_week, tf.float32), period=7.0)

    for name in VOCABULARY_FEATURES:
        outputs[f"{name}_id"] = tft.compute_and_apply_vocabulary(
            _dense(inputs[name]), num_oov_buckets=OOV_BUCKETS, vocab_filename=name)

    outputs["tailnum_hash"] = _hash_buckets(
        _dense(inputs["tailnum"], default_value=""), TAILNUM_HASH_BUCKETS)
    route = tf.strings.join(
        [_dense(inputs["origin"]), _dense(inputs["dest"])], separator="_")
    outputs["origin_x_dest"] = _hash_buckets(route, ROUTE_HASH_BUCKETS)

    arr_delay = _dense(inputs["arr_delay"], default_value=-1)
    arrived = _dense(_indicator(inputs["arr_delay"]), default_value=0) > 0
    late = arr_delay > DELAY_THRESHOLD_MINUTES
    outputs[LABEL_KEY] = tf.cast(tf.logical_or(late, tf.logical_not(arrived)), tf.int64)
    return outputs


def _dense(x, default_value=None) -> tf.Tensor:
    """A ``[batch, 1]`` dense or sparse feature as a ``[batch]`` tensor.

    Missing values of a sparse feature become ``default_value``.
    """
    if isinstance(x, tf.sparse.SparseTensor):
        x = tf.sparse.to_dense(
            tf.sparse.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]),
            default_value=default_value)
    return tf.squeeze(x, axis=1)


def _indicator(x: tf.sparse.SparseTensor) -> tf.sparse.SparseTensor:
    """1 where the sparse feature has a value (missing stays missing)."""
    return tf.sparse.SparseTensor(
        x.indices, tf.ones_like(x.values, dtype=tf.int64), x.dense_shape)


def _z_score_imputing_mean(x: tf.sparse.SparseTensor, name: str
                           ) -> tuple[tf.Tensor, tf.Tensor]:
    """z-scores of the present values (mean and variance of those in training);
    a missing value is imputed with the mean, a z-score of 0. Also returns a
    0/1 indicator of the missing values, so the model can tell them apart.

    Imputing after scaling keeps the analysis to one pass over the data:
    scaling an imputed feature needs the mean before the variance.
    """
    values = tf.sparse.SparseTensor(x.indices, tf.cast(x.values, tf.float32), x.dense_shape)
    scaled = tft.scale_to_z_score(values, name=name)
    present = _dense(_indicator(x), default_value=0)
    return _dense(scaled, default_value=0.0), 1 - present


def _hash_buckets(strings: tf.Tensor, buckets: int) -> tf.Tensor:
    """``tft.hash_strings``, with its range recorded in the transformed schema.

    TFT's vocabulary and bucketize outputs carry a categorical ``int_domain``;
    hash buckets do not unless told, and a model needs it to size embeddings.
    """
    ids = tft.hash_strings(strings, buckets)
    schema_inference.set_tensor_schema_override(
        ids, tf.constant(0, tf.int64), tf.constant(buckets - 1, tf.int64))
    return ids


def _cyclical(value: tf.Tensor, period: float) -> tuple[tf.Tensor, tf.Tensor]:
    """sin/cos encoding, so 23:59 sits next to 00:00 and Sunday next to Monday."""
    angle = value * (2.0 * math.pi / period)
    return tf.sin(angle), tf.cos(angle)


def _day_of_week(year: tf.Tensor, month: tf.Tensor, day: tf.Tensor) -> tf.Tensor:
    """Day of the week, Monday = 0, of a proleptic Gregorian date.

    Days since 1970-01-01 by Howard Hinnant's ``days_from_civil``; the epoch was
    a Thursday.
    """
    shifted_year = year - tf.cast(month <= 2, tf.int64)
    era = tf.math.floordiv(shifted_year, 400)
    year_of_era = shifted_year - era * 400
    month_from_march = tf.math.floormod(month + 9, 12)
    day_of_year = (153 * month_from_march + 2) // 5 + day - 1
    day_of_era = (year_of_era * 365 + year_of_era // 4 - year_of_era // 100
                  + day_of_year)
    days_since_epoch = era * 146097 + day_of_era - 719468
    return tf.math.floormod(days_since_epoch + 3, 7)
