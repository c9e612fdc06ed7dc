"""``validation_summary.json``: the history of a run's validations, one typed
``Validation`` per span; this module is the only one that reads or writes it.

Its first entry is the run's own serving split (span ``run``); ``validate``
appends one entry per span, or replaces the entry of a span validated again.
Each entry says where the rows came from, how many were read and rejected (and
why), whether anything is out of bounds, and every anomaly, skew and drift
metric. A span of ``validate`` is ok only when it has no anomaly and every row it
read was validated: a rejected row, or a column its files lack, is out of bounds
too, and a span with more rejected rows than ``--max_rejected_fraction`` allows
is recorded as failed (``failed`` says why) and never ok.
"""

import dataclasses
import datetime
import os
from typing import Any

import tensorflow as tf

from pipelines import layout
from pipelines.records.json_files import read_json, write_json
from pipelines.reports.anomalies import Validated, describe_comparisons
from pipelines.reports.rejections import Rejections
from pipelines.reports.row_skew import RowSkewResult

__all__ = ["Validation", "format_entry", "load", "record"]


@dataclasses.dataclass(frozen=True)
class Validation:
    """One span's validation, as ``validation_summary.json`` lists it.

    Attributes:
      span: the span's name (``run`` for the run's own serving split).
      input: where its rows came from.
      validated_at: when, in UTC (ISO 8601).
      rows, rejected: the rows validated, and those rejected.
      ok: whether nothing is out of bounds.
      anomalies: feature -> what is wrong.
      skew, drift: feature -> metric, value, threshold, ok.
      stats: the span's statistics file.
      previous_stats: the former span's statistics it was compared with, if any.
      read: the rows read (validated, rejected or dropped as duplicates).
      rejected_by_kind: the rejected rows by kind (``wrong_field_count``, ...).
      rejections: the rejected rows in one line, with an example and where they are.
      missing_columns: column -> the file whose header lacks it (read as missing).
      failed: why the span could not be validated (too many rows rejected), if so.
      row_skew: with ``validate --paired``, the row-by-row comparison of the
        logged features with the pipeline's computation of the paired raw rows
        (``row_skew.json``'s document), and ``threshold``, the mismatch share a
        feature may reach and the span stay ok.
    """

    span: str
    input: str | None
    validated_at: str
    rows: int
    rejected: int
    ok: bool
    anomalies: dict[str, str]
    skew: dict[str, dict[str, Any]]
    drift: dict[str, dict[str, Any]]
    stats: str | None = None
    previous_stats: str | None = None
    read: int | None = None
    rejected_by_kind: dict[str, int] = dataclasses.field(default_factory=dict)
    rejections: str | None = None
    missing_columns: dict[str, str] = dataclasses.field(default_factory=dict)
    failed: str | None = None
    row_skew: dict[str, Any] | None = None

    @classmethod
    def of(cls, span: str, source: str | None, validated: Validated, rows: int,
           rejected: int, *, stats: str, previous_stats: str | None,
           read: int | None = None, rejections: Rejections | None = None,
           missing_columns: dict[str, str] | None = None,
           failed: str | None = None, row_skew: dict[str, Any] | None = None
           ) -> "Validation":
        """The validation of one span, as validated now. With ``rejections``
        (``validate``'s spans), a rejected row makes it not ok, as does a
        column in ``missing_columns`` or a feature of ``row_skew`` over its
        threshold; a ``failed`` span is never ok."""
        counted = rejections.total if rejections is not None else 0
        missing = dict(missing_columns or {})
        return cls(
            span=span, input=source,
            validated_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            rows=rows, rejected=rejected,
            ok=(validated.ok and not counted and not missing and failed is None
                and not _row_skew_over(row_skew)),
            anomalies=validated.descriptions(), skew=validated.comparisons("skew"),
            drift=validated.comparisons("drift"), stats=stats, previous_stats=previous_stats,
            read=read, rejected_by_kind=dict(rejections.by_kind) if rejections else {},
            rejections=rejections.describe(read or 0) if counted else None,
            missing_columns=missing, failed=failed, row_skew=row_skew)

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> "Validation":
        """An entry as validation_summary.json holds it (older entries lack the
        later fields: they take their defaults)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in entry.items() if k in known})

    def row_skew_over(self, share: float | None) -> list[str]:
        """The features whose row-by-row mismatch share exceeds ``share`` (none
        when ``share`` is None or nothing was paired)."""
        if share is None or not self.row_skew:
            return []
        return [f["feature"] for f in self.row_skew["features"] if f["mismatch_share"] > share]

    @property
    def status(self) -> str:
        """``ok``, ``failed`` (not validated: too many rows rejected) or
        ``not ok``."""
        return "failed" if self.failed else "ok" if self.ok else "not ok"

    def problems(self) -> list[str]:
        """What makes the span not ok, one short phrase each."""
        found = []
        if self.failed:
            found.append("too many rows rejected to validate it")
        elif self.rejected_by_kind:
            count = sum(self.rejected_by_kind.values())
            found.append(f"{count:,} rejected row{'s' if count != 1 else ''}")
        if self.missing_columns:
            found.append(f"missing column{'s' if len(self.missing_columns) != 1 else ''} "
                         f"{', '.join(self.missing_columns)}")
        if self.anomalies:
            found.append(f"anomalies in {len(self.anomalies)} features")
        for kind, table in (("skew", self.skew), ("drift", self.drift)):
            over = [f for f, m in table.items() if m.get("ok") is False]
            if over:
                found.append(f"{kind} over threshold in {', '.join(over)}")
        over = _row_skew_over(self.row_skew)
        if over:
            found.append(f"row-by-row skew over {self.row_skew['threshold']:.2%} in "
                         f"{', '.join(over)}")
        return found


def _row_skew_over(row_skew: dict[str, Any] | None) -> list[str]:
    """The features over the row-by-row comparison's own threshold."""
    if not row_skew:
        return []
    return [f["feature"] for f in row_skew["features"]
            if f["mismatch_share"] > row_skew["threshold"]]


def load(run_dir: str) -> list[Validation]:
    """Every entry of the run's validation_summary.json, oldest first (none
    before the run has written it)."""
    path = os.path.join(run_dir, layout.VALIDATION_SUMMARY)
    if not tf.io.gfile.exists(path):
        return []
    return [Validation.from_json(e) for e in read_json(path)["validations"]]


def record(run_dir: str, dataset: str, validation: Validation) -> None:
    """Appends (or, for the same span, replaces) an entry of validation_summary.json."""
    path = os.path.join(run_dir, layout.VALIDATION_SUMMARY)
    document = {"dataset": dataset, "validations": []}
    if tf.io.gfile.exists(path):
        document = read_json(path)
    document["validations"] = [e for e in document["validations"]
                               if e["span"] != validation.span] + [
        dataclasses.asdict(validation)]
    write_json(path, document)


def format_entry(validation: Validation, report_path: str) -> str:
    """The entry as ``validate`` prints it: rows, anomalies, skew and drift."""
    found = (f"anomalies in {len(validation.anomalies)} features" if validation.anomalies
             else "no anomalies")
    lines = ["", f"span {validation.span}: {validation.rows:,} rows, "
                 f"{validation.rejected:,} rejected, {found}"]
    if validation.rejections:
        lines.append(f"rejected: {validation.rejections}")
    lines += [f"  {column}: missing: the header of {source} does not name it, so it was "
              f"read as missing in every row." for column, source
              in validation.missing_columns.items()]
    # The first sentence says what is wrong; the fixes are in the report.
    lines += [f"  {feature}: {text.split('. ')[0].rstrip('.')}."
              for feature, text in validation.anomalies.items()]
    for kind, table in (("skew", validation.skew), ("drift", validation.drift)):
        if table:
            lines.append(describe_comparisons(kind, table))
    if validation.row_skew:
        paired = validation.row_skew
        lines.append(f"row-by-row skew against the pipeline's computation of "
                     f"{paired['base']['input']} ({paired['base']['rows']:,} rows, "
                     f"{paired['base']['rejected']:,} rejected):")
        lines += [f"  {line}" for line in RowSkewResult.from_json(paired).describe(
            "pipeline", "serving")]
    problems = validation.problems()
    verdict = f"verdict: {validation.status}" + (f" ({'; '.join(problems)})"
                                                 if problems else "")
    for kind, table in (("skew", validation.skew), ("drift", validation.drift)):
        unjudged = [f for f, m in table.items() if m.get("ok", True) is None]
        if unjudged:
            verdict += f"; {kind} not judged for {len(unjudged)} of {len(table)} features"
    lines.append(verdict)
    lines.append(f"report: {report_path}")
    return "\n".join(lines)
