"""Benchmark: many features and many rows, on a Criteo-shaped dataset.

The generator (``generate``) writes a CSV shaped like Criteo's click logs, the
usual large tabular benchmark: a 0/1 ``label``, 13 integer columns ``I1``-``I13``
and 26 categorical columns ``C1``-``C26``. It is deterministic: the same
``--seed`` and row count give the same bytes.

- ``I``j: counts, as Criteo's are: ``floor(exp(N(mu_j, 1.5)))`` with mu_j from
  0.5 to 4.5 across the columns; column j is missing in about (2 + 3j)% of rows.
- ``C``j: an 8-hex-digit token (as Criteo hashes its categories) drawn from a
  Zipf distribution (exponent 1.1) over a cardinality that grows geometrically
  from 10 (``C1``) to 1,000,000 (``C26``); ``C``j is missing in about j% of rows.
- ``label``: 1 with probability ``sigmoid(-1.4 + 0.35 * z(log1p I1) + 0.8 *
  [C1 is one of its two most frequent values] - 0.5 * [C3 is missing])``, about
  a quarter of the rows, so that a model has something to find.

It is run as a dataset directory (written here: the schema, and a
``preprocessing_fn`` with a vocabulary on each of the 26 categorical columns,
one OOV bucket, and a z-score with mean imputation on each of the 13 integers)
through ``python -m pipelines run`` at each size, one after the other, and the
rows/s and peak memory of each run are recorded. At the sizes named by
``--tft_way_rows`` (1M by default) the same preprocessing also runs as TFT's own
examples write it (``references.baselines.tft_examples_way``: CsvTFXIO, TFDV
statistics, AnalyzeAndTransformDataset, WriteToTFRecord), over the rows split
80/20 beforehand (outside its timing), for comparison. Writes its section of
``benchmarks/RESULTS.md``::

    .venv/bin/python benchmarks/scale.py [--rows 1000000,10000000] [--work DIR]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.compare import run_child  # noqa: E402
from benchmarks.run_flights import write_section  # noqa: E402

SECTION = "## Many features and many rows: a Criteo-shaped dataset"
INTEGERS, CATEGORIES = 13, 26
CARDINALITIES = np.geomspace(10, 1_000_000, CATEGORIES).round().astype(np.int64)
ZIPF_EXPONENT = 1.1
CHUNK_ROWS = 500_000

_TRANSFORMS = '''"""Criteo-shaped benchmark data (benchmarks/scale.py): a vocabulary on each
categorical column, a z-score with mean imputation on each integer column."""

from transforms import recipes

LABEL_KEY = "label"
INTEGERS = [f"I{j}" for j in range(1, 14)]
CATEGORIES = [f"C{j}" for j in range(1, 27)]
SERVING_INPUTS = tuple(INTEGERS + CATEGORIES)
LABEL_INPUTS = ()


def preprocessing_fn(inputs):
    outputs = {}
    for name in INTEGERS:
        outputs[f"{name}_z"] = recipes.z_score_imputed(inputs[name], name=f"{name}_z")
    for name in CATEGORIES:
        outputs[f"{name}_id"] = recipes.vocabulary(inputs[name], name=name)
    outputs[LABEL_KEY] = recipes.dense(inputs[LABEL_KEY])
    return outputs
'''


def _schema_text() -> str:
    lines = ['feature { name: "label" type: INT int_domain { min: 0 max: 1 } '
             'presence { min_fraction: 1.0 min_count: 1 } shape { dim { size: 1 } } }']
    lines += [f'feature {{ name: "I{j}" type: INT presence {{ min_count: 1 }} '
              f'value_count {{ min: 1 max: 1 }} }}' for j in range(1, INTEGERS + 1)]
    lines += [f'feature {{ name: "C{j}" type: BYTES presence {{ min_count: 1 }} '
              f'value_count {{ min: 1 max: 1 }} }}' for j in range(1, CATEGORIES + 1)]
    return "\n".join(lines) + "\n"


def write_dataset(directory: str) -> None:
    """The benchmark's dataset directory (dataset.json, schema.pbtxt, transforms.py)."""
    from pipelines.datasets import write_directory
    from pipelines.decode.columns import CsvFormat

    write_directory(directory, "criteo_shaped", CsvFormat(), _schema_text(), _TRANSFORMS)


def _tokens(cardinality: int) -> pa.Array:
    """The column's distinct values: 8 hex digits each, distinct."""
    codes = (np.arange(cardinality, dtype=np.uint64) * np.uint64(2654435761)
             + np.uint64(cardinality)) % np.uint64(1 << 32)
    return pa.array([f"{c:08x}" for c in codes.tolist()], pa.string())


def generate(path: str, rows: int, seed: int = 2013) -> None:
    """Writes the Criteo-shaped CSV (see the module docstring) to ``path``."""
    random = np.random.default_rng(seed)
    tokens = [_tokens(int(k)) for k in CARDINALITIES]
    cdfs = []
    for k in CARDINALITIES:
        weights = 1.0 / np.arange(1, k + 1) ** ZIPF_EXPONENT
        cdfs.append(np.cumsum(weights) / weights.sum())
    mus = np.linspace(0.5, 4.5, INTEGERS)
    written = 0
    with pa_csv.CSVWriter(path, _arrow_schema()) as writer:
        while written < rows:
            n = min(CHUNK_ROWS, rows - written)
            columns = {}
            integers = []
            for j in range(INTEGERS):
                values = np.floor(np.exp(random.normal(mus[j], 1.5, n))).astype(np.int64)
                missing = random.random(n) < 0.02 + 0.03 * j
                integers.append((values, missing))
                columns[f"I{j + 1}"] = pa.array(values, mask=missing)
            categories = []
            for j in range(CATEGORIES):
                codes = np.searchsorted(cdfs[j], random.random(n))
                missing = random.random(n) < 0.01 * (j + 1)
                categories.append((codes, missing))
                columns[f"C{j + 1}"] = pc.take(tokens[j], pa.array(codes, mask=missing))
            i1, i1_missing = integers[0]
            score = np.log1p(np.where(i1_missing, 0, i1))
            score = (score - score.mean()) / (score.std() or 1.0)
            logit = (-1.4 + 0.35 * score + 0.8 * ((categories[0][0] < 2) & ~categories[0][1])
                     - 0.5 * categories[2][1])
            label = (random.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
            table = pa.table({"label": label, **columns}, schema=_arrow_schema())
            writer.write_table(table)
            written += n


def _arrow_schema() -> pa.Schema:
    return pa.schema([("label", pa.int64())]
                     + [(f"I{j}", pa.int64()) for j in range(1, INTEGERS + 1)]
                     + [(f"C{j}", pa.string()) for j in range(1, CATEGORIES + 1)])


def split_for_baseline(data: str, work: str) -> dict[str, str]:
    """``data`` as headerless train.csv and eval.csv (every fifth row), as
    CsvTFXIO reads them; missing values stay empty fields."""
    paths = {name: os.path.join(work, f"baseline_{name}.csv") for name in ("train", "eval")}
    options = pa_csv.WriteOptions(include_header=False)
    with pa_csv.open_csv(data, convert_options=pa_csv.ConvertOptions(
            column_types=_arrow_schema())) as reader, \
            pa_csv.CSVWriter(paths["train"], _arrow_schema(), write_options=options) as train, \
            pa_csv.CSVWriter(paths["eval"], _arrow_schema(), write_options=options) as eval_:
        seen = 0
        for batch in reader:
            is_eval = (np.arange(seen, seen + batch.num_rows) % 5) == 4
            eval_.write_batch(batch.filter(pa.array(is_eval)))
            train.write_batch(batch.filter(pa.array(~is_eval)))
            seen += batch.num_rows
    return paths


def _tft_way(dataset: str, data: str, work: str, rows: int) -> dict:
    paths = split_for_baseline(data, work)
    out, tmp = os.path.join(work, "tft_way"), os.path.join(work, "tft_way_tmp")
    try:
        return run_child(f"baselines.tft_examples_way({paths!r}, {out!r}, {tmp!r}, "
                         f"dataset_name={dataset!r}, with_row_key=False) or {rows}")
    finally:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
        for path in paths.values():
            os.remove(path)


def _run(dataset: str, data: str, output_dir: str) -> dict:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "pipelines", "run", "--dataset", dataset,
                    "--train_input", data, "--output_dir", output_dir, "--overwrite"],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    with open(os.path.join(output_dir, "run_summary.json")) as f:
        summary = json.load(f)
    return {"seconds": seconds, "rows": summary["rows"]["read"],
            "peak_mb": summary["peak_rss_mb"], "stages": summary["stages"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000",
                        help="comma-separated row counts (default 1M and 10M)")
    parser.add_argument("--tft_way_rows", default="1000000",
                        help="the sizes at which TFT's own way runs too (comma-separated; "
                             "default 1M, empty for none)")
    parser.add_argument("--work", help="where the data and runs go (default: a temp dir, "
                                       "deleted afterwards)")
    args = parser.parse_args()
    sizes = [int(n) for n in args.rows.split(",")]
    tft_way_sizes = {int(n) for n in args.tft_way_rows.split(",") if n}
    work = args.work or tempfile.mkdtemp(prefix="tft-preprocessing-scale-")
    os.makedirs(work, exist_ok=True)
    dataset = os.path.join(work, "dataset")
    write_dataset(dataset)
    results = []
    try:
        for rows in sizes:
            data = os.path.join(work, f"criteo_{rows}.csv")
            started = time.monotonic()
            generate(data, rows)
            generated = time.monotonic() - started
            result = _run(dataset, data, os.path.join(work, f"run_{rows}"))
            result |= {"bytes": os.path.getsize(data), "generated": generated}
            results.append(result)
            print(f"{rows:,} rows: {result['seconds']:.1f} s, "
                  f"{rows / result['seconds']:,.0f} rows/s, peak {result['peak_mb']:,.0f} MiB",
                  flush=True)
            if rows in tft_way_sizes:
                result["tft_way"] = _tft_way(dataset, data, work, rows)
                print(f"{rows:,} rows, TFT's own way: {result['tft_way']['seconds']:.1f} s, "
                      f"peak {result['tft_way']['peak_mb']:,.0f} MiB", flush=True)
            os.remove(data)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    write_section(SECTION, _report(results))


def _report(results: list[dict]) -> str:
    lines = [
        SECTION, "",
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores with "
        "`.venv/bin/python benchmarks/scale.py` (the generator is described in its docstring): "
        "13 integer columns z-scored, 26 categorical columns with Zipf-distributed values "
        "(cardinalities 10 to 1,000,000) each given a vocabulary, a 0/1 label; "
        "`python -m pipelines run` end to end (statistics, validation, analysis, transform, "
        "80/20 split, TFRecords), whole command.", "",
        "| run | rows | CSV | seconds | rows/s | peak memory |", "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| this package | {r['rows']:,} | {r['bytes'] / 2**20:,.0f} MiB | "
                     f"{r['seconds']:.1f} | {r['rows'] / r['seconds']:,.0f} | "
                     f"{r['peak_mb']:,.0f} MiB |")
        if "tft_way" in r:
            t = r["tft_way"]
            lines.append(f"| TFT's own way (CsvTFXIO, pre-split 80/20) | {r['rows']:,} | "
                         f"{r['bytes'] / 2**20:,.0f} MiB | {t['seconds']:.1f} | "
                         f"{r['rows'] / t['seconds']:,.0f} | {t['peak_mb']:,.0f} MiB |")
    lines += ["", "Per stage (Beam's sampled execution time, seconds):", "",
              "| stage | " + " | ".join(f"{r['rows']:,} rows" for r in results) + " |",
              "|---|" + "---:|" * len(results)]
    for stage in results[0]["stages"]:
        lines.append(f"| {stage} | " + " | ".join(
            f"{r['stages'].get(stage, {}).get('seconds', 0):.1f}" for r in results) + " |")
    return "\n".join(lines + [""])


if __name__ == "__main__":
    main()
