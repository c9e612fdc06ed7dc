"""``pipelines.tfdv_speedups`` must not change a single statistic: its histogram
is compared with TFDV's own, serialized, on quantiles shaped as TFDV makes them
(ties, point masses, infinities, one value) and on whole statistics of real
data."""

import csv
import itertools

import numpy as np
import pyarrow as pa
import pytest
from tensorflow_data_validation.statistics import stats_impl, stats_options
from tensorflow_data_validation.utils import quantiles_util

from pipelines import nycflights, tfdv_speedups
from pipelines.decode.columns import as_list_array


def _cases():
    rng = np.random.default_rng(7)
    for case in range(300):
        size = int(rng.integers(2, 400))
        kind = case % 6
        if kind == 0:    # continuous
            values = np.sort(rng.normal(0, 10, size))
        elif kind == 1:  # few distinct values: long runs of ties
            values = np.sort(rng.integers(0, 5, size).astype(float))
        elif kind == 2:  # a point mass at the minimum, then a tail
            values = np.sort(np.concatenate([np.zeros(size // 2), rng.exponential(3, size)]))
        elif kind == 3:  # one value
            values = np.full(size, 4.5)
        elif kind == 4:  # negative infinities below
            values = np.sort(np.concatenate([np.full(3, -np.inf), rng.uniform(-1, 1, size)]))
        else:            # positive infinities above
            values = np.sort(np.concatenate([rng.uniform(0, 100, size), np.full(2, np.inf)]))
        finite = values[np.isfinite(values)]
        cumulative = np.arange(1, values.size + 1, dtype=np.float64)
        num_pos_inf = float(np.isposinf(values).sum())
        yield (values, cumulative, float(finite.min()), float(finite.max()),
               int(rng.integers(1, 12)), num_pos_inf)


def test_the_histogram_is_tfdvs_float_for_float():
    original = tfdv_speedups._ORIGINAL["generate_equi_width_histogram"]
    compared = 0
    for quantiles, cumulative, low, high, buckets, pos_inf in _cases():
        mine = tfdv_speedups._equi_width_histogram(quantiles, cumulative, low, high, buckets,
                                                    pos_inf)
        theirs = original(quantiles, cumulative, low, high, buckets, pos_inf)
        assert mine.SerializeToString() == theirs.SerializeToString(), (quantiles, buckets)
        compared += 1
    assert compared == 300


def test_the_bin_weights_are_tfdvs():
    """Whole counts (unweighted statistics: the fast path) and fractional
    weights (the slices TFDV sums)."""
    original = tfdv_speedups._ORIGINAL["_get_bin_weights"]
    rng = np.random.default_rng(8)
    for quantiles, cumulative, *_ in _cases():
        weighted = np.cumsum(rng.random(cumulative.size))
        for weights in (cumulative, weighted):
            for mine, theirs in zip(tfdv_speedups._bin_weights(quantiles, weights),
                                    original(quantiles, weights), strict=True):
                assert np.array_equal(mine, theirs)


@pytest.fixture
def plain_tfdv(monkeypatch):
    for name, function in tfdv_speedups._ORIGINAL.items():
        monkeypatch.setattr(quantiles_util, name, function)


def _flights_statistics():
    with open(nycflights.default_inputs()[0]) as f:
        header = next(csv.reader(f))
        rows = list(itertools.islice(csv.reader(f), 20_000))
    columns = {}
    for index, name in enumerate(header):
        cells = [row[index] for row in rows]
        try:
            values = [None if c in ("", "NA") else float(c) for c in cells]
        except ValueError:
            values = [None if c in ("", "NA") else c.encode() for c in cells]
        columns[name] = as_list_array(pa.array(values))
    batch = pa.RecordBatch.from_arrays(list(columns.values()), names=list(columns))
    options = stats_options.StatsOptions(num_quantiles_histogram_buckets=100)
    return stats_impl.generate_statistics_in_memory(batch, options)


def test_statistics_of_real_data_are_unchanged(plain_tfdv, monkeypatch):
    theirs = _flights_statistics()
    monkeypatch.setattr(quantiles_util, "generate_equi_width_histogram",
                        tfdv_speedups._equi_width_histogram)
    monkeypatch.setattr(quantiles_util, "_get_bin_weights", tfdv_speedups._bin_weights)
    mine = _flights_statistics()
    assert len(theirs.datasets[0].features) == 19
    assert mine.SerializeToString() == theirs.SerializeToString()
