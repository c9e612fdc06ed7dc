"""TFDV anomalies in plain language, each with the likely fix.

TFDV's own descriptions say what it measured; a user also needs to know which
file to change, or that the data source is what changed. ``explain`` keeps
TFDV's measurement and adds that.

Whether a comparator anomaly is skew (against training) or drift (against a
previous span) is read from the measurements TFDV records with it
(``drift_skew_info``), not from its wording.
"""

import collections
import dataclasses

from tensorflow_metadata.proto.v0 import anomalies_pb2

__all__ = ["COMPARATOR_REASONS", "Finding", "anomaly_descriptions", "explain"]

_Type = anomalies_pb2.AnomalyInfo
_Measurement = anomalies_pb2.DriftSkewInfo.Measurement
# The skew and drift comparators' anomalies, and the measurement behind each.
_MEASURED_BY = {
    _Type.COMPARATOR_L_INFTY_HIGH: _Measurement.L_INFTY,
    _Type.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH: _Measurement.JENSEN_SHANNON_DIVERGENCE,
    _Type.COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH:
        _Measurement.NORMALIZED_ABSOLUTE_DIFFERENCE,
}
COMPARATOR_REASONS = frozenset(_MEASURED_BY)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem with one feature of one split."""

    feature: str
    kind: str  # "schema", "skew" or "drift"
    text: str
    fix: str


def explain(anomalies: anomalies_pb2.Anomalies, schema_file: str) -> list[Finding]:
    """Every reason of every anomalous feature, explained, sorted by feature."""
    over = _over_threshold(anomalies)
    findings = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        for reason in info.reason:
            kind = "schema"
            if reason.type in COMPARATOR_REASONS:
                queue = over[feature, _MEASURED_BY[reason.type]]
                # Every comparator anomaly has its measurement; "skew" if TFDV
                # ever recorded one without it.
                kind = queue.popleft() if queue else "skew"
            findings.append(_finding(feature, reason, kind, schema_file))
    if anomalies.HasField("dataset_anomaly_info"):
        for reason in anomalies.dataset_anomaly_info.reason:
            findings.append(_finding("(dataset)", reason, "schema", schema_file))
    return findings


def _over_threshold(anomalies: anomalies_pb2.Anomalies
                    ) -> collections.defaultdict[tuple[str, int], collections.deque]:
    """(feature, measurement type) -> "skew"/"drift" for each measurement above its
    threshold, in the order ``validate_split`` merged their anomalies (the skew
    comparison first, then the drift comparison)."""
    over = collections.defaultdict(collections.deque)
    for info in anomalies.drift_skew_info:
        feature = ".".join(info.path.step)
        for kind, measurements in (("skew", info.skew_measurements),
                                   ("drift", info.drift_measurements)):
            for m in measurements:
                if m.value > m.threshold:
                    over[feature, m.type].append(kind)
    return over


def _finding(feature: str, reason: anomalies_pb2.AnomalyInfo.Reason, kind: str,
             schema_file: str) -> Finding:
    measured = " ".join(reason.description.split()).rstrip(".") + "."
    return Finding(feature, kind, measured, _fix(feature, reason.type, kind, schema_file))


def _fix(feature: str, reason: int, kind: str, schema_file: str) -> str:
    if kind != "schema":
        return (
            f"Look for a change in how `{feature}` is produced (a new source, a filter, a "
            f"unit, a default); if the change is real and expected, retrain on recent data. "
            f"Raise the threshold in `{schema_file}` only if `python -m pipelines "
            f"suggest-thresholds` measures such values between random halves of the data.")
    if reason == _Type.ENUM_TYPE_UNEXPECTED_STRING_VALUES:
        return (
            f"Add the values to `{feature}`'s domain in `{schema_file}` if they are "
            f"legitimate; otherwise fix the data source.")
    if reason in (_Type.INT_TYPE_BIG_INT, _Type.INT_TYPE_SMALL_INT, _Type.FLOAT_TYPE_BIG_FLOAT,
                  _Type.FLOAT_TYPE_SMALL_FLOAT):
        return (
            f"Widen `{feature}`'s int_domain/float_domain in `{schema_file}` if these "
            f"values are valid; otherwise fix the data source.")
    if reason in (_Type.FEATURE_TYPE_LOW_FRACTION_PRESENT, _Type.FEATURE_TYPE_LOW_NUMBER_PRESENT,
                  _Type.FEATURE_TYPE_NOT_PRESENT, _Type.SCHEMA_MISSING_COLUMN):
        return (
            f"If `{feature}` may legitimately be missing, lower its presence.min_fraction "
            f"and drop its shape in `{schema_file}` (its transform must then impute it); "
            f"otherwise fix the export that lost it.")
    if reason == _Type.SCHEMA_NEW_COLUMN:
        return (
            f"Add `{feature}` to `{schema_file}` (run `python -m pipelines infer-schema` for "
            f"a starting point) or drop the column from the input.")
    if reason in (_Type.FEATURE_TYPE_LOW_NUMBER_VALUES, _Type.FEATURE_TYPE_HIGH_NUMBER_VALUES):
        return (
            f"Rows carry a different number of `{feature}` values than `{schema_file}` "
            f"allows (value_count/shape): fix the source or the schema.")
    name = _Type.Type.Name(reason)
    if name.startswith(("INT_TYPE", "FLOAT_TYPE", "STRING_TYPE", "BOOL_TYPE", "ENUM_TYPE")):
        return (
            f"`{feature}` has values of another type than `{schema_file}` declares: fix the "
            f"source, or change the feature's type in the schema and its transform.")
    return f"See TFDV's anomaly type {name} and `{schema_file}`."


def anomaly_descriptions(findings: list[Finding]) -> dict[str, str]:
    """Feature name -> one line: what is wrong with it and the likely fix."""
    texts: dict[str, list[str]] = {}
    fixes: dict[str, list[str]] = {}
    for finding in findings:
        texts.setdefault(finding.feature, []).append(finding.text)
        if finding.fix not in fixes.setdefault(finding.feature, []):
            fixes[finding.feature].append(finding.fix)
    return {feature: " ".join(texts[feature] + fixes[feature]) for feature in texts}
