"""``GenerateStats`` and ``ValidateStats``: TFDV statistics and anomalies per split.

Every split is validated against the curated schema (types, domains, presence).
Eval and serving are also compared with the training statistics using the
schema's skew comparators (L-infinity distance for categorical features,
Jensen-Shannon divergence for numeric ones). TFDV validates one set of
statistics against the schema per call and checks skew only for the "training"
side of a call, so a split's anomalies merge two calls: schema anomalies of the
split itself, and the comparator anomalies of training vs. the split.
"""

import os

import apache_beam as beam
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

__all__ = [
    "GenerateStats",
    "ValidateStats",
    "anomaly_descriptions",
    "skew_measurements",
    "stats_options",
    "validate_split",
]

_COMPARATOR_REASONS = frozenset({
    anomalies_pb2.AnomalyInfo.COMPARATOR_L_INFTY_HIGH,
    anomalies_pb2.AnomalyInfo.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH,
    anomalies_pb2.AnomalyInfo.COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH,
})
_METRIC_NAMES = {
    anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: "L_infinity",
    anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE:
        "Jensen-Shannon divergence",
    anomalies_pb2.DriftSkewInfo.Measurement.NORMALIZED_ABSOLUTE_DIFFERENCE:
        "normalized absolute difference",
}


def stats_options(schema: schema_pb2.Schema) -> tfdv.StatsOptions:
    """Statistics of the schema's features only (not the ``row_key`` passthrough)."""
    return tfdv.StatsOptions(
        schema=schema, feature_allowlist=[f.name for f in schema.feature])


def validate_split(
    statistics: statistics_pb2.DatasetFeatureStatisticsList,
    schema: schema_pb2.Schema,
    training_statistics: statistics_pb2.DatasetFeatureStatisticsList | None = None,
) -> anomalies_pb2.Anomalies:
    """Schema anomalies of ``statistics``, plus skew against the training split."""
    anomalies = tfdv.validate_statistics(statistics, schema)
    if training_statistics is None:
        return anomalies
    skew = tfdv.validate_statistics(
        training_statistics, schema, serving_statistics=statistics)
    for feature, info in skew.anomaly_info.items():
        reasons = [r for r in info.reason if r.type in _COMPARATOR_REASONS]
        if not reasons:
            continue  # the training split's own schema anomalies are reported there
        merged = anomalies.anomaly_info[feature]
        if not merged.reason:
            merged.path.CopyFrom(info.path)
            merged.severity = info.severity
        merged.reason.extend(reasons)
        merged.short_description = "; ".join(r.short_description for r in merged.reason)
        merged.description = " ".join(r.description for r in merged.reason)
    anomalies.drift_skew_info.extend(skew.drift_skew_info)
    return anomalies


def anomaly_descriptions(anomalies: anomalies_pb2.Anomalies) -> dict[str, str]:
    """Feature name -> one-line description of what is wrong with it."""
    lines = {}
    for feature, info in sorted(anomalies.anomaly_info.items()):
        lines[feature] = " ".join(
            " ".join(r.description.split()) for r in info.reason) or info.description
    if anomalies.HasField("dataset_anomaly_info"):
        lines["(dataset)"] = " ".join(anomalies.dataset_anomaly_info.description.split())
    return lines


def skew_measurements(anomalies: anomalies_pb2.Anomalies) -> dict[str, dict]:
    """Feature name -> the skew metric, its value, threshold and whether it is ok."""
    table = {}
    for info in anomalies.drift_skew_info:
        feature = ".".join(info.path.step)
        for measurement in info.skew_measurements:
            table[feature] = {
                "metric": _METRIC_NAMES.get(measurement.type, "unknown"),
                "value": round(measurement.value, 6),
                "threshold": measurement.threshold,
                "ok": measurement.value <= measurement.threshold,
            }
    return dict(sorted(table.items()))


class GenerateStats(beam.PTransform):
    """Dict of RecordBatch PCollections -> dict of statistics, written as
    ``<stats_dir>/<split>.pb`` (a binary ``DatasetFeatureStatisticsList``)."""

    def __init__(self, schema: schema_pb2.Schema, stats_dir: str):
        super().__init__()
        self._options = stats_options(schema)
        self._stats_dir = stats_dir

    def expand(self, splits):
        statistics = {}
        for name, batches in splits.items():
            label = name.capitalize()
            statistics[name] = batches | f"Compute{label}" >> tfdv.GenerateStatistics(
                self._options)
            _ = statistics[name] | f"Write{label}" >> tfdv.WriteStatisticsToBinaryFile(
                os.path.join(self._stats_dir, f"{name}.pb"))
        return statistics


class _Validate(beam.DoFn):
    """``validate_split`` as a DoFn; its process() is left unannotated because
    Beam cannot type-check an optional side input against a Union hint."""

    def __init__(self, schema: schema_pb2.Schema):
        self._schema = schema

    def process(self, statistics, training_statistics=None):
        yield validate_split(statistics, self._schema, training_statistics)


class ValidateStats(beam.PTransform):
    """Dict of statistics -> dict of anomalies, written as
    ``<anomalies_dir>/<split>.pbtxt``; splits other than train are also checked
    for skew against train."""

    def __init__(self, schema: schema_pb2.Schema, anomalies_dir: str):
        super().__init__()
        self._schema = schema
        self._anomalies_dir = anomalies_dir

    def expand(self, statistics):
        training = beam.pvalue.AsSingleton(statistics["train"])
        anomalies = {}
        for name, stats in statistics.items():
            label = name.capitalize()
            side = {} if name == "train" else {"training_statistics": training}
            anomalies[name] = stats | f"Validate{label}" >> beam.ParDo(
                _Validate(self._schema), **side)
            _ = (anomalies[name]
                 | f"Format{label}" >> beam.Map(text_format.MessageToString)
                 | f"Write{label}" >> beam.io.WriteToText(
                     os.path.join(self._anomalies_dir, f"{name}.pbtxt"),
                     shard_name_template="", num_shards=1))
        return anomalies
