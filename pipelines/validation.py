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
from apache_beam.io.filesystems import FileSystems
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from pipelines import explain, progress
from pipelines.errors import UserError

__all__ = [
    "GenerateStats",
    "ValidateStats",
    "anomaly_descriptions",
    "comparisons",
    "load_anomalies",
    "load_statistics",
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


def load_statistics(path: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    """A binary ``DatasetFeatureStatisticsList`` file (local or remote)."""
    if not FileSystems.exists(path):
        raise UserError(f"no statistics at {path}")
    with FileSystems.open(path) as f:
        return statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())


def load_anomalies(path: str) -> anomalies_pb2.Anomalies:
    """An ``Anomalies`` text file, as ``ValidateStats`` writes it."""
    with FileSystems.open(path) as f:
        return text_format.Parse(f.read().decode("utf-8"), anomalies_pb2.Anomalies())


def validate_split(
    statistics: statistics_pb2.DatasetFeatureStatisticsList,
    schema: schema_pb2.Schema,
    training_statistics: statistics_pb2.DatasetFeatureStatisticsList | None = None,
    previous_statistics: statistics_pb2.DatasetFeatureStatisticsList | None = None,
) -> anomalies_pb2.Anomalies:
    """Schema anomalies of ``statistics``, plus skew against the training split
    and drift against a previous span's statistics, when given."""
    anomalies = tfdv.validate_statistics(statistics, schema)
    comparisons = []
    if training_statistics is not None:
        comparisons.append(tfdv.validate_statistics(
            training_statistics, schema, serving_statistics=statistics))
    if previous_statistics is not None:
        comparisons.append(tfdv.validate_statistics(
            statistics, schema, previous_statistics=previous_statistics))
    for compared in comparisons:
        _merge_comparator_anomalies(anomalies, compared)
    return anomalies


def _merge_comparator_anomalies(anomalies: anomalies_pb2.Anomalies,
                                compared: anomalies_pb2.Anomalies) -> None:
    for feature, info in compared.anomaly_info.items():
        reasons = [r for r in info.reason if r.type in _COMPARATOR_REASONS]
        if not reasons:
            continue  # the schema anomalies of a split are reported with that split
        merged = anomalies.anomaly_info[feature]
        if not merged.reason:
            merged.path.CopyFrom(info.path)
            merged.severity = info.severity
        merged.reason.extend(reasons)
        merged.short_description = "; ".join(r.short_description for r in merged.reason)
        merged.description = " ".join(r.description for r in merged.reason)
    anomalies.drift_skew_info.extend(compared.drift_skew_info)


def anomaly_descriptions(anomalies: anomalies_pb2.Anomalies, schema_file: str
                         ) -> dict[str, str]:
    """Feature name -> one line: what is wrong with it and the likely fix."""
    texts: dict[str, list[str]] = {}
    fixes: dict[str, list[str]] = {}
    for finding in explain.explain(anomalies, schema_file):
        texts.setdefault(finding.feature, []).append(finding.text)
        if finding.fix not in fixes.setdefault(finding.feature, []):
            fixes[finding.feature].append(finding.fix)
    return {feature: " ".join(texts[feature] + fixes[feature]) for feature in texts}


def comparisons(anomalies: anomalies_pb2.Anomalies, kind: str = "skew") -> dict[str, dict]:
    """Feature name -> ``kind`` ("skew" or "drift") metric, value, threshold, ok."""
    table = {}
    for info in anomalies.drift_skew_info:
        feature = ".".join(info.path.step)
        measured = info.skew_measurements if kind == "skew" else info.drift_measurements
        for measurement in measured:
            table[feature] = {
                "metric": _METRIC_NAMES.get(measurement.type, "unknown"),
                "value": round(measurement.value, 6),
                "threshold": measurement.threshold,
                "ok": measurement.value <= measurement.threshold,
            }
    return dict(sorted(table.items()))


def _advance(batch, stage: str):
    progress.advance(stage, batch.num_rows)
    return batch


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
            statistics[name] = (
                batches
                | f"Progress{label}" >> beam.Map(_advance, "statistics")
                | f"Compute{label}" >> tfdv.GenerateStatistics(self._options))
            _ = statistics[name] | f"Write{label}" >> tfdv.WriteStatisticsToBinaryFile(
                os.path.join(self._stats_dir, f"{name}.pb"))
        return statistics


class _Validate(beam.DoFn):
    """``validate_split`` as a DoFn; its process() is left unannotated because
    Beam cannot type-check an optional side input against a Union hint."""

    def __init__(self, schema: schema_pb2.Schema):
        self._schema = schema

    def process(self, statistics, training_statistics=None, previous_statistics=None):
        yield validate_split(statistics, self._schema, training_statistics, previous_statistics)


class ValidateStats(beam.PTransform):
    """Dict of statistics -> dict of anomalies, written as
    ``<anomalies_dir>/<split>.pbtxt``.

    Every split is checked against the schema; the others than ``train`` also
    for skew against the training statistics (``training``, a one-element
    PCollection, or the ``train`` entry) and, given ``previous``, for drift
    against a former span's statistics.
    """

    def __init__(self, schema: schema_pb2.Schema, anomalies_dir: str,
                 training=None, previous=None):
        super().__init__()
        self._schema = schema
        self._anomalies_dir = anomalies_dir
        self._training = training
        self._previous = previous

    def expand(self, statistics):
        training = beam.pvalue.AsSingleton(
            self._training if self._training is not None else statistics["train"])
        anomalies = {}
        for name, stats in statistics.items():
            label = name.capitalize()
            side = {}
            if name != "train":
                side["training_statistics"] = training
                if self._previous is not None:
                    side["previous_statistics"] = beam.pvalue.AsSingleton(self._previous)
            anomalies[name] = stats | f"Validate{label}" >> beam.ParDo(
                _Validate(self._schema), **side)
            _ = (anomalies[name]
                 | f"Format{label}" >> beam.Map(text_format.MessageToString)
                 | f"Write{label}" >> beam.io.WriteToText(
                     os.path.join(self._anomalies_dir, f"{name}.pbtxt"),
                     shard_name_template="", num_shards=1))
        return anomalies
