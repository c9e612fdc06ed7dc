"""A Chicago taxi module file as a TFX user writes one: one file for TFX's
Transform (``preprocessing_fn``) and Trainer (``run_fn``) components.

Written for the tests after the conventions of TFX's public taxi example, not
copied from it: ``tfx`` imported at the top for the Trainer half, the label
named ``_LABEL_KEY`` (the raw column) with outputs named by
``_transformed_name``, and ``_fill_in_missing`` densifying the features the
SchemaGen schema leaves without a shape (sparse tensors, no value where the
CSV field was empty). It sets no ``LABEL_KEY``; this package is to run it
unchanged although ``tfx`` is not installed.
"""

import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx_bsl.public import tfxio

_NUMERIC_KEYS = ["fare", "trip_miles", "trip_seconds"]
_TEXT_KEYS = ["payment_type", "company"]
_LOCATION_KEYS = ["pickup_latitude", "pickup_longitude", "dropoff_latitude",
                  "dropoff_longitude"]
_ID_KEYS = ["trip_start_hour", "trip_start_day", "trip_start_month", "pickup_census_tract",
            "dropoff_census_tract", "pickup_community_area", "dropoff_community_area"]
_LOCATION_BUCKETS = 10
_TOP_WORDS, _OOV_BUCKETS = 1000, 10
_LABEL_KEY = "tips"
_FARE_KEY = "fare"


def _transformed_name(key: str) -> str:
    return f"{key}_xf"


def _fill_in_missing(feature):
    """A dense rank-1 tensor of ``feature``: a row without a value gets 0 or ''."""
    if not isinstance(feature, tf.SparseTensor):
        return feature
    rows = tf.SparseTensor(feature.indices, feature.values, [feature.dense_shape[0], 1])
    default = "" if feature.dtype == tf.string else 0
    return tf.squeeze(tf.sparse.to_dense(rows, default), axis=1)


def preprocessing_fn(inputs):
    """TFX's Transform component calls this on the raw features."""
    outputs = {}
    for key in _NUMERIC_KEYS:
        outputs[_transformed_name(key)] = tft.scale_to_z_score(_fill_in_missing(inputs[key]))
    for key in _TEXT_KEYS:
        outputs[_transformed_name(key)] = tft.compute_and_apply_vocabulary(
            _fill_in_missing(inputs[key]), top_k=_TOP_WORDS, num_oov_buckets=_OOV_BUCKETS)
    for key in _LOCATION_KEYS:
        outputs[_transformed_name(key)] = tft.bucketize(_fill_in_missing(inputs[key]),
                                                        _LOCATION_BUCKETS)
    for key in _ID_KEYS:
        outputs[_transformed_name(key)] = _fill_in_missing(inputs[key])
    fare = _fill_in_missing(inputs[_FARE_KEY])
    tips = _fill_in_missing(inputs[_LABEL_KEY])
    # A big tipper left more than a fifth of the fare.
    outputs[_transformed_name(_LABEL_KEY)] = tf.where(
        tf.math.is_nan(fare), tf.zeros_like(fare, dtype=tf.int64),
        tf.cast(tips > fare * 0.2, tf.int64))
    return outputs


def run_fn(fn_args: FnArgs):
    """TFX's Trainer component calls this; only TFX can (it needs tfx)."""
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    options = tfxio.TensorFlowDatasetOptions(batch_size=64,
                                             label_key=_transformed_name(_LABEL_KEY))
    dataset = fn_args.data_accessor.tf_dataset_factory(
        fn_args.train_files, options, tf_transform_output.transformed_metadata.schema)
    raise NotImplementedError(f"a model for {dataset.element_spec}: not part of this test")
