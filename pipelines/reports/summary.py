"""The run's record as it is made at the end of a run (``build_record``,
``with_timing``), and the table printed then (``format_report``); the record
itself, and ``run_summary.json``, are ``pipelines.records.run_record``'s.

Row counts and per-stage seconds are read from the finished pipeline by
``pipelines.stages.counters``; time the runner spends between stages
(shuffles, encoding) is reported as ``unattributed``.
"""

import dataclasses
import resource

from pipelines import layout
from pipelines.records.run_record import (
    Inputs,
    InstanceSelection,
    Rows,
    RunRecord,
    Seconds,
    StageTime,
)
from pipelines.reports.anomalies import Validated, describe_comparisons

__all__ = ["build_record", "format_report", "with_timing"]


def build_record(*, dataset: str, schema_file: str, inputs: Inputs, eval_fraction: float,
                 limit: int | None, output_dir: str, rows: Rows,
                 rejected_by_reason: dict[str, int], stage_times: dict | None,
                 validated: dict[str, Validated], serving_without: list[str] = (),
                 duplicates: dict[str, int] | None = None,
                 instance_selection: InstanceSelection | None = None) -> RunRecord:
    """The run's record, but for its timing (``with_timing``).

    ``rows`` accounts for every row read: read = train + eval + serving +
    rejected + duplicates_dropped; ``oversampled`` counts the extra training
    records written (the train split's records are train + oversampled).
    ``duplicates`` counts the rows repeating an earlier row of the same input.
    """
    stage_rows = {"read": rows.read, "analyze": rows.train}
    split_rows = rows.train + rows.eval + rows.serving
    stages = {}
    for stage, seconds in (stage_times or {}).items():
        handled = stage_rows.get(stage, split_rows)
        stages[stage] = StageTime(round(seconds, 3),
                                  round(handled / seconds) if seconds > 0 else None)
    return RunRecord(
        dataset=dataset, schema_file=schema_file, inputs=inputs, eval_fraction=eval_fraction,
        limit=limit, output_dir=output_dir, rows=rows, duplicates=duplicates or {},
        instance_selection=instance_selection or InstanceSelection(),
        rejected_by_reason=rejected_by_reason, stages=stages,
        peak_rss_mb=round(_peak_rss_mb(), 1),
        anomalies={split: v.descriptions() for split, v in validated.items()},
        skew=(validated[layout.SERVING].comparisons("skew") if layout.SERVING in validated
              else {}),
        warnings=_warnings(rows, eval_fraction),
        # The outputs missing from the serving split's records: serving data
        # without the label's inputs has no label.
        serving_without=list(serving_without))


def with_timing(record: RunRecord, *, startup: float, build: float, run: float,
                summary: float) -> RunRecord:
    """``record`` with wall-clock seconds: start-up (imports), pipeline
    construction (TFT traces the preprocessing_fn here), the run itself and the
    summary stage."""
    stages = dict(record.stages)
    if stages:
        stages["summary"] = StageTime(round(summary, 3),
                                      round(record.rows.read / summary) if summary else None)
    executed = sum(v.seconds for k, v in stages.items() if k != "summary")
    seconds = Seconds(
        startup=round(startup, 3), build=round(build, 3), run=round(run, 3),
        unattributed=round(run - executed, 3) if stages else None,
        summary=round(summary, 3), total=round(startup + build + run + summary, 3))
    return dataclasses.replace(record, stages=stages, seconds=seconds)


def _warnings(rows: Rows, eval_fraction: float) -> list[str]:
    """What a person should know before using the outputs. (An empty training
    split is not a warning: the run fails on it.)"""
    if rows.eval:
        return []
    return [f"the eval split is empty: none of the {rows.train:,} training rows fell into "
            f"the {eval_fraction:.0%} held out; with this few rows, evaluate on other data"]


def format_report(record: RunRecord) -> str:
    """The record as a person reads it at the end of a run: a table of rows and
    anomalies per split, then skew, timing and where the outputs are."""
    rows = record.rows
    lines = ["", f"{'split':<10}{'rows':>12}  anomalies"]
    for split in layout.SPLITS:
        if split not in record.anomalies:
            continue
        found = record.anomalies[split]
        listed = f"{len(found)}: {', '.join(found)}" if found else "none"
        lines.append(f"{split:<10}{rows.of(split):>12,}  {listed}")
    kinds = ", ".join(f"{k} {n:,}" for k, n in record.rejected_by_reason.items())
    lines.append(f"{'rejected':<10}{rows.rejected:>12,}" + (f"  {kinds}" if kinds else ""))
    if any(record.duplicates.values()) or rows.duplicates_dropped:
        inputs = ", ".join(f"{n:,} in the {name.replace('_', ' ')}"
                           for name, n in record.duplicates.items())
        lines.append(f"{'dropped':<10}{rows.duplicates_dropped:>12,}  duplicates found: "
                     f"{inputs}")
    lines.append(f"{'read':<10}{rows.read:>12,}")
    if rows.oversampled:
        lines.append(f"oversampled: {rows.oversampled:,} extra training records "
                     f"({rows.train + rows.oversampled:,} written)")
    if record.skew:
        lines.append(describe_comparisons("skew", record.skew))
    lines += [f"warning: {warning}" for warning in record.warnings]
    if record.seconds is not None:
        timing = record.seconds
        lines.append(f"seconds: total {timing.total:.1f} (start-up {timing.startup:.1f}, "
                     f"build {timing.build:.1f}, run {timing.run:.1f})")
    lines.append(f"outputs: {record.output_dir} (run_summary.json, report.html)")
    return "\n".join(lines)


def _peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0  # ru_maxrss is in KiB on Linux
