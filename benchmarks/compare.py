"""Benchmark: this package against TFT's own way and pandas + scikit-learn.

In one process tree, on the NYC flights 2013 data (the default job):

1. ``python -m pipelines run`` on all 336,776 rows (1x) and on the rows four
   times over (4x, 1,347,104 rows), each the faster of two runs. Per-row
   throughput is the slope between the two, (rows 4x - rows 1x) / (seconds 4x -
   seconds 1x); the fixed cost is what remains of the 1x wall clock, and is also
   measured directly as a run on 1,000 rows. Peak memory (max RSS) at both sizes.
   Then 1x again with two DirectRunner workers, as threads and as processes
   (``--direct_running_mode``, ``--direct_num_workers 2``): both cores offered
   to Beam, against the one worker of the default. And 1x and 4x without the
   window and weather features (a dataset directory written here: the flights
   schema less the features tagged ``window_feature`` and ``lookup_feature``,
   ``transforms.flights.preprocessing_fn_without_context``): what they cost.
2. The same preprocessing written as TFT's examples write it
   (``references/baselines.py``: CsvTFXIO, AnalyzeAndTransformDataset,
   WriteToTFRecord), at 1x, over the same rows, pre-split.
3. pandas + scikit-learn fitting the comparable scaling, buckets and
   vocabularies on train and applying them to every split, at 1x.

Writes its section of ``benchmarks/RESULTS.md``; scikit-learn comes with the
package (``rank-features`` uses it)::

    .venv/bin/python benchmarks/compare.py
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.run_flights import write_section  # noqa: E402
from pipelines import datasets, nycflights  # noqa: E402
from pipelines.decode.columns import added_by_pipeline  # noqa: E402
from references import baselines  # noqa: E402

SECTION = "## Throughput: this package vs. TFT's own way vs. pandas + scikit-learn"
# The child's peak is its own VmHWM: Linux keeps ru_maxrss across exec, so
# getrusage would report this process's peak (the baseline's split) instead.
_CHILD = """
import json, re, sys, time
sys.path.insert(0, {root!r})
started = time.monotonic()
from references import baselines
rows = {call}
with open("/proc/self/status") as status:
    peak_kb = int(re.search(r"VmHWM:\\s+(\\d+)", status.read()).group(1))
print(json.dumps({{"seconds": time.monotonic() - started, "rows": rows,
                  "peak_mb": peak_kb / 1024}}))
"""


# The transforms module of the dataset without window and weather features.
_WITHOUT_CONTEXT = '''"""The flights dataset without its window and weather features
(written by benchmarks/compare.py)."""
from transforms import flights

LABEL_KEY = flights.LABEL_KEY
LABEL_INPUTS = flights.LABEL_INPUTS
SERVING_INPUTS = flights.FLIGHT_INPUTS
preprocessing_fn = flights.preprocessing_fn_without_context
'''


def flights_without_context(directory: str) -> str:
    """Writes the flights dataset less its window and weather features as a
    dataset directory: the schema without the features the pipeline adds
    (tagged ``window_feature`` and ``lookup_feature``), so that it neither
    computes windows nor joins the weather; returns ``directory``."""
    flights = datasets.get_dataset("flights")
    schema = flights.schema()
    kept = [f for f in schema.feature if not added_by_pipeline(f)]
    del schema.feature[:]
    schema.feature.extend(kept)
    datasets.write_directory(directory, "flights_without_context", flights.csv_format, schema,
                             _WITHOUT_CONTEXT)
    return directory


def _times_four(path: str, out: str) -> str:
    with open(path, "rb") as source, open(out, "wb") as target:
        header = source.readline()
        body = source.read()
        target.write(header + body * 4)
    return out


def _package_run(train: str, serving: str, output_dir: str, *flags: str,
                 repeats: int = 2, dataset: str = "flights") -> dict:
    """The faster of ``repeats`` runs of the command."""
    best = None
    for _ in range(repeats):
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "pipelines", "run", "--dataset", dataset,
                        "--output_dir", output_dir,
                        "--overwrite", "--train_input", train, "--serving_input", serving,
                        *flags], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        seconds = time.monotonic() - started
        with open(os.path.join(output_dir, "run_summary.json")) as f:
            summary = json.load(f)
        if best is None or seconds < best["seconds"]:
            best = {"seconds": seconds, "rows": summary["rows"]["read"], "summary": summary,
                    "peak_mb": summary["peak_rss_mb"]}
    return best


def run_child(call: str) -> dict:
    """Runs ``call`` (an expression over ``references.baselines``) in a new
    interpreter: its wall clock from before the import, its value, its peak memory."""
    result = subprocess.run([sys.executable, "-c", _CHILD.format(root=ROOT, call=call)],
                            cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    train, serving = nycflights.default_inputs()
    work = tempfile.mkdtemp(prefix="tft-preprocessing-compare-")
    try:
        tiny = _package_run(train, serving, os.path.join(work, "tiny"), "--limit", "500")
        one = _package_run(train, serving, os.path.join(work, "x1"))
        train4 = _times_four(train, os.path.join(work, "train4.csv"))
        serving4 = _times_four(serving, os.path.join(work, "serving4.csv"))
        four = _package_run(train4, serving4, os.path.join(work, "x4"))
        plain = flights_without_context(os.path.join(work, "flights_without_context"))
        without = (_package_run(train, serving, os.path.join(work, "p1"), dataset=plain),
                   _package_run(train4, serving4, os.path.join(work, "p4"), dataset=plain))
        workers = {mode: _package_run(train, serving, os.path.join(work, mode),
                                      f"--direct_running_mode={mode}", "--direct_num_workers=2",
                                      repeats=1)
                   for mode in ("multi_threading", "multi_processing")}
        # The baseline's pre-split files are made here, outside its timing.
        files = baselines.split_for_baseline(train, serving, work)
        tft_way = run_child(f"baselines.tft_examples_way({files!r}, {work + '/tft'!r}, "
                         f"{work + '/tft_tmp'!r}) or {one['rows']}")
        pandas_way = run_child(f"baselines.pandas_sklearn_way({train!r}, {serving!r})")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_section(SECTION, _report(tiny, one, four, without, workers, tft_way, pandas_way))
    print(f"wrote {os.path.join(ROOT, 'benchmarks', 'RESULTS.md')}")


def _slope(one: dict, four: dict) -> tuple[float, float]:
    """Per-row throughput (rows/s) from 1x to 4x, and the fixed cost (s) it leaves of 1x."""
    per_row = (four["rows"] - one["rows"]) / (four["seconds"] - one["seconds"])
    return per_row, one["seconds"] - one["rows"] / per_row


def _report(tiny: dict, one: dict, four: dict, without: tuple[dict, dict], workers: dict,
            tft_way: dict, pandas_way: dict) -> str:
    per_row, fixed = _slope(one, four)
    plain_per_row, plain_fixed = _slope(*without)

    def rate(result):
        return result["rows"] / result["seconds"]

    lines = [
        SECTION, "",
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores with "
        "`.venv/bin/python benchmarks/compare.py`. "
        "Every figure is a whole command's wall clock, start-up included.", "",
        "| run | rows | seconds | rows/s | peak memory |", "|---|---:|---:|---:|---:|",
        f"| this package, 1x | {one['rows']:,} | {one['seconds']:.1f} | {rate(one):,.0f} | "
        f"{one['peak_mb']:,.0f} MiB |",
        f"| this package, 4x | {four['rows']:,} | {four['seconds']:.1f} | {rate(four):,.0f} | "
        f"{four['peak_mb']:,.0f} MiB |",
        *(f"| this package, 1x, 2 workers ({mode.replace('multi_', '')}) | "
          f"{result['rows']:,} | {result['seconds']:.1f} | {rate(result):,.0f} | "
          f"{result['peak_mb']:,.0f} MiB |" for mode, result in workers.items()),
        *(f"| this package without window and weather features, {size} | "
          f"{result['rows']:,} | {result['seconds']:.1f} | {rate(result):,.0f} | "
          f"{result['peak_mb']:,.0f} MiB |"
          for size, result in zip(("1x", "4x"), without, strict=True)),
        f"| TFT's own way (CsvTFXIO, defaults), 1x | {tft_way['rows']:,} | "
        f"{tft_way['seconds']:.1f} | {rate(tft_way):,.0f} | {tft_way['peak_mb']:,.0f} MiB |",
        f"| pandas + scikit-learn, 1x | {pandas_way['rows']:,} | {pandas_way['seconds']:.1f} | "
        f"{rate(pandas_way):,.0f} | {pandas_way['peak_mb']:,.0f} MiB |", "",
        f"- **per-row throughput: {per_row:,.0f} rows/s** (slope from 1x to 4x); **fixed cost "
        f"{fixed:.1f} s** (the 1x wall clock less its rows at that rate; a run on "
        f"{tiny['rows']:,} rows takes {tiny['seconds']:.1f} s, of which start-up (imports) "
        f"{tiny['summary']['seconds']['startup']:.1f} s and pipeline construction (TFT "
        f"tracing) {tiny['summary']['seconds']['build']:.1f} s)",
        f"- peak memory {one['peak_mb']:,.0f} MiB at 1x and {four['peak_mb']:,.0f} MiB at 4x "
        f"({four['peak_mb'] - one['peak_mb']:+,.0f} MiB for 3x more rows: rows stream, but the "
        "window events are a side input, one per row and feature, and counting duplicates holds "
        "a 16-byte fingerprint per row of the input until its shard is counted)",
        f"- without the window and weather features: **{plain_per_row:,.0f} rows/s** per row, "
        f"fixed cost {plain_fixed:.1f} s; peak memory {without[0]['peak_mb']:,.0f} MiB at 1x "
        f"and {without[1]['peak_mb']:,.0f} MiB at 4x "
        f"({without[1]['peak_mb'] - without[0]['peak_mb']:+,.0f} MiB)",
        "- both cores offered to Beam: " + "; ".join(
            f"{mode.replace('multi_', '')} {rate(result) / rate(one):.2f}x the rows/s of one "
            "worker" for mode, result in workers.items())
        + " (the processes' peak memory is the launcher's alone; theirs is not counted). "
        "The one-worker run already uses the second core for what releases the GIL "
        "(encoding the examples)",
        f"- whole-command ratio to TFT's own way: {tft_way['seconds'] / one['seconds']:.1f}x "
        f"faster at 1x; to pandas + scikit-learn: {rate(one) / rate(pandas_way):.2f}x its rows/s "
        "(which writes nothing, validates nothing and gives no serving graph)", "",
        "Per stage at 1x (Beam's sampled execution time):", "",
        "| stage | seconds | rows/s |", "|---|---:|---:|",
    ]
    for stage, figures in one["summary"]["stages"].items():
        value = figures["rows_per_s"]
        lines.append(f"| {stage} | {figures['seconds']:.2f} | "
                     f"{'-' if value is None else f'{value:,}'} |")
    return "\n".join(lines + [""])


if __name__ == "__main__":
    main()
