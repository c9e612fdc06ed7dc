"""A cost of every TFDV statistics computation (TFDV 1.16) that buys nothing here.

**The standard histogram**, a cost per numeric feature. TFDV builds a numeric
feature's equal-width histogram from its quantiles at 100 times the resolution
of the quantiles histogram (``_NUM_QUANTILES_FACTOR_FOR_STD_HISTOGRAM``): with
the 100 quantile buckets the comparators need (``stages.statistics``), 10,000
quantile buckets, which ``quantiles_util.generate_equi_width_histogram`` first
turns into a histogram proto of 10,000 buckets, then walks bucket by bucket in
Python for each of the 10 output buckets. A profile of the noise measurement
of a 30-feature file (``stages.noise``: 42 statistics computations) spent 80
of its 84 s there, 64 ms per feature and computation; every ``run`` and
``validate`` pays it for each split and span, ``init`` for each part it
drafts thresholds from.

``_equi_width_histogram`` computes the same histogram from the arrays, without
the intermediate proto: each output bucket's count is the sum, in the same
order, of the same products (a quantile bucket's weight times the fraction of
it inside the output bucket, by the same cases), so the result is the same
float for float (``tests/test_tfdv_speedups.py`` compares the serialized
protos, and whole statistics of real data). Each output bucket looks only at
the quantile buckets that can overlap it (the bounds are sorted): the others'
products are exactly zero, and leaving them out of the sum changes nothing.
All output buckets' candidates are gathered into one array and their overlaps
computed at once; only the ten sums are taken bucket by bucket, in TFDV's order.
A histogram of 10,000 quantile buckets: TFDV's own 156 ms, 2.2-2.8 ms with
every quantile bucket per output bucket, 5.0 ms a bucket at a time under load,
1.6-2.2 ms so (``benchmarks/RESULTS.md``, width; ``benchmarks/tfdv_calls.py``).
``_bin_weights`` spreads the weights of tied quantile buckets as TFDV's
``_get_bin_weights`` does: whole counts (unweighted statistics) by one
``reduceat``, exact in any order, fractional weights by summing TFDV's slices.

``install`` replaces them in ``quantiles_util`` (where TFDV's generators look
them up) once per process, next to ``beam_speedups`` (``pipelines.process``).
"""

import sys

import numpy as np
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.utils import quantiles_util
from tensorflow_metadata.proto.v0 import statistics_pb2

__all__ = ["WRITTEN_FOR", "install"]

# The TFDV release this was written for and checked against: it replaces
# private functions, which another release may have changed.
WRITTEN_FOR = "1.16.1"
_ORIGINAL = {"generate_equi_width_histogram": quantiles_util.generate_equi_width_histogram,
             "_get_bin_weights": quantiles_util._get_bin_weights}
_installed = [False]


def install() -> bool:
    """Replaces TFDV's equal-width histogram and bin weights with
    ``_equi_width_histogram`` and ``_bin_weights``, once per process. With a
    TFDV release other than ``WRITTEN_FOR`` nothing is replaced and one warning
    line says so; returns whether they are installed."""
    if _installed[0]:
        return True
    if tfdv.__version__ != WRITTEN_FOR:
        print(f"warning: TFDV {tfdv.__version__} is not {WRITTEN_FOR}, the release "
              f"pipelines.tfdv_speedups was written for: running plain TFDV",
              file=sys.stderr, flush=True)
        return False
    quantiles_util.generate_equi_width_histogram = _equi_width_histogram
    quantiles_util._get_bin_weights = _bin_weights
    _installed[0] = True
    return True


def _bin_weights(boundaries: np.ndarray, cum_bin_weights: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``quantiles_util._get_bin_weights``: the buckets between consecutive
    boundaries and their weights, the weight of buckets with the same upper
    bound spread evenly across them, and the count at the lowest boundary
    spread across the buckets identical to the first."""
    cum_bin_weights = cum_bin_weights.astype(np.float64)
    low_bounds = boundaries[:-1]
    high_bounds = boundaries[1:]
    bin_counts = np.diff(cum_bin_weights)
    size = low_bounds.size
    if size > 1:
        # Runs of equal upper bounds, as TFDV's loop finds them: a run starts
        # where the upper bound differs from the one before.
        starts = np.flatnonzero(np.concatenate(([True], high_bounds[1:] != high_bounds[:-1])))
        lengths = np.diff(np.append(starts, size))
        if (lengths > 1).any():
            if _whole_numbers(bin_counts):
                # Counts of whole rows (unweighted statistics): sums of whole
                # numbers below 2**53 are exact in any order, so one reduceat
                # gives the sums TFDV's slices give.
                bin_counts = np.repeat(np.add.reduceat(bin_counts, starts) / lengths, lengths)
            else:
                for start, length in zip(starts[lengths > 1].tolist(),
                                         lengths[lengths > 1].tolist(), strict=True):
                    bin_counts[start:start + length] = (
                        bin_counts[start:start + length].sum() / length)
    if size:
        differs = (low_bounds != low_bounds[0]) | (high_bounds != high_bounds[0])
        identical = int(np.argmax(differs)) if differs.any() else size
        if identical:
            bin_counts[0:identical] += cum_bin_weights[0] / identical
    return low_bounds, high_bounds, bin_counts


def _whole_numbers(values: np.ndarray) -> bool:
    """Whether every value is a whole number small enough that float64 sums of
    them are exact."""
    return bool(np.all(np.floor(values) == values) and np.abs(values).sum() < 2.0 ** 53)


def _equi_width_histogram(quantiles: np.ndarray, cumulative_counts: np.ndarray,
                          finite_min: float, finite_max: float, num_buckets: int,
                          num_pos_inf: float) -> statistics_pb2.Histogram:
    """``quantiles_util.generate_equi_width_histogram``, on arrays."""
    result = statistics_pb2.Histogram()
    result.type = statistics_pb2.Histogram.STANDARD
    if not np.isfinite(finite_min) and not np.isfinite(finite_max):
        result.buckets.add(low_value=finite_min, high_value=finite_max,
                           sample_count=cumulative_counts[-1])
        return result
    assert np.isfinite(finite_min)
    assert np.isfinite(finite_max)
    assert np.all(quantiles[:-1] <= quantiles[1:])
    quantiles, cumulative_counts, num_neg_inf = quantiles_util._strip_infinities(
        quantiles, cumulative_counts, finite_max, num_pos_inf)
    low, high, weight = _bin_weights(quantiles, cumulative_counts)
    # As the buckets of TFDV's intermediate proto hold them: doubles.
    low, high, weight = (np.asarray(a, dtype=np.float64) for a in (low, high, weight))
    if finite_min == finite_max:
        new_boundaries = np.array([finite_min, finite_max])
    else:
        new_boundaries = np.linspace(finite_min, finite_max, num_buckets + 1)
        if not np.isfinite(new_boundaries).all():
            return result
    if num_neg_inf:
        result.buckets.add(low_value=float("-inf"), high_value=float("-inf"),
                           sample_count=num_neg_inf)
    low_bounds, high_bounds = new_boundaries[:-1], new_boundaries[1:]
    # Only the quantile buckets from the first that does not end before an
    # output bucket to the last that does not start after it can overlap it
    # (the bounds are sorted); the overlap of every other is exactly zero, and
    # so is its product. All output buckets' candidates in one array:
    # ``bucket`` is the output bucket of each, ``at`` its quantile bucket.
    first = np.searchsorted(high, low_bounds, side="left")
    lengths = np.maximum(np.searchsorted(low, high_bounds, side="right") - first, 0)
    bucket = np.repeat(np.arange(low_bounds.size), lengths)
    ends = np.cumsum(lengths)
    at = np.arange(ends[-1]) - np.repeat(ends - lengths - first, lengths)
    lo, hi, w = low[at], high[at], weight[at]
    low_bound, high_bound = low_bounds[bucket], high_bounds[bucket]
    with np.errstate(divide="ignore", invalid="ignore"):
        width = hi - lo
        # quantiles_util._overlap's cases, in its order: the first that holds
        # decides.
        overlap = np.select(
            [(lo == hi) & (lo == low_bound), hi < low_bound, lo > high_bound,
             (low_bound <= lo) & (high_bound >= hi), low_bound <= lo, high_bound >= hi],
            [(bucket == 0).astype(np.float64), 0.0, 0.0, 1.0,
             (high_bound - lo) / width, (hi - low_bound) / width],
            default=(high_bound - low_bound) / width)
    products = overlap * w
    # TFDV adds each bucket's products one by one from the first quantile
    # bucket; the ones before the first candidate and after the last are zero,
    # and adding zero changes nothing. A cumulative sum adds in the same order.
    for i, (end, length) in enumerate(zip(ends.tolist(), lengths.tolist(), strict=True)):
        sample_count = float(np.cumsum(products[end - length:end])[-1]) if length else 0
        result.buckets.add(low_value=float(low_bounds[i]), high_value=float(high_bounds[i]),
                           sample_count=sample_count)
    if num_pos_inf:
        result.buckets.add(low_value=float("inf"), high_value=float("inf"),
                           sample_count=num_pos_inf)
    return result
