"""Benchmark: the two TFDV calls the noise measurement and drafting repeat
(issue 28, width), old way against new, in one process.

1. The equal-width histogram TFDV builds of every numeric feature from its
   10,001 quantiles: TFDV 1.16.1's own ``generate_equi_width_histogram``
   against ``pipelines.tfdv_speedups._equi_width_histogram`` (the same
   serialized proto; checked here too), on the quantiles of 400 values of four
   shapes (normal, log-normal, ten integers, uniform).
2. One skew comparison of a split against training, as drafting and the noise
   measurement make dozens: ``stages.statistics.validate_split`` (schema
   anomalies and comparisons, two TFDV calls) against ``skew_between`` (the
   comparators alone, one call; the same values, checked here), on a run's own
   statistics and schema::

    python benchmarks/tfdv_calls.py --run_dir DIR [--repeats 50]

``DIR`` is a zero-code run's output (``benchmarks/width.py --work W`` keeps
them under ``W``), e.g. of the 100-column file.
"""

import argparse
import os
import sys
import time

import numpy as np
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipelines import tfdv_speedups  # noqa: E402
from pipelines.stages.statistics import skew_between, validate_split  # noqa: E402


def _quantile_cases(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for values in (rng.normal(50, 10, 400), rng.lognormal(2, 1, 400),
                   rng.integers(0, 10, 400).astype(float), rng.uniform(-1, 1, 400)):
        quantiles = np.quantile(values, np.linspace(0, 1, 10_001), method="inverted_cdf")
        cumulative = np.searchsorted(np.sort(values), quantiles, side="right").astype(float)
        cases.append((quantiles, cumulative, float(values.min()), float(values.max()), 10, 0.0))
    return cases


def _milliseconds(call, repeats: int) -> float:
    call()
    started = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - started) / repeats * 1e3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run_dir", required=True)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)

    cases = _quantile_cases(np.random.default_rng(28))
    tfdvs = tfdv_speedups._ORIGINAL["generate_equi_width_histogram"]
    for case in cases:
        assert (tfdv_speedups._equi_width_histogram(*case).SerializeToString()
                == tfdvs(*case).SerializeToString())
    for name, function in (("TFDV's", tfdvs),
                           ("tfdv_speedups'", tfdv_speedups._equi_width_histogram)):
        ms = _milliseconds(lambda f=function: [f(*c) for c in cases], args.repeats) / len(cases)
        print(f"equal-width histogram, {name}: {ms:.2f} ms a call")

    with open(os.path.join(args.run_dir, "dataset", "schema.pbtxt")) as f:
        schema = text_format.Parse(f.read(), schema_pb2.Schema())
    statistics = {}
    for split in ("train", "eval"):
        statistics[split] = statistics_pb2.DatasetFeatureStatisticsList()
        with open(os.path.join(args.run_dir, "stats", f"{split}.pb"), "rb") as f:
            statistics[split].ParseFromString(f.read())
    train, held = statistics["train"], statistics["eval"]

    def skew(anomalies):
        return {".".join(i.path.step): [m.value for m in i.skew_measurements]
                for i in anomalies.drift_skew_info}

    assert skew(validate_split(held, schema, train)) == skew(skew_between(held, schema, train))
    for name, call in (("validate_split", lambda: validate_split(held, schema, train)),
                       ("skew_between", lambda: skew_between(held, schema, train))):
        ms = _milliseconds(call, max(args.repeats // 5, 3))
        print(f"one skew comparison of {len(schema.feature)} features, {name}: {ms:.1f} ms")


if __name__ == "__main__":
    main()
