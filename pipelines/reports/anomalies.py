"""A run's validation results: statistics and anomalies files, and the skew and
drift comparisons they hold.

Reads what ``GenerateStats`` and ``ValidateStats`` wrote (binary
``DatasetFeatureStatisticsList`` and text ``Anomalies`` files, local or
remote) and turns the comparator measurements into the tables the summary and
the report show.
"""

import dataclasses
import functools

import tensorflow as tf
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

from pipelines import layout
from pipelines.errors import UserError
from pipelines.reports.explanations import Finding, anomaly_descriptions, explain

__all__ = [
    "Validated", "comparisons", "load_anomalies", "load_run", "load_split", "load_statistics",
]

_METRIC_NAMES = {
    anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: "L_infinity",
    anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE:
        "Jensen-Shannon divergence",
    anomalies_pb2.DriftSkewInfo.Measurement.NORMALIZED_ABSOLUTE_DIFFERENCE:
        "normalized absolute difference",
}


def load_statistics(path: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    """A binary ``DatasetFeatureStatisticsList`` file (local or remote)."""
    if not tf.io.gfile.exists(path):
        raise UserError(f"no statistics at {path}")
    with tf.io.gfile.GFile(path, "rb") as f:
        return statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())


def load_anomalies(path: str) -> anomalies_pb2.Anomalies:
    """An ``Anomalies`` text file, as ``ValidateStats`` writes it."""
    with tf.io.gfile.GFile(path, "rb") as f:
        return text_format.Parse(f.read().decode("utf-8"), anomalies_pb2.Anomalies())


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


@dataclasses.dataclass(frozen=True)
class Validated:
    """One set of rows (a split or a validated span): its statistics and, unless
    it was not validated, its anomalies, explained once for every reader."""

    name: str
    statistics: statistics_pb2.DatasetFeatureStatisticsList
    anomalies: anomalies_pb2.Anomalies | None = None
    schema_file: str = ""

    @functools.cached_property
    def findings(self) -> list[Finding]:
        return explain(self.anomalies, self.schema_file) if self.anomalies else []

    @property
    def ok(self) -> bool:
        a = self.anomalies
        return a is None or not (a.anomaly_info or a.HasField("dataset_anomaly_info"))

    def descriptions(self) -> dict[str, str]:
        """Feature name -> one line: what is wrong with it and the likely fix."""
        return anomaly_descriptions(self.findings)

    def comparisons(self, kind: str) -> dict[str, dict]:
        return comparisons(self.anomalies, kind) if self.anomalies else {}

    @property
    def rows(self) -> int:
        return self.statistics.datasets[0].num_examples

    def features(self) -> dict[str, statistics_pb2.FeatureNameStatistics]:
        return {(f.path.step[0] if f.path.step else f.name): f
                for f in self.statistics.datasets[0].features}


def load_split(root: str, split: str, schema_file: str, name: str | None = None
               ) -> Validated:
    """A split's statistics and anomalies under ``root`` (a run, or a span's
    directory), called ``name`` (default: the split)."""
    return Validated(name or split, load_statistics(layout.stats_file(root, split)),
                     load_anomalies(layout.anomalies_file(root, split)), schema_file)


def load_run(root: str, schema_file: str) -> dict[str, Validated]:
    """The validated splits of a run, by split."""
    return {split: load_split(root, split, schema_file) for split in layout.SPLITS
            if tf.io.gfile.exists(layout.stats_file(root, split))}
