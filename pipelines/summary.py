"""The run summary: rows per split, time per stage, anomalies and skew.

Row counts come from the pipeline's counters. Per-stage seconds come from Beam's
execution-time sampling (``ptransform_execution_time``), summed over every
transform under a stage's top-level label; runners that do not report it (a
remote runner, say) leave them out. Time the runner spends between stages
(shuffles, encoding) is reported as ``unattributed``.
"""

import json
import os
import resource

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter

from pipelines import metrics, validation

__all__ = [
    "ROW_COUNTS", "add_timing", "build_summary", "counter_totals", "format_report",
    "rejected_by_kind", "row_counts", "stage_seconds", "write_json",
]

ROW_COUNTS = ("read", "train", "eval", "serving", "rejected")
_EXECUTION_TIME = "metric:ptransform_execution_time:total_msecs:v1"  # namespace "beam"


def counter_totals(result: beam.runners.runner.PipelineResult) -> dict[str, int]:
    """This package's counters by name, summed over the steps that incremented them."""
    totals: dict[str, int] = {}
    for counter in result.metrics().query(
            MetricsFilter().with_namespace(metrics.NAMESPACE))["counters"]:
        name = counter.key.metric.name
        totals[name] = totals.get(name, 0) + (counter.committed or counter.attempted or 0)
    return totals


def row_counts(result: beam.runners.runner.PipelineResult) -> dict[str, int]:
    """Committed values of the ``rows_*`` counters, zero when never incremented."""
    totals = counter_totals(result)
    return {name: totals.get(f"rows_{name}", 0) for name in ROW_COUNTS}


def stage_seconds(result, stage_labels: dict[str, str]) -> dict[str, float] | None:
    """Seconds of execution time per stage, or None if the runner has no such metric."""
    monitoring = getattr(result, "monitoring_metrics", None)
    if monitoring is None:
        return None
    seconds = dict.fromkeys(stage_labels.values(), 0.0)
    for counter in monitoring().query()["counters"]:
        if counter.key.metric.name != _EXECUTION_TIME or not counter.key.step:
            continue
        stage = stage_labels.get(counter.key.step.split("/", 1)[0])
        if stage:
            seconds[stage] += (counter.committed or 0) / 1000.0
    return seconds


def rejected_by_kind(result) -> dict[str, int]:
    """Rejected rows per kind (``wrong_field_count``, ``unparsable``, ...)."""
    return {name.removeprefix(metrics.REJECTED_PREFIX): count
            for name, count in sorted(counter_totals(result).items())
            if name.startswith(metrics.REJECTED_PREFIX)}


def build_summary(*, dataset: str, schema_file: str, inputs: dict, eval_fraction: float,
                  limit: int | None, output_dir: str, rows: dict,
                  rejected_by_reason: dict[str, int], stage_times: dict | None,
                  splits: list[str]) -> dict:
    """The ``run_summary.json`` document, but for its timing (``add_timing``)."""
    stage_rows = {
        "read": rows["read"],
        "analyze": rows["train"],
    }
    split_rows = rows["train"] + rows["eval"] + rows["serving"]
    stages = {}
    for stage, seconds in (stage_times or {}).items():
        handled = stage_rows.get(stage, split_rows)
        stages[stage] = {
            "seconds": round(seconds, 3),
            "rows_per_s": round(handled / seconds) if seconds > 0 else None,
        }
    anomalies_dir = os.path.join(output_dir, "anomalies")
    anomalies = {split: validation.load_anomalies(
        os.path.join(anomalies_dir, f"{split}.pbtxt")) for split in splits}
    return {
        "dataset": dataset,
        "schema_file": schema_file,
        "inputs": inputs,
        "eval_fraction": eval_fraction,
        "limit": limit,
        "output_dir": output_dir,
        "rows": rows,
        "rejected_by_reason": rejected_by_reason,
        "stages": stages,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "anomalies": {s: validation.anomaly_descriptions(a, schema_file)
                      for s, a in anomalies.items()},
        "skew": validation.comparisons(anomalies["serving"], "skew")
        if "serving" in anomalies else {},
    }


def add_timing(document: dict, *, startup: float, build: float, run: float,
               summary: float) -> None:
    """Adds wall-clock seconds: start-up (imports), pipeline construction (TFT
    traces the preprocessing_fn here), the run itself and the summary stage."""
    stages = document["stages"]
    if stages:
        stages["summary"] = {
            "seconds": round(summary, 3),
            "rows_per_s": round(document["rows"]["read"] / summary) if summary else None,
        }
    executed = sum(v["seconds"] for k, v in stages.items() if k != "summary")
    document["seconds"] = {
        "startup": round(startup, 3),
        "build": round(build, 3),
        "run": round(run, 3),
        "unattributed": round(run - executed, 3) if stages else None,
        "summary": round(summary, 3),
        "total": round(startup + build + run + summary, 3),
    }


def format_report(document: dict) -> str:
    """The summary as a person reads it at the end of a run: a table of rows and
    anomalies per split, then skew, timing and where the outputs are."""
    rows, anomalies = document["rows"], document["anomalies"]
    lines = ["", f"{'split':<10}{'rows':>12}  anomalies"]
    for split in ("train", "eval", "serving"):
        if split not in anomalies:
            continue
        found = anomalies[split]
        listed = f"{len(found)}: {', '.join(found)}" if found else "none"
        lines.append(f"{split:<10}{rows[split]:>12,}  {listed}")
    kinds = ", ".join(f"{k} {n:,}" for k, n in document["rejected_by_reason"].items())
    lines.append(f"{'rejected':<10}{rows['rejected']:>12,}" + (f"  {kinds}" if kinds else ""))
    lines.append(f"{'read':<10}{rows['read']:>12,}")
    skew = document["skew"]
    if skew:
        over = [f for f, m in skew.items() if not m["ok"]]
        lines.append(f"skew: {len(skew) - len(over)} of {len(skew)} features within threshold"
                     + (f"; over: {', '.join(over)}" if over else ""))
    timing = document["seconds"]
    lines.append(f"seconds: total {timing['total']:.1f} (start-up {timing['startup']:.1f}, "
                 f"build {timing['build']:.1f}, run {timing['run']:.1f})")
    lines.append(f"outputs: {document['output_dir']} (run_summary.json, report.html)")
    return "\n".join(lines)


def write_json(path: str, document: dict) -> None:
    with FileSystems.create(path) as f:
        f.write((json.dumps(document, indent=2) + "\n").encode("utf-8"))


def _peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0  # ru_maxrss is in KiB on Linux
