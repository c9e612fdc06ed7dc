"""Benchmark: the cost per feature of the zero-code ``run`` (issue 28, width).

Writes deterministic synthetic CSVs of 2,000 rows at 10, 25, 50 and 100
columns (60% numbers, 40% text; the same ``--seed`` gives the same bytes) and
runs ``python -m pipelines run --train_input F --label label --output_dir D``
on each in a fresh interpreter, as a user would, ``--repeats`` times, one width
after the other. Prints the wall seconds per width (the best of the repeats and
their spread), the ratio of 100 to 10 columns (issue 28's goal: at most 1.5x),
the seconds per added feature (the least-squares slope over the widths) and,
for the narrowest and widest file, the timing the run itself records
(``run_summary.json``: start-up, build, run, summary; each stage)::

    .venv/bin/python benchmarks/width.py [--repeats 2] [--widths 10,25,50,100]
        [--work DIR] [--profile]

With ``--profile``, the narrowest and widest runs are also run once under
cProfile (the program as ``python -m pipelines`` runs it, in a fresh interpreter)
and their cumulative seconds attributed to the parts that may grow per
feature: drafting (type inference, thresholds), pipeline construction (TFT
tracing), the pipeline run (TFDV statistics, TFT analyzers), noise measurement,
report writing. cProfile slows Python code by about 1.5-2x, so these seconds
are for comparing parts and widths, not for the wall-clock table.

Columns: ``num_00``... are numbers (normal, log-normal, small whole numbers and
uniform in turn; about 2% of each missing); ``txt_00``... are tokens drawn from
vocabularies of 4, 12, 30, 80 and 300 values in turn (the last is hashed by
``init``'s recipe, the others get a vocabulary); ``label`` is 0/1, the last of
the numeric columns, set from two features so a model has something to find.
The row width counts every column, the label included: 100 columns are 59
numeric features, the label and 40 text features.
"""

import argparse
import csv
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = 2_000
NUMERIC_SHARE = 0.6
TEXT_CARDINALITIES = (4, 12, 30, 80, 300)
MISSING_SHARE = 0.02
LABEL = "label"

# The functions whose cumulative time is each part of a run: (file suffix,
# function, its first line or None for any). A part is the sum of its
# functions' cumulative seconds; none of them calls another of the same part.
_IMPL = "tensorflow_transform/beam/impl.py"
_PARTS = {
    "start-up: importing the stack (process.import_the_stack)": [
        ("pipelines/process.py", "import_the_stack", None)],
    "drafting, whole (init.init_dataset)": [("pipelines/commands/init.py", "init_dataset", None)],
    "of it: type inference (infer_schema.infer)": [
        ("pipelines/commands/infer_schema.py", "infer", None)],
    "of it: thresholds (draft_comparators)": [
        ("pipelines/commands/suggest_thresholds.py", "draft_comparators", None)],
    "pipeline construction (build_pipeline)": [
        ("pipelines/pipeline/run.py", "build_pipeline", None)],
    "of it: TFT analysis graph (AnalyzeDataset.expand)": [(_IMPL, "expand", 1022)],
    "of it: TFT transform (TransformDataset.expand)": [(_IMPL, "expand", 1492)],
    "of it: TFT tracing (trace_preprocessing_function)": [
        ("tensorflow_transform/impl_helper.py", "trace_preprocessing_function", None)],
    "pipeline run (execute)": [("pipelines/pipeline/execute.py", "execute", None)],
    "of it: TFT writing its SavedModels (_create_v2_saved_model)": [
        (_IMPL, "_create_v2_saved_model", None)],
    "of it: TFT loading them in its DoFns (_make_graph_state)": [
        (_IMPL, "_make_graph_state", None)],
    "noise measurement (noise.measure)": [("pipelines/stages/noise.py", "measure", None)],
    "reading the run back (anomalies.load_run)": [
        ("pipelines/reports/anomalies.py", "load_run", None)],
    "report (html.write_report)": [("pipelines/reports/html.py", "write_report", None)],
    "TFDV statistics in memory (drafting and noise)": [
        ("tensorflow_data_validation/statistics/stats_impl.py",
         "generate_statistics_in_memory", None)],
    "of it: the equal-width histogram (tfdv_speedups)": [
        ("pipelines/tfdv_speedups.py", "_equi_width_histogram", None)],
}
_TFDV_SELF = "TFDV's own code, self time, everywhere"


def columns_at(width: int) -> tuple[list[str], list[str]]:
    """The numeric (label last) and text column names of a file ``width`` wide."""
    numeric = round(NUMERIC_SHARE * width)
    return ([f"num_{i:02d}" for i in range(numeric - 1)] + [LABEL],
            [f"txt_{i:02d}" for i in range(width - numeric)])


def generate(path: str, width: int, seed: int = 28, rows: int = ROWS) -> str:
    """Writes the synthetic CSV ``width`` columns wide at ``path``; returns ``path``.

    Each column draws from its own generator (seeded by ``seed`` and its
    position), so a column is the same at every width that has it."""
    numeric, text = columns_at(width)
    values: dict[str, list[str]] = {}
    for i, name in enumerate(numeric[:-1]):
        rng = np.random.default_rng([seed, 0, i])
        kind = i % 4
        if kind == 0:
            column = [f"{v:.4f}" for v in rng.normal(50 + i, 10, rows)]
        elif kind == 1:
            column = [f"{v:.2f}" for v in rng.lognormal(2, 1, rows)]
        elif kind == 2:
            column = [str(v) for v in rng.integers(0, 10, rows)]
        else:
            column = [f"{v:.3f}" for v in rng.uniform(-1, 1, rows)]
        missing = rng.random(rows) < MISSING_SHARE
        values[name] = ["" if m else v for v, m in zip(column, missing, strict=True)]
    for i, name in enumerate(text):
        rng = np.random.default_rng([seed, 1, i])
        cardinality = TEXT_CARDINALITIES[i % len(TEXT_CARDINALITIES)]
        # Zipf-like frequencies, as categories are.
        weights = 1 / np.arange(1, cardinality + 1)
        drawn = rng.choice(cardinality, rows, p=weights / weights.sum())
        missing = rng.random(rows) < MISSING_SHARE
        values[name] = ["" if m else f"{name}_v{v}" for v, m in zip(drawn, missing, strict=True)]
    rng = np.random.default_rng([seed, 2])
    # The label depends on the first numeric feature and, where present, the first text one.
    signal = (np.array([float(v or 50) for v in values[numeric[0]]]) - 50) / 10
    if text:
        signal += np.array([0.8 if v.endswith("_v0") else 0.0 for v in values[text[0]]])
    values[LABEL] = [str(int(v)) for v in rng.random(rows) < 1 / (1 + np.exp(-signal))]
    header = numeric + text
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(zip(*(values[name] for name in header), strict=True))
    return path


def _command(train: str, output_dir: str) -> list[str]:
    return ["-m", "pipelines", "run", "--train_input", train, "--label", LABEL,
            "--output_dir", output_dir, "--overwrite"]


def run_once(train: str, output_dir: str) -> dict:
    """One zero-code run in a fresh interpreter: its wall seconds and its summary."""
    started = time.monotonic()
    subprocess.run([sys.executable, *_command(train, output_dir)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    with open(os.path.join(output_dir, "run_summary.json")) as f:
        return {"seconds": seconds, "summary": json.load(f)}


# The program as ``pipelines.__main__.console`` runs it, under cProfile; the
# profile is dumped before the program ends (it ends with ``os._exit``, which
# ``python -m cProfile`` would not see).
_PROFILED = """
import cProfile, sys
sys.path.insert(0, {root!r})
profiler = cProfile.Profile()
profiler.enable()
from pipelines import process
process.become_the_program()
from pipelines.cli import main
code = main({argv!r})
profiler.disable()
profiler.dump_stats({profile!r})
process.exit_now(code or 0)
"""


def profile_once(train: str, output_dir: str, profile: str) -> dict[str, float]:
    """One zero-code run under cProfile in a fresh interpreter; the cumulative
    seconds of each part of ``_PARTS``."""
    argv = _command(train, output_dir)[2:]  # without "-m pipelines"
    subprocess.run([sys.executable, "-c", _PROFILED.format(root=ROOT, argv=argv,
                                                           profile=profile)],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return attribute(profile)


def attribute(profile: str) -> dict[str, float]:
    """The cumulative seconds of each part of ``_PARTS`` in a cProfile dump,
    the self time of TFDV's code wherever it runs, and the whole run."""
    stats = pstats.Stats(profile).stats  # (file, line, function) -> (cc, nc, tt, ct, callers)
    parts = {}
    for part, functions in _PARTS.items():
        parts[part] = sum(ct for (file, line, function), (_, _, _, ct, _) in stats.items()
                          if any(file.endswith(suffix) and function == name
                                 and first in (None, line) for suffix, name, first in functions))
    parts[_TFDV_SELF] = sum(tt for (file, _, _), (_, _, tt, _, _) in stats.items()
                            if "tensorflow_data_validation" in file)
    parts["whole run"] = max(ct for (_, _, _, ct, _) in stats.values())
    return parts


def least_squares_slope(xs: list[float], ys: list[float]) -> float:
    """The slope of the least-squares line through the points."""
    return float(np.polyfit(xs, ys, 1)[0])


def _stage_lines(width: int, result: dict) -> list[str]:
    seconds = result["summary"]["seconds"]
    lines = [f"{width} columns: total {seconds['total']:.1f} s (start-up {seconds['startup']:.1f}, "
             f"build {seconds['build']:.1f}, run {seconds['run']:.1f}, of it not attributed "
             f"to a stage {seconds['unattributed']:.1f}; summary {seconds['summary']:.1f})"]
    lines += [f"  {stage:<22}{figures['seconds']:>8.2f} s"
              for stage, figures in result["summary"]["stages"].items()]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="runs per width (default 2)")
    parser.add_argument("--widths", default="10,25,50,100",
                        help="column counts, comma-separated (default 10,25,50,100)")
    parser.add_argument("--seed", type=int, default=28)
    parser.add_argument("--work", help="where the files, runs, profiles and results.json go "
                                       "(default: a temp dir, removed afterwards)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile the narrowest and widest run (cProfile)")
    args = parser.parse_args(argv)
    widths = sorted(int(w) for w in args.widths.split(","))
    work = args.work or tempfile.mkdtemp(prefix="tft-preprocessing-width-")
    os.makedirs(work, exist_ok=True)
    try:
        results: dict[int, list[dict]] = {}
        for width in widths:
            train = generate(os.path.join(work, f"width{width}.csv"), width, args.seed)
            results[width] = []
            for repeat in range(args.repeats):
                result = run_once(train, os.path.join(work, f"run{width}"))
                results[width].append(result)
                print(f"{width} columns, run {repeat + 1}: {result['seconds']:.1f} s",
                      flush=True)
        profiles = {}
        if args.profile:
            for width in (widths[0], widths[-1]):
                profiles[width] = profile_once(
                    os.path.join(work, f"width{width}.csv"), os.path.join(work, f"prof{width}"),
                    os.path.join(work, f"width{width}.prof"))
                print(f"{width} columns profiled", flush=True)
        with open(os.path.join(work, "results.json"), "w") as f:
            json.dump({"runs": results, "profiles": profiles}, f)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print("\n".join(report(results, profiles)))


def report(results: dict[int, list[dict]], profiles: dict[int, dict[str, float]]) -> list[str]:
    """What the benchmark prints: the table, the ratio, the slope, the stages
    of the narrowest and widest runs and, if profiled, their parts."""
    widths = sorted(results)
    best = {w: min(r["seconds"] for r in results[w]) for w in widths}
    lines = ["", "| columns | features | best s | runs s | spread |",
             "|---:|---:|---:|---|---:|"]
    for width in widths:
        runs = [r["seconds"] for r in results[width]]
        spread = (max(runs) - min(runs)) / min(runs)
        lines.append(f"| {width} | {width - 1} | {best[width]:.1f} | "
                     f"{', '.join(f'{s:.1f}' for s in runs)} | {spread:.0%} |")
    lines.append("")
    narrow, wide = widths[0], widths[-1]
    lines.append(f"ratio {wide}/{narrow} columns: {best[wide] / best[narrow]:.2f}x "
                 f"(goal <= 1.5x)")
    if len(widths) > 1:
        slope = least_squares_slope(widths, [best[w] for w in widths])
        median = statistics.median(best.values())
        lines.append(f"seconds per added feature: {slope:.3f} (least squares over "
                     f"{', '.join(map(str, widths))} columns, best of each; median run "
                     f"{median:.1f} s)")
    lines.append("")
    lines.append("The run's own timing (run_summary.json), best run:")
    for width in (narrow, wide):
        fastest = min(results[width], key=lambda r: r["seconds"])
        lines += _stage_lines(width, fastest)
    if profiles:
        lines += ["", "Profile (cProfile cumulative seconds, one run each):", "",
                  "| part | " + " | ".join(f"{w} columns" for w in profiles) + " |",
                  "|---|" + "---:|" * len(profiles)]
        for part in next(iter(profiles.values())):
            lines.append(f"| {part} | " + " | ".join(f"{p[part]:.1f}"
                                                     for p in profiles.values()) + " |")
    return lines


if __name__ == "__main__":
    main()
