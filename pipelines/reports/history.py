"""``validation_summary.json``: the history of a run's validations.

Its first entry is the run's own serving split (span ``run``); ``validate``
appends one entry per span, or replaces the entry of a span validated again.
Each entry says where the rows came from, how many were read and rejected,
whether anything is out of bounds, and every anomaly, skew and drift metric.
"""

import datetime
import json
import os

import tensorflow as tf

from pipelines import layout
from pipelines.reports.anomalies import Validated
from pipelines.reports.summary import write_json

__all__ = ["entry", "format_entry", "record"]


def entry(span: str, source: str | None, validated: Validated, rows: int, rejected: int,
          files: dict) -> dict:
    """One validation's record in validation_summary.json."""
    return {
        "span": span,
        "input": source,
        "validated_at": datetime.datetime.now(datetime.UTC).isoformat(
            timespec="seconds"),
        "rows": rows,
        "rejected": rejected,
        "ok": validated.ok,
        "anomalies": validated.descriptions(),
        "skew": validated.comparisons("skew"),
        "drift": validated.comparisons("drift"),
        **files,
    }


def record(run_dir: str, dataset: str, new_entry: dict) -> None:
    """Appends (or, for the same span, replaces) an entry of validation_summary.json."""
    path = os.path.join(run_dir, layout.VALIDATION_SUMMARY)
    document = {"dataset": dataset, "validations": []}
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as f:
            document = json.loads(f.read())
    document["validations"] = [e for e in document["validations"]
                               if e["span"] != new_entry["span"]] + [new_entry]
    write_json(path, document)


def format_entry(result: dict, report_path: str) -> str:
    """The entry as ``validate`` prints it: rows, anomalies, skew and drift."""
    found = (f"anomalies in {len(result['anomalies'])} features" if result["anomalies"]
             else "no anomalies")
    lines = ["", f"span {result['span']}: {result['rows']:,} rows, "
                 f"{result['rejected']:,} rejected, {found}"]
    # The first sentence says what is wrong; the fixes are in the report.
    lines += [f"  {feature}: {text.split('. ')[0].rstrip('.')}."
              for feature, text in result["anomalies"].items()]
    for kind in ("skew", "drift"):
        table = result[kind]
        if table:
            over = [f for f, m in table.items() if not m["ok"]]
            lines.append(f"{kind}: {len(table) - len(over)} of {len(table)} features within "
                         f"threshold" + (f"; over: {', '.join(over)}" if over else ""))
    lines.append(f"report: {report_path}")
    return "\n".join(lines)
