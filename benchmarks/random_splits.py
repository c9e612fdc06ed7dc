"""Benchmark: do the skew thresholds stay quiet on random splits, and do they
flag a number scaled by 1.3?

For each dataset, its rows are split at random 20 times as a run splits them:
80% training, and a serving span of 1,000 rows drawn from the other 20%. The
span's statistics are validated against the training part's with the
dataset's schema, exactly as ``validate`` does (TFDV in memory, the pipeline's
statistics options), and every comparison over its threshold is counted: there
should be none. Then, on the same kind of split, each number of the schema is
multiplied by 1.3 in the span alone, and whether its comparator flags it is
recorded (``suggest_thresholds.random_span_ratios`` and ``scale_signal``). The
datasets: flights and census as registered (their curated schemas), and
census and Chicago taxi as ``init`` drafts them from the files (read from
``../shared/data/``, skipped when it is absent)::

    .venv/bin/python benchmarks/random_splits.py [--splits 20] [--span_rows 1000]
"""

import argparse
import os
import sys
import tempfile

import pyarrow as pa

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from pipelines import datasets, layout, process  # noqa: E402

SHARED = os.path.join(ROOT, "..", "shared", "data")
CENSUS = os.path.join(SHARED, "census", "adult.data")
TAXI = os.path.join(SHARED, "chicago_taxi", "data.csv")
CENSUS_NAMES = ("age,workclass,fnlwgt,education,education_num,marital_status,occupation,"
                "relationship,race,sex,capital_gain,capital_loss,hours_per_week,"
                "native_country,income_bracket")


def _registered(name: str, path: str | None):
    dataset = datasets.get_dataset(name)
    schema = dataset.schema()
    pattern = path or dataset.default_inputs()[0]
    return dataset, schema, pattern


def _drafted(work: str, name: str, path: str, **flags):
    from pipelines.commands import init

    directory = os.path.join(work, name)
    init.init_dataset(path, directory, name=name, **flags)
    dataset = datasets.load_directory(directory)
    return dataset, dataset.schema(), path


def _table(dataset, schema, pattern: str) -> pa.Table:
    from pipelines.decode.files import decoded_table, match_files

    return dataset.preparation(schema).prepare_table(
        decoded_table(dataset.csv_decoder(schema), match_files(pattern)).table, layout.TRAIN)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", type=int, default=20)
    parser.add_argument("--span_rows", type=int, default=1000)
    args = parser.parse_args()
    process.import_the_stack()
    from tensorflow_metadata.proto.v0 import schema_pb2

    from pipelines.commands.suggest_thresholds import SCALE, random_span_ratios, scale_signal

    work = tempfile.mkdtemp(prefix="random-splits-")
    cases = [("flights (curated)", lambda: _registered("flights", None))]
    if os.path.exists(CENSUS):
        cases += [("census (curated)", lambda: _registered("census", CENSUS)),
                  ("census (drafted by init)", lambda: _drafted(
                      work, "census_drafted", CENSUS, label="income_bracket",
                      column_names=CENSUS_NAMES.split(",")))]
    else:
        print(f"skipping census: {os.path.normpath(CENSUS)} is absent", flush=True)
    if os.path.exists(TAXI):
        cases.append(("taxi (drafted by init)", lambda: _drafted(
            work, "taxi_drafted", TAXI, label="tips")))
    else:
        print(f"skipping taxi: {os.path.normpath(TAXI)} is absent", flush=True)

    print(f"\n{args.splits} random splits: 80% training, a serving span of "
          f"{args.span_rows:,} rows from the rest; a {SCALE}x scale of each number in the span")
    print(f"{'dataset':<26}{'rows':>9}{'compared':>10}{'splits flagging':>17}"
          f"{'max value/threshold':>21}  {SCALE}x scale flagged")
    for name, load in cases:
        dataset, schema, pattern = load()
        table = _table(dataset, schema, pattern)
        flags = random_span_ratios(table, schema, args.splits, args.span_rows)
        compared = [f for f in schema.feature if f.HasField("skew_comparator")]
        numbers = [f.name for f in compared if f.type != schema_pb2.BYTES]
        signal = scale_signal(table, schema, numbers)
        thresholds = {f.name: (f.skew_comparator.jensen_shannon_divergence.threshold
                               or f.skew_comparator.infinity_norm.threshold) for f in compared}
        seen = [n for n in numbers if signal.get(n, 0) > thresholds[n]]
        missed = [n for n in numbers if n not in seen]
        worst = max((r for split in flags for r in split.values()), default=0.0)
        noisy = sorted({f for split in flags for f, r in split.items() if r > 1})
        flagging = sum(1 for split in flags if max(split.values(), default=0) > 1)
        print(f"{name:<26}{table.num_rows:>9,}{len(compared):>10}"
              f"{flagging:>11} of {args.splits:<3}{worst:>21.2f}  "
              f"{len(seen)} of {len(numbers)}" + (f" (not: {', '.join(missed)})" if missed else "")
              + (f"  over on a random split: {', '.join(noisy)}" if noisy else ""), flush=True)


if __name__ == "__main__":
    main()
