"""``validation_summary.json``: the history of a run's validations, one typed
``Validation`` per span; this module is the only one that reads or writes it.

Its first entry is the run's own serving split (span ``run``); ``validate``
appends one entry per span, or replaces the entry of a span validated again.
Each entry says where the rows came from, how many were read and rejected,
whether anything is out of bounds, and every anomaly, skew and drift metric.
"""

import dataclasses
import datetime
import os
from typing import Any

import tensorflow as tf

from pipelines import layout
from pipelines.records.json_files import read_json, write_json
from pipelines.reports.anomalies import Validated

__all__ = ["Validation", "format_entry", "record"]


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

    @classmethod
    def of(cls, span: str, source: str | None, validated: Validated, rows: int,
           rejected: int, *, stats: str, previous_stats: str | None) -> "Validation":
        """The validation of one span, as validated now."""
        return cls(
            span=span, input=source,
            validated_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            rows=rows, rejected=rejected, ok=validated.ok,
            anomalies=validated.descriptions(), skew=validated.comparisons("skew"),
            drift=validated.comparisons("drift"), stats=stats, previous_stats=previous_stats)


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
    # The first sentence says what is wrong; the fixes are in the report.
    lines += [f"  {feature}: {text.split('. ')[0].rstrip('.')}."
              for feature, text in validation.anomalies.items()]
    for kind, table in (("skew", validation.skew), ("drift", validation.drift)):
        if table:
            over = [f for f, m in table.items() if not m["ok"]]
            lines.append(f"{kind}: {len(table) - len(over)} of {len(table)} features within "
                         f"threshold" + (f"; over: {', '.join(over)}" if over else ""))
    lines.append(f"report: {report_path}")
    return "\n".join(lines)
