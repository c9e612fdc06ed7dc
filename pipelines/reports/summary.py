"""The run summary (``run_summary.json``): rows per split, time per stage,
anomalies and skew, and the table printed at the end of a run.

Row counts and per-stage seconds are read from the finished pipeline by
``pipelines.stages.counters``; time the runner spends between stages
(shuffles, encoding) is reported as ``unattributed``.
"""

import json
import resource

import tensorflow as tf

from pipelines.reports.anomalies import Validated

__all__ = ["add_timing", "build_summary", "format_report", "write_json"]


def build_summary(*, dataset: str, schema_file: str, inputs: dict, eval_fraction: float,
                  limit: int | None, output_dir: str, rows: dict,
                  rejected_by_reason: dict[str, int], stage_times: dict | None,
                  validated: dict[str, Validated], serving_without: list[str] = (),
                  duplicates: dict[str, int] | None = None,
                  instance_selection: dict | None = None) -> dict:
    """The ``run_summary.json`` document, but for its timing (``add_timing``).

    ``rows`` accounts for every row read: read = train + eval + serving +
    rejected + duplicates_dropped; ``oversampled`` counts the extra training
    records written (the train split's records are train + oversampled).
    ``duplicates`` counts the rows repeating an earlier row of the same input.
    """
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
    return {
        "dataset": dataset,
        "schema_file": schema_file,
        "inputs": inputs,
        "eval_fraction": eval_fraction,
        "limit": limit,
        "output_dir": output_dir,
        "rows": rows,
        "duplicates": duplicates or {},
        "instance_selection": instance_selection or {},
        "rejected_by_reason": rejected_by_reason,
        "stages": stages,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "anomalies": {split: v.descriptions() for split, v in validated.items()},
        "skew": validated["serving"].comparisons("skew") if "serving" in validated else {},
        "warnings": _warnings(rows, eval_fraction),
        # The outputs missing from the serving split's records: serving data
        # without the label's inputs has no label.
        "serving_without": list(serving_without),
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


def _warnings(rows: dict, eval_fraction: float) -> list[str]:
    """What a person should know before using the outputs. (An empty training
    split is not a warning: the run fails on it.)"""
    if rows["eval"]:
        return []
    return [f"the eval split is empty: none of the {rows['train']:,} training rows fell into "
            f"the {eval_fraction:.0%} held out; with this few rows, evaluate on other data"]


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
    found = document.get("duplicates", {})
    if any(found.values()) or rows.get("duplicates_dropped"):
        inputs = ", ".join(f"{n:,} in the {name.replace('_', ' ')}" for name, n in found.items())
        lines.append(f"{'dropped':<10}{rows['duplicates_dropped']:>12,}  duplicates found: "
                     f"{inputs}")
    lines.append(f"{'read':<10}{rows['read']:>12,}")
    if rows.get("oversampled"):
        lines.append(f"oversampled: {rows['oversampled']:,} extra training records "
                     f"({rows['train'] + rows['oversampled']:,} written)")
    skew = document["skew"]
    if skew:
        over = [f for f, m in skew.items() if not m["ok"]]
        lines.append(f"skew: {len(skew) - len(over)} of {len(skew)} features within threshold"
                     + (f"; over: {', '.join(over)}" if over else ""))
    lines += [f"warning: {warning}" for warning in document.get("warnings", [])]
    timing = document["seconds"]
    lines.append(f"seconds: total {timing['total']:.1f} (start-up {timing['startup']:.1f}, "
                 f"build {timing['build']:.1f}, run {timing['run']:.1f})")
    lines.append(f"outputs: {document['output_dir']} (run_summary.json, report.html)")
    return "\n".join(lines)


def write_json(path: str, document: dict) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(document, indent=2) + "\n")


def _peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0  # ru_maxrss is in KiB on Linux
