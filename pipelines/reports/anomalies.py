"""A run's validation results: statistics and anomalies files, and the skew and
drift comparisons they hold.

Reads what ``GenerateStats`` and ``ValidateStats`` wrote (binary
``DatasetFeatureStatisticsList`` and text ``Anomalies`` files, local or
remote) and turns the comparator measurements into the tables the summary and
the report show.

Each comparison has a verdict, and ``ok`` follows it (None where it cannot tell):

- ``ok`` and ``over``: the metric against its threshold;
- ``not enough rows``: at the compared row count, the metric reads more than
  the threshold with nothing changed (``pipelines.stages.noise``, measured after
  the pipeline below 1,000 rows and kept beside the statistics), and the value
  is within that noise (times the thresholds' margin): neither ok nor over, and
  not an anomaly by itself. A value beyond it is ``over``: at any row count, a
  change that large is not chance;
- ``unchecked``: the threshold is the metric's maximum (1): the comparator can
  never fire (drafted so when random parts of the training data already differ
  that much).
"""

import dataclasses
import functools

import tensorflow as tf
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

from pipelines import layout
from pipelines.errors import UserError
from pipelines.records.json_files import read_json
from pipelines.reports.explanations import Finding, anomaly_descriptions, explain

__all__ = [
    "NOT_ENOUGH_ROWS", "OK", "OVER", "UNCHECKED", "Validated", "comparisons",
    "describe_comparisons", "load_anomalies", "load_run", "load_split", "load_statistics",
]

OK, OVER, NOT_ENOUGH_ROWS, UNCHECKED = "ok", "over", "not enough rows", "unchecked"
# Both distances lie in [0, 1]: a threshold of 1 can never be passed.
_NEVER_PASSED = 1.0

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


def comparisons(anomalies: anomalies_pb2.Anomalies, kind: str = "skew",
                noise: dict | None = None) -> dict[str, dict]:
    """Feature name -> ``kind`` ("skew" or "drift") metric, value, threshold,
    verdict and ok; with ``noise`` (``pipelines.stages.noise``'s record of the
    compared rows), also the noise at that row count and the rows compared."""
    measured_noise = (noise or {}).get(kind) or {}
    table = {}
    for info in anomalies.drift_skew_info:
        feature = ".".join(info.path.step)
        measured = info.skew_measurements if kind == "skew" else info.drift_measurements
        for measurement in measured:
            threshold = measurement.threshold
            entry = {
                "metric": _METRIC_NAMES.get(measurement.type, "unknown"),
                "value": round(measurement.value, 6),
                "threshold": threshold,
            }
            # The noise at the compared row count, and the most the threshold's
            # own measurement allows it (pipelines.stages.noise.measure).
            level, tolerance = measured_noise.get(feature) or (0.0, 0.0)
            if threshold >= _NEVER_PASSED:
                verdict = UNCHECKED
            elif level > max(threshold, tolerance):
                # Too few rows for the threshold; a value beyond what chance gave
                # at this count, with the thresholds' margin, is still evidence.
                margin = (noise or {}).get("margin", 1.5)
                verdict = OVER if measurement.value > margin * level else NOT_ENOUGH_ROWS
            else:
                verdict = OK if measurement.value <= threshold else OVER
            if feature in measured_noise:
                entry["noise"] = level
                entry["rows"] = noise["rows"]
            entry["verdict"] = verdict
            entry["ok"] = {OK: True, OVER: False}.get(verdict)
            table[feature] = entry
    return dict(sorted(table.items()))


def describe_comparisons(kind: str, table: dict[str, dict]) -> str:
    """One line: how many features are within threshold, and which are over,
    have too few rows to tell, or are unchecked (each with why)."""
    by_verdict: dict[str, list[str]] = {}
    for feature, m in table.items():
        # Entries written before verdicts existed have only ``ok``.
        verdict = m.get("verdict") or (OK if m["ok"] else OVER)
        by_verdict.setdefault(verdict, []).append(feature)
    line = (f"{kind}: {len(by_verdict.get(OK, []))} of {len(table)} features within "
            f"threshold")
    if by_verdict.get(OVER):
        line += f"; over: {', '.join(by_verdict[OVER])}"
    if by_verdict.get(NOT_ENOUGH_ROWS):
        rows = next(iter(table[f].get("rows") for f in by_verdict[NOT_ENOUGH_ROWS]))
        line += (f"; not enough rows to tell ({rows:,} compared; nothing changed reads more "
                 f"than the threshold at that count): {', '.join(by_verdict[NOT_ENOUGH_ROWS])}")
    if by_verdict.get(UNCHECKED):
        line += (f"; unchecked (threshold 1, the metric's maximum: random parts of the "
                 f"training data differ as much): {', '.join(by_verdict[UNCHECKED])}")
    return line


@dataclasses.dataclass(frozen=True)
class Validated:
    """One set of rows (a split or a validated span): its statistics and, unless
    it was not validated, its anomalies, explained once for every reader."""

    name: str
    statistics: statistics_pb2.DatasetFeatureStatisticsList
    anomalies: anomalies_pb2.Anomalies | None = None
    schema_file: str = ""
    # ``pipelines.stages.noise``'s record for these rows, where it was measured.
    noise: dict | None = None

    @functools.cached_property
    def findings(self) -> list[Finding]:
        """What is wrong, explained: a comparison counts only when it is over
        (not when it has too few rows to tell, or is unchecked)."""
        if not self.anomalies:
            return []
        over = {kind: {f for f, m in self.comparisons(kind).items() if m["verdict"] == OVER}
                for kind in ("skew", "drift")}
        return [f for f in explain(self.anomalies, self.schema_file)
                if f.kind not in over or f.feature in over[f.kind]]

    @property
    def ok(self) -> bool:
        a = self.anomalies
        return a is None or (not self.findings and not a.HasField("dataset_anomaly_info"))

    def descriptions(self) -> dict[str, str]:
        """Feature name -> one line: what is wrong with it and the likely fix."""
        return anomaly_descriptions(self.findings)

    def comparisons(self, kind: str) -> dict[str, dict]:
        return comparisons(self.anomalies, kind, self.noise) if self.anomalies else {}

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
    noise_file = layout.noise_file(root, split)
    noise = read_json(noise_file) if tf.io.gfile.exists(noise_file) else None
    return Validated(name or split, load_statistics(layout.stats_file(root, split)),
                     load_anomalies(layout.anomalies_file(root, split)), schema_file, noise)


def load_run(root: str, schema_file: str) -> dict[str, Validated]:
    """The validated splits of a run, by split."""
    return {split: load_split(root, split, schema_file) for split in layout.SPLITS
            if tf.io.gfile.exists(layout.stats_file(root, split))}
