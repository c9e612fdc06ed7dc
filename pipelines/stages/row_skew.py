"""``RowSkew``: the same rows on two sides, joined by key and compared feature
by feature with TFDV's own feature skew detector (``DetectFeatureSkewImpl``,
``tensorflow_data_validation.skew.feature_skew_detector``), and what it found.

Distribution skew (``ValidateStats``) compares two sets of statistics; this
compares two computations of the same rows: what a serving system logged for a
request against what the pipeline computes from the raw row, or two CSV files
that should hold the same values. The detector takes ``tf.Example``s, so each
side's decoded batches are encoded by tfx_bsl's ``RecordBatchToExamplesEncoder``
after every compared column is cast to one type on both sides (``FeatureKinds``):
an integer on one side and a float on the other would otherwise never match,
as the detector compares serialized values. A missing value is a feature with
no values, on both sides alike, which the detector counts as present on one
side only when the other has a value, and as a match when neither has.

Its outputs are written with TFDV's own sinks under ``PREFIX`` (``skew_results``,
``skew_pairs``, ``match_stats``, ``confusion``: TFRecords of its protos, readable
with its iterators), and ``load`` turns them into a ``RowSkewResult``: plain
data (``pipelines.reports.row_skew``) for ``row_skew.json``, the validation
summary, the report and the command's lines.
"""

import glob as globlib
import math

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf
from tensorflow_data_validation.skew import feature_skew_detector as detector
from tensorflow_data_validation.skew.protos import feature_skew_results_pb2
from tfx_bsl.coders import example_coder

from pipelines.reports.row_skew import CONFUSIONS_KEPT, FeatureSkew, RowSkewResult

__all__ = ["FEATURE_KINDS", "RowSkew", "kind_of", "load", "widest"]

# The type every compared column is cast to, by kind.
FEATURE_KINDS = {"int": pa.int64(), "float": pa.float32(), "bytes": pa.large_binary()}
_OUTPUTS = {detector.SKEW_RESULTS_KEY: ("skew_results", detector.skew_results_sink),
            detector.SKEW_PAIRS_KEY: ("skew_pairs", detector.skew_pair_sink),
            detector.MATCH_STATS_KEY: ("match_stats", detector.match_stats_sink),
            detector.CONFUSION_KEY: ("confusion", detector.confusion_count_sink)}


def kind_of(arrow_type: pa.DataType) -> str:
    """The kind of a decoded column's type (a list of ints, floats or bytes)."""
    value_type = arrow_type.value_type if pa.types.is_list(arrow_type) or pa.types.is_large_list(
        arrow_type) else arrow_type
    if pa.types.is_integer(value_type) or pa.types.is_boolean(value_type):
        return "int"
    if pa.types.is_floating(value_type):
        return "float"
    return "bytes"


def widest(kinds: list[str]) -> str:
    """The kind both sides' values can be compared as: an integer and a float
    as floats, anything and text as text."""
    if "bytes" in kinds:
        return "bytes"
    return "float" if "float" in kinds else "int"


def _examples(batch: pa.RecordBatch, kinds: dict[str, str], encoder_box: list):
    """A batch's rows as ``tf.train.Example``s of the ``kinds`` columns, each
    cast to its kind (a column the batch lacks is missing in every row)."""
    arrays = []
    for name, kind in kinds.items():
        target = pa.large_list(FEATURE_KINDS[kind])
        if name not in batch.schema.names:
            arrays.append(pa.nulls(batch.num_rows, target))
            continue
        column = batch.column(name)
        if not pa.types.is_large_list(column.type) and not pa.types.is_list(column.type):
            column = pa.LargeListArray.from_arrays(
                pa.array(np.arange(len(column) + 1, dtype=np.int64)), column)
        values = column.flatten()
        if kind == "bytes" and not pa.types.is_binary(values.type) and not (
                pa.types.is_large_binary(values.type)):
            # A number compared with text is compared as it would be written.
            values = pc.cast(values, pa.large_string())
        values = pc.cast(values, FEATURE_KINDS[kind])
        offsets = column.offsets
        if pa.types.is_list(column.type):
            offsets = pc.cast(offsets, pa.int64())
        arrays.append(pa.LargeListArray.from_arrays(offsets, values, mask=column.is_null()))
    if not encoder_box:
        encoder_box.append(example_coder.RecordBatchToExamplesEncoder())
    typed = pa.RecordBatch.from_arrays(arrays, names=list(kinds))
    return [tf.train.Example.FromString(e) for e in encoder_box[0].encode(typed)]


class _ToExamples(beam.DoFn):
    def __init__(self, kinds: dict[str, str]):
        self._kinds = kinds
        self._encoder: list = []

    def process(self, batch: pa.RecordBatch):
        yield from _examples(batch, self._kinds, self._encoder)


class RowSkew(beam.PTransform):
    """``(base batches, test batches)`` -> TFDV's skew outputs, written under
    ``prefix``.

    Args:
      keys: the columns that identify a row on both sides (never compared).
      kinds: every compared column and key -> ``"int"``, ``"float"`` or
        ``"bytes"``, the type both sides are cast to.
      prefix: where TFDV's sinks write (``PREFIX-skew_results-*-of-*``, ...).
      float_digits: floats rounded to this many decimals before comparing
        (None: compared as float32).
      sample: the number of mismatching pairs kept as examples.
      allow_duplicates: compare every pair of rows sharing a key (each must
        fit in memory); by default a duplicated key is counted and skipped.
    """

    def __init__(self, keys: list[str], kinds: dict[str, str], prefix: str, *,
                 float_digits: int | None = None, sample: int = 20,
                 allow_duplicates: bool = False):
        super().__init__()
        self._keys = list(keys)
        self._kinds = dict(kinds)
        self._prefix = prefix
        self._float_digits = float_digits
        self._sample = sample
        self._allow_duplicates = allow_duplicates

    def expand(self, sides):
        base, test = sides
        # TFDV's confusion counts take single-valued text: every CSV column is.
        confusion = [detector.ConfusionConfig(name) for name, kind in self._kinds.items()
                     if kind == "bytes" and name not in self._keys]
        examples = [side | f"{label}Examples" >> beam.ParDo(_ToExamples(self._kinds))
                    for label, side in (("Base", base), ("Test", test))]
        results = tuple(examples) | "DetectFeatureSkew" >> detector.DetectFeatureSkewImpl(
            identifier_features=self._keys, sample_size=self._sample,
            float_round_ndigits=self._float_digits,
            allow_duplicate_identifiers=self._allow_duplicates,
            confusion_configs=confusion or None)
        written = []
        for key, (name, sink) in _OUTPUTS.items():
            if key in results:
                written.append(results[key] | f"Write{name.title()}" >> sink(
                    f"{self._prefix}-{name}"))
        return written


def _records(prefix: str, proto):
    paths = sorted(globlib.glob(f"{prefix}-*-of-*")) if "://" not in prefix else sorted(
        tf.io.gfile.glob(f"{prefix}-*-of-*"))
    for path in paths:
        for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
            yield proto.FromString(record)


def _value(feature: tf.train.Feature | None):
    """A feature's values as JSON: one value as itself, none as None."""
    if feature is None:
        return None
    kind = feature.WhichOneof("kind")
    values = list(getattr(feature, kind).value) if kind else []
    if kind == "float_list":
        # A float32 shown as its shortest text (0.1, not 0.10000000149011612).
        values = [float(str(np.float32(v))) if math.isfinite(v) else str(v) for v in values]
    elif kind == "bytes_list":
        values = [v.decode("utf-8", "backslashreplace") for v in values]
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _example(pair: feature_skew_results_pb2.SkewPair, keys: list[str]) -> dict:
    base = tf.train.Example.FromString(pair.base).features.feature
    test = tf.train.Example.FromString(pair.test).features.feature
    differing = sorted([*pair.mismatched_features, *pair.base_only_features,
                        *pair.test_only_features])
    return {"key": {k: _value(base.get(k)) for k in keys},
            "differs": {name: {"base": _value(base.get(name)), "test": _value(test.get(name))}
                        for name in differing}}


def _text(value) -> str:
    return "(missing)" if value == detector._MISSING_VALUE_PLACEHOLDER else value.decode(
        "utf-8", "backslashreplace")


def load(prefix: str, keys: list[str]) -> RowSkewResult:
    """The result ``RowSkew`` wrote under ``prefix``."""
    features = [FeatureSkew(s.feature_name, s.match_count + s.diff_count, s.match_count,
                            s.mismatch_count, s.base_only, s.test_only)
                for s in _records(f"{prefix}-skew_results",
                                  feature_skew_results_pb2.FeatureSkew)]
    features.sort(key=lambda f: (-f.share, f.feature))
    stats = next(_records(f"{prefix}-match_stats", feature_skew_results_pb2.MatchStats),
                 feature_skew_results_pb2.MatchStats())
    match = {"base_rows": stats.base_with_id_count, "test_rows": stats.test_with_id_count,
             "keys": stats.identifiers_count, "pairs": stats.matching_pairs_count,
             "keys_only_in_base": stats.ids_missing_in_test_count,
             "keys_only_in_test": stats.ids_missing_in_base_count,
             "duplicate_keys": stats.duplicate_id_count,
             "base_rows_without_key": stats.base_missing_id_count,
             "test_rows_without_key": stats.test_missing_id_count}
    examples = [_example(p, keys) for p in _records(f"{prefix}-skew_pairs",
                                                    feature_skew_results_pb2.SkewPair)]
    examples.sort(key=lambda e: repr(sorted(e["key"].items())))
    confusion: dict[str, list] = {}
    for count in _records(f"{prefix}-confusion", feature_skew_results_pb2.ConfusionCount):
        if count.base.bytes_value != count.test.bytes_value:
            confusion.setdefault(count.feature_name, []).append(
                {"base": _text(count.base.bytes_value), "test": _text(count.test.bytes_value),
                 "count": count.count})
    confusion = {name: sorted(pairs, key=lambda p: (-p["count"], p["base"], p["test"]))[
        :CONFUSIONS_KEPT] for name, pairs in sorted(confusion.items())}
    return RowSkewResult(list(keys), features, match, examples, confusion)
