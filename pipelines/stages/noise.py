"""What a skew or drift metric reads when nothing changed, at a given row count:
the evidence a comparison needs before it may say "ok" or "over".

A threshold is set from the noise between random parts of the training data
(``suggest-thresholds``, and ``init`` with it): 1.5 times the largest value seen
between parts of which the smaller has ``CALIBRATED_ROWS`` rows or more. At
those row counts a comparison is judged as it stands. A span of five rows is
noisier than any of them: its metric can pass the threshold with nothing
changed, and stay under it when everything did. So below ``CALIBRATED_ROWS``
each comparison is judged against the noise at its own row count, measured with
TFDV itself: rows are drawn at random from the training statistics' own
distribution (numbers by their quantile histogram, within each bucket; text by
its value counts; missing values at their rate), ``REPEATS`` times, and every
comparator of the schema is computed between each draw and a large draw
(``REFERENCE_ROWS``) from the same distribution. The largest value seen is the
noise. A comparison has "not enough rows" when that noise exceeds both its
threshold and ``MARGIN`` times the noise measured the same way at
``CALIBRATED_ROWS`` rows (the second bound cancels what the drawn distribution
gets wrong about the real one, which is coarser, since the threshold was set
with that margin over the real noise at that count), and its value is within
``MARGIN`` times the noise: a value beyond it is over, whatever the row count.

This is a parametric bootstrap: it needs only the training statistics, so it
works for any input (BigQuery, remote files) without reading training rows
again.
"""

import numpy as np
import pyarrow as pa
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from pipelines.decode.columns import as_list_array
from pipelines.records.json_files import write_json
from pipelines.stages.statistics import skew_between, stats_options

__all__ = ["CALIBRATED_ROWS", "MARGIN", "REFERENCE_ROWS", "REPEATS", "measure", "measure_each",
           "noise_at", "write"]

# Draws per measurement: a value beyond the largest of 20 is beyond 95% of what
# chance gives at that row count.
REPEATS = 20
REFERENCE_ROWS = 20_000
# The smallest part the drafted thresholds were measured on: 20% of a sample of
# 5,000 rows (suggest-thresholds' smallest default size, and init's). From this
# many rows on, a comparison is judged as it stands.
CALIBRATED_ROWS = 1_000
# The drafted thresholds' margin over the noise they measured.
MARGIN = 1.5

_ARROW_TYPES = {schema_pb2.INT: pa.int64(), schema_pb2.FLOAT: pa.float32(),
                schema_pb2.BYTES: pa.binary()}


def noise_at(rows: int, training: statistics_pb2.DatasetFeatureStatisticsList,
             schema: schema_pb2.Schema, kind: str = "skew", seed: int = 0
             ) -> dict[str, float]:
    """Compared feature -> the largest value its ``kind`` comparator took
    between ``rows`` rows and the reference, both drawn from ``training``'s
    distribution."""
    compared = {f.name: f for f in schema.feature
                if f.HasField("skew_comparator" if kind == "skew" else "drift_comparator")}
    if not compared or not training.datasets:
        return {}
    statistics = {_name(f): f for f in training.datasets[0].features}
    features = {name: (feature, statistics[name]) for name, feature in compared.items()
                if name in statistics}
    if not features:
        return {}
    # The comparisons are computed as skew whatever ``kind`` is: drift and skew
    # are the same metric, only the pair of datasets differs.
    as_skew = _as_skew_comparators(schema, kind)
    options = stats_options(as_skew)
    rng = np.random.default_rng(seed)
    reference = stats_impl.generate_statistics_in_memory(
        _draw(features, REFERENCE_ROWS, rng), options)
    largest: dict[str, float] = {}
    for _ in range(REPEATS):
        drawn = stats_impl.generate_statistics_in_memory(
            _draw(features, max(rows, 1), rng), options)
        anomalies = skew_between(drawn, as_skew, reference)
        for info in anomalies.drift_skew_info:
            feature = ".".join(info.path.step)
            for measurement in info.skew_measurements:
                largest[feature] = max(largest.get(feature, 0.0), round(measurement.value, 6))
    return dict(sorted(largest.items()))


def measure(training: statistics_pb2.DatasetFeatureStatisticsList,
            schema: schema_pb2.Schema, rows: int, previous_rows: int | None = None) -> dict:
    """The record ``pipelines.reports.anomalies`` judges a split's comparisons
    by: ``{"rows": N, "margin": MARGIN, "skew": {feature: [noise, tolerance]},
    "drift": ...}``, where a comparison has too few rows when its noise exceeds
    both its threshold and the tolerance (``MARGIN`` x the noise at
    ``CALIBRATED_ROWS``), unless its value exceeds ``MARGIN`` x its noise.
    Nothing is measured from ``CALIBRATED_ROWS`` rows on. Drift compares two
    spans, so its noise is taken at the smaller one's rows."""
    return _measure(training, schema, rows, previous_rows, calibrated={})


def measure_each(training: statistics_pb2.DatasetFeatureStatisticsList,
                 schema: schema_pb2.Schema, rows: dict[str, int]) -> dict[str, dict]:
    """``measure`` for each split of one run (split -> its rows), the noise at
    ``CALIBRATED_ROWS``, the same for every split, measured once."""
    calibrated: dict[str, dict[str, float]] = {}
    return {split: _measure(training, schema, count, None, calibrated)
            for split, count in rows.items()}


def _measure(training: statistics_pb2.DatasetFeatureStatisticsList,
             schema: schema_pb2.Schema, rows: int, previous_rows: int | None,
             calibrated: dict[str, dict[str, float]]) -> dict:
    """``measure``, taking the noise at ``CALIBRATED_ROWS`` of each kind from
    ``calibrated`` and keeping it there once measured."""
    measured = {"rows": rows, "margin": MARGIN}
    for kind, count in (("skew", rows), ("drift", previous_rows)):
        if count is None:
            continue
        count = min(rows, count)
        if count >= CALIBRATED_ROWS:
            measured[kind] = {}
            continue
        at_count = noise_at(count, training, schema, kind)
        if kind not in calibrated:
            calibrated[kind] = noise_at(CALIBRATED_ROWS, training, schema, kind, seed=1)
        measured[kind] = {feature: [value, round(MARGIN * calibrated[kind].get(feature, 0.0), 6)]
                          for feature, value in at_count.items()}
    return measured


def write(path: str, measured: dict) -> None:
    """Writes ``measure``'s record beside the split's statistics
    (``layout.noise_file``)."""
    write_json(path, measured)


def _name(feature: statistics_pb2.FeatureNameStatistics) -> str:
    return feature.path.step[0] if feature.path.step else feature.name


def _as_skew_comparators(schema: schema_pb2.Schema, kind: str) -> schema_pb2.Schema:
    """``schema`` with its ``kind`` comparators as the skew comparators, and no
    drift comparators (only one comparison per draw is needed)."""
    as_skew = schema_pb2.Schema()
    as_skew.CopyFrom(schema)
    del as_skew.default_environment[:]
    for feature in as_skew.feature:
        del feature.not_in_environment[:]
        if kind == "drift":
            feature.ClearField("skew_comparator")
            if feature.HasField("drift_comparator"):
                feature.skew_comparator.CopyFrom(feature.drift_comparator)
        feature.ClearField("drift_comparator")
    return as_skew


def _draw(features: dict[str, tuple[schema_pb2.Feature, statistics_pb2.FeatureNameStatistics]],
          rows: int, rng: np.random.Generator) -> pa.RecordBatch:
    """``rows`` rows drawn from each feature's distribution in the statistics,
    independently (the comparators look at one feature at a time)."""
    arrays, names = [], []
    for name, (feature, statistics) in features.items():
        values = _values(feature, statistics, rows, rng)
        arrays.append(as_list_array(values))
        names.append(name)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _values(feature: schema_pb2.Feature, statistics: statistics_pb2.FeatureNameStatistics,
            rows: int, rng: np.random.Generator) -> pa.Array:
    arrow_type = _ARROW_TYPES[feature.type]
    common = (statistics.num_stats.common_stats if statistics.HasField("num_stats")
              else statistics.string_stats.common_stats)
    present = common.num_non_missing
    total = present + common.num_missing
    missing = rng.random(rows) < (common.num_missing / total if total else 0.0)
    count = int((~missing).sum())
    if feature.type == schema_pb2.BYTES:
        drawn = _categories(statistics.string_stats, present, count, rng)
    else:
        drawn = _numbers(statistics.num_stats, count, rng)
        if feature.type == schema_pb2.INT:
            drawn = np.rint(drawn).astype(np.int64)
    values = np.empty(rows, dtype=object)
    values[~missing] = list(drawn)
    values[missing] = None
    return pa.array(values.tolist(), arrow_type)


def _numbers(num_stats: statistics_pb2.NumericStatistics, count: int,
             rng: np.random.Generator) -> np.ndarray:
    """Values drawn by the quantile histogram: a bucket by its count, then
    uniformly within it (a bucket of one value is that value)."""
    histogram = next((h for h in num_stats.histograms
                      if h.type == statistics_pb2.Histogram.QUANTILES), None)
    if histogram is None or not histogram.buckets:
        return np.full(count, num_stats.mean)
    low = np.array([b.low_value for b in histogram.buckets])
    high = np.array([b.high_value for b in histogram.buckets])
    weights = np.array([b.sample_count for b in histogram.buckets], dtype=float)
    if weights.sum() <= 0:
        return np.full(count, num_stats.mean)
    bucket = rng.choice(len(low), size=count, p=weights / weights.sum())
    return low[bucket] + (high[bucket] - low[bucket]) * rng.random(count)


def _categories(string_stats: statistics_pb2.StringStatistics, present: int, count: int,
                rng: np.random.Generator) -> list[bytes]:
    """Values drawn by their counts (the rank histogram, or the top values); the
    rows beyond them get values of their own, as rare values do."""
    buckets = ([(b.label, b.sample_count) for b in string_stats.rank_histogram.buckets]
               or [(v.value, v.frequency) for v in string_stats.top_values])
    labels = [label.encode() if isinstance(label, str) else label for label, _ in buckets]
    counts = np.array([c for _, c in buckets], dtype=float)
    rest = max(float(present) - counts.sum(), 0.0)
    total = counts.sum() + rest
    if total <= 0:
        return [b""] * count
    choice = rng.choice(len(labels) + 1, size=count, p=np.append(counts, rest) / total)
    return [labels[i] if i < len(labels) else b"\0rare %d" % rng.integers(1 << 30)
            for i in choice]
