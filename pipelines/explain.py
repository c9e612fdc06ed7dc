"""TFDV anomalies in plain language, each with the likely fix.

TFDV's own descriptions say what it measured; a user also needs to know which
file to change, or that the data source is what changed. ``explain`` keeps
TFDV's measurement and adds that.
"""

import dataclasses

from tensorflow_metadata.proto.v0 import anomalies_pb2

__all__ = ["Finding", "explain"]

_Type = anomalies_pb2.AnomalyInfo


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem with one feature of one split."""

    feature: str
    kind: str  # "schema", "skew" or "drift"
    text: str
    fix: str

    def line(self) -> str:
        return f"{self.feature}: {self.text} {self.fix}"


def explain(anomalies: anomalies_pb2.Anomalies, schema_file: str) -> list[Finding]:
    """Every reason of every anomalous feature, explained, sorted by feature."""
    findings = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        for reason in info.reason:
            findings.append(_finding(feature, reason, schema_file))
    if anomalies.HasField("dataset_anomaly_info"):
        for reason in anomalies.dataset_anomaly_info.reason:
            findings.append(_finding("(dataset)", reason, schema_file))
    return findings


def _finding(feature: str, reason: anomalies_pb2.AnomalyInfo.Reason,
             schema_file: str) -> Finding:
    measured = " ".join(reason.description.split()).rstrip(".") + "."
    kind, fix = _kind_and_fix(feature, reason.type, measured, schema_file)
    return Finding(feature, kind, measured, fix)


def _kind_and_fix(feature: str, reason: int, measured: str, schema_file: str
                  ) -> tuple[str, str]:
    if reason in (_Type.COMPARATOR_L_INFTY_HIGH, _Type.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH,
                  _Type.COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH):
        kind = "drift" if "previous" in measured else "skew"
        return kind, (
            f"Look for a change in how `{feature}` is produced (a new source, a filter, a "
            f"unit, a default); if the change is real and expected, retrain on recent data. "
            f"Raise the threshold in `{schema_file}` only if `python -m pipelines "
            f"suggest-thresholds` measures such values between random halves of the data.")
    if reason == _Type.ENUM_TYPE_UNEXPECTED_STRING_VALUES:
        return "schema", (
            f"Add the values to `{feature}`'s domain in `{schema_file}` if they are "
            f"legitimate; otherwise fix the data source.")
    if reason in (_Type.INT_TYPE_BIG_INT, _Type.INT_TYPE_SMALL_INT, _Type.FLOAT_TYPE_BIG_FLOAT,
                  _Type.FLOAT_TYPE_SMALL_FLOAT):
        return "schema", (
            f"Widen `{feature}`'s int_domain/float_domain in `{schema_file}` if these "
            f"values are valid; otherwise fix the data source.")
    if reason in (_Type.FEATURE_TYPE_LOW_FRACTION_PRESENT, _Type.FEATURE_TYPE_LOW_NUMBER_PRESENT,
                  _Type.FEATURE_TYPE_NOT_PRESENT, _Type.SCHEMA_MISSING_COLUMN):
        return "schema", (
            f"If `{feature}` may legitimately be missing, lower its presence.min_fraction "
            f"and drop its shape in `{schema_file}` (its transform must then impute it); "
            f"otherwise fix the export that lost it.")
    if reason == _Type.SCHEMA_NEW_COLUMN:
        return "schema", (
            f"Add `{feature}` to `{schema_file}` (run `python -m pipelines infer-schema` for "
            f"a starting point) or drop the column from the input.")
    if reason in (_Type.FEATURE_TYPE_LOW_NUMBER_VALUES, _Type.FEATURE_TYPE_HIGH_NUMBER_VALUES):
        return "schema", (
            f"Rows carry a different number of `{feature}` values than `{schema_file}` "
            f"allows (value_count/shape): fix the source or the schema.")
    name = _Type.Type.Name(reason)
    if name.startswith(("INT_TYPE", "FLOAT_TYPE", "STRING_TYPE", "BOOL_TYPE", "ENUM_TYPE")):
        return "schema", (
            f"`{feature}` has values of another type than `{schema_file}` declares: fix the "
            f"source, or change the feature's type in the schema and its transform.")
    return "schema", f"See TFDV's anomaly type {name} and `{schema_file}`."
