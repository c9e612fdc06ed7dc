"""The ``tf.data`` input function over a run's transformed TFRecords.

The preprocessing already happened in the Beam pipeline, so training only reads:
shards are read in parallel (interleave), whole batches are parsed at once with
the transformed feature spec from ``TFTransformOutput`` on parallel threads, the
training split is shuffled, and the next batches are prefetched while the model
works on the current one. The parallel steps keep their order, so that a seed
makes the training order, and with it the trained model, repeatable.
"""

import tensorflow as tf

from pipelines.decode.row_keys import ROW_KEY
from pipelines.reports.run_dir import RunDir

__all__ = ["make_dataset"]

_SHUFFLE_BUFFER = 10_000


def make_dataset(run: RunDir, split: str, batch_size: int, *, shuffle: bool = False,
                 label_key: str | None = None, label_dtype: tf.DType | None = None,
                 with_row_key: bool = False, seed: int | None = None) -> tf.data.Dataset:
    """Batches of transformed features of ``split``, one pass over the data.

    Args:
      run: a finished run.
      split: ``train``, ``eval`` or ``serving``.
      batch_size: examples per batch (the last batch may be smaller).
      shuffle: shuffle shards and examples (for training).
      label_key: if given, yield ``(features, label)`` pairs with the label
        popped from the features.
      label_dtype: if given, the label is cast to it (a regression label read
        as INT is regressed as float32).
      with_row_key: also parse the ``row_key`` every example carries.
      seed: makes the shuffling repeatable.
    """
    spec = run.transformed_feature_spec(split)  # a serving split may have no label
    if with_row_key:
        spec[ROW_KEY] = tf.io.FixedLenFeature([], tf.int64)
    files = run.data_files(split)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed)
    dataset = dataset.interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type="GZIP"),
        cycle_length=max(1, min(len(files), 8)), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True)
    if shuffle:
        dataset = dataset.shuffle(_SHUFFLE_BUFFER, seed=seed)
    dataset = dataset.batch(batch_size).map(
        lambda serialized: tf.io.parse_example(serialized, spec),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if label_key:
        dataset = dataset.map(lambda features: _pop(features, label_key, label_dtype))
    return dataset.prefetch(tf.data.AUTOTUNE)


def _pop(features: dict, key: str, dtype: tf.DType | None) -> tuple[dict, tf.Tensor]:
    features = dict(features)
    label = features.pop(key)
    return features, label if dtype is None else tf.cast(label, dtype)
