"""``OversampleMinority``: repeats the rows of the smaller classes in the
transformed training split (``--oversample_minority RATIO``).

The class of a row is its label as the ``preprocessing_fn`` outputs it (the
dataset's ``LABEL_KEY``, an integer class), so a label derived in the graph
(flights' ``delayed``) is balanced as well as one read from a column. Every
class with fewer rows than ``RATIO`` x the largest class's is brought up to
``target = round(RATIO x largest)``: each of its ``n`` rows is written
``target // n`` times, and the ``target mod n`` rows of the class with the
smallest mixed ``row_key`` once more: deterministic, the same rows on every
run, spread over the class like a random draw, and each class lands on its
target to the row.

Only the records the model trains on are rebalanced: the statistics, TFT's
analysis (means, vocabularies, quantiles) and the skew checks see every
training row once, and eval and serving are never touched.
"""

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform import impl_helper
from tensorflow_transform.tf_metadata import schema_utils

from pipelines.datasets import Dataset
from pipelines.decode.row_keys import ROW_KEY
from pipelines.errors import UserError
from pipelines.stages import counters

__all__ = ["OversampleMinority", "check_ratio", "mixed_keys", "repeat_counts"]


def check_ratio(ratio: float | None, dataset: Dataset, schema: schema_pb2.Schema) -> None:
    """Raises a one-line ``UserError`` for a ratio outside (0, 1] or a dataset
    whose ``preprocessing_fn`` outputs no integer label: it is traced (in a
    graph, nothing analysed) to learn the label's type before the run."""
    if ratio is None:
        return
    if not 0 < ratio <= 1:
        raise UserError(f"--oversample_minority takes a minority:majority ratio in (0, 1], "
                        f"got {ratio}")
    label = dataset.module.require_label("--oversample_minority (it balances the label's "
                                         "classes)")
    specs = schema_utils.schema_as_feature_spec(schema).feature_spec
    with tf.Graph().as_default():
        outputs = dataset.load_preprocessing_fn()(
            dict(impl_helper.batched_placeholders_from_specs(specs)))
    if label not in outputs or not outputs[label].dtype.is_integer:
        kind = outputs[label].dtype.name if label in outputs else "not an output"
        raise UserError(f"--oversample_minority balances classes, and the label {label!r} "
                        f"of dataset {dataset.name!r} is {kind}, not an integer class")


def mixed_keys(keys: np.ndarray) -> np.ndarray:
    """``row_key``s scrambled (splitmix64's finaliser), so that the rows that
    get one more copy are unrelated to the split, which ``row_key`` decides;
    signed, as Beam's integer coder takes them."""
    z = keys.astype(np.int64).view(np.uint64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return (z ^ (z >> np.uint64(31))).view(np.int64)


def _column(batch: pa.RecordBatch, name: str) -> np.ndarray:
    values = batch.column(name)
    if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        values = pc.list_flatten(values)
    if len(values) != batch.num_rows or values.null_count:
        raise UserError(f"--oversample_minority needs one label per row; {name!r} has "
                        f"{len(values) - values.null_count} values in {batch.num_rows} rows")
    return values.to_numpy()


def _labels(batch: pa.RecordBatch, label: str) -> np.ndarray:
    if label not in batch.schema.names:
        raise UserError(f"--oversample_minority: the transformed training split has no "
                        f"label {label!r}")
    labels = _column(batch, label)
    if not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"--oversample_minority balances classes, and the label {label!r} is "
                        f"{labels.dtype}, not an integer class")
    return labels


def _keys_by_class(transformed, label: str):
    batch, _ = transformed
    labels = _labels(batch, label)
    keys = mixed_keys(_column(batch, ROW_KEY))
    for value in np.unique(labels):
        yield int(value), keys[labels == value]


def repeat_counts(sorted_keys: dict[int, np.ndarray], ratio: float
                  ) -> dict[int, tuple[int, int | None]]:
    """Per class, from its rows' sorted mixed keys: how many times each row is
    written, and the largest mixed key of the rows written once more (None:
    no row is)."""
    if not sorted_keys:
        return {}
    largest = max(len(keys) for keys in sorted_keys.values())
    target = round(ratio * largest)
    plan = {}
    for value, keys in sorted_keys.items():
        if len(keys) >= target:
            plan[value] = (1, None)
            continue
        copies, more = divmod(target, len(keys))
        plan[value] = (copies, int(keys[more - 1]) if more else None)
    return plan


class _Repeat(beam.DoFn):
    def __init__(self, label: str):
        self._label = label

    def process(self, transformed, plan):
        batch, passthrough = transformed
        labels = _labels(batch, self._label)
        keys = mixed_keys(_column(batch, ROW_KEY))
        copies = np.ones(batch.num_rows, dtype=np.int64)
        for value, (times, limit) in plan.items():
            of_class = labels == value
            copies[of_class] = times
            if limit is not None:
                copies[of_class & (keys <= limit)] += 1
        extra = int(copies.sum()) - batch.num_rows
        if not extra:
            yield transformed
            return
        counters.count(counters.OVERSAMPLED, extra)
        rows = np.repeat(np.arange(batch.num_rows), copies)
        yield batch.take(pa.array(rows)), passthrough


class OversampleMinority(beam.PTransform):
    """Transformed training ``(RecordBatch, passthrough)`` -> the same with the
    minority classes' rows repeated up to ``ratio`` x the majority class;
    the copies are counted (``rows_oversampled``)."""

    def __init__(self, label: str, ratio: float):
        super().__init__()
        self._label = label
        self._ratio = ratio

    def expand(self, transformed):
        plan = (transformed
                | "KeysByClass" >> beam.FlatMap(_keys_by_class, self._label)
                | "AllKeys" >> beam.CombinePerKey(_sorted_concatenation)
                | "ToDict" >> beam.combiners.ToDict()
                | "Plan" >> beam.Map(repeat_counts, self._ratio))
        return transformed | "Repeat" >> beam.ParDo(
            _Repeat(self._label), plan=beam.pvalue.AsSingleton(plan))


def _sorted_concatenation(parts) -> np.ndarray:
    return np.sort(np.concatenate(list(parts)))
