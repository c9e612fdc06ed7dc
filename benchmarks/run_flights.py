"""Benchmark: the default job on all 336,776 NYC flights 2013 rows.

Runs ``python -m pipelines run --dataset flights`` in a fresh interpreter, as
``./run_local.sh`` does, and records per-stage throughput, the fixed start-up
cost and peak memory in ``benchmarks/RESULTS.md``::

    .venv/bin/python benchmarks/run_flights.py [--output_dir DIR]
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "RESULTS.md")
SECTION = "## Default job: flights, all rows, DirectRunner"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default=os.path.join(tempfile.gettempdir(),
                                                             "tft-preprocessing-bench"))
    args = parser.parse_args()
    command = [sys.executable, "-m", "pipelines", "run", "--dataset", "flights",
               "--output_dir", args.output_dir, "--overwrite"]
    started = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True)
    wall = time.monotonic() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    with open(os.path.join(args.output_dir, "run_summary.json")) as f:
        summary = json.load(f)
    write_section(SECTION, _report(summary, wall, peak_mb))
    print(f"wrote {RESULTS}")


def _report(summary: dict, wall: float, peak_mb: float) -> str:
    rows, seconds = summary["rows"], summary["seconds"]
    fixed = seconds["startup"] + seconds["build"]
    lines = [
        SECTION, "",
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}), Python {platform.python_version()}, "
        f"with `.venv/bin/python benchmarks/run_flights.py`.",
        "",
        f"- rows: read {rows['read']:,} = train {rows['train']:,} + eval {rows['eval']:,} "
        f"+ serving {rows['serving']:,} + rejected {rows['rejected']:,}",
        f"- wall clock of the whole command: **{wall:.1f} s**, "
        f"{rows['read'] / wall:,.0f} rows/s end to end",
        f"- fixed cost: start-up (imports) {seconds['startup']:.1f} s + pipeline construction "
        f"(TFT traces the preprocessing_fn) {seconds['build']:.1f} s = {fixed:.1f} s",
        f"- pipeline run: {seconds['run']:.1f} s, {rows['read'] / seconds['run']:,.0f} rows/s "
        f"per row read; of it {seconds['unattributed']:.1f} s is not attributed to a stage "
        f"(the runner moving data between stages)",
        f"- peak memory (max RSS of the process): {peak_mb:,.0f} MiB",
        "",
        "| stage | seconds | rows/s |",
        "|---|---:|---:|",
    ]
    for stage, figures in summary["stages"].items():
        rate = figures["rows_per_s"]
        lines.append(f"| {stage} | {figures['seconds']:.2f} | "
                     f"{'-' if rate is None else f'{rate:,}'} |")
    lines += ["", "Stage seconds are Beam's sampled execution time of the stage's transforms "
              "(`run_summary.json` → `stages`); rows/s divides the rows the stage handled "
              "(analyze: train rows; read and summary: rows read; the others: all split rows) "
              "by them.", ""]
    return "\n".join(lines)


def write_section(heading: str, section: str) -> None:
    """Replaces one benchmark's section of RESULTS.md, keeping the others."""
    text = open(RESULTS).read() if os.path.exists(RESULTS) else "# Benchmark results\n\n"
    if heading in text:
        start = text.index(heading)
        end = text.find("\n## ", start + len(heading))
        rest = text[end + 1:] if end != -1 else ""
        text = text[:start] + section.rstrip("\n") + "\n" + ("\n" + rest if rest else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(RESULTS, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
