"""``suggest-thresholds``: skew and drift thresholds chosen from the data.

A comparator's threshold should sit above the value the metric takes when
nothing changed. This measures that: it samples the training data at a few
sizes, splits each sample at random into 80/20 parts several times, and
computes every comparator of the schema between the two parts with TFDV. The
suggestion is the largest value seen times a margin, rounded up to two
significant digits::

    python -m pipelines suggest-thresholds --dataset flights [--input GLOB]
        [--sizes 5000,50000,0] [--repeats 20] [--margin 1.5]

(0 is all rows). Statistics are computed in memory with the pipeline's
statistics options; the quantile sketches can differ slightly from the Beam
path's, which the margin absorbs.

``draft_comparators`` (``init``'s) also chooses each number's histogram by its
power, not only its noise: for every candidate (equal-width or quantile
buckets) it measures the metric between random parts of which one has its
number scaled by ``SCALE``, and keeps the histogram that puts that shift
furthest above its threshold. It says which numbers such a shift would still
not flag, and which thresholds come out at 1, the metric's maximum (unchecked).
"""

import dataclasses
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import datasets, layout
from pipelines.decode.files import decoded_table, match_files
from pipelines.decode.row_keys import DEFAULT_EVAL_FRACTION
from pipelines.errors import UserError
from pipelines.reports.anomalies import comparisons
from pipelines.stages.statistics import skew_between, stats_options

__all__ = ["HELD_OUT", "SCALE", "Comparator", "Noise", "draft_comparators", "measure_noise",
           "noise_between_halves", "noise_of_each", "random_span_ratios", "scale_signal",
           "scale_signal_of_each",
           "scaled_columns", "suggest", "suggest_thresholds"]

HELD_OUT = DEFAULT_EVAL_FRACTION  # random parts the size of the default split's
# The shift a drafted comparator of a number should see: a unit or a currency
# changed, a sensor drifting, a field entered in other terms.
SCALE = 1.3
# How a scaled part is measured: random parts of this many rows (the smallest
# parts the thresholds are measured on, pipelines.stages.noise.CALIBRATED_ROWS),
# the smallest value of a few repeats.
SCALED_ROWS, SCALED_REPEATS = 1000, 3
# Both distances lie in [0, 1]: a threshold of 1 flags nothing.
NEVER_FLAGGED = 1.0
_SOURCES = (schema_pb2.HistogramSelection.STANDARD, schema_pb2.HistogramSelection.QUANTILES)


@dataclasses.dataclass
class Noise:
    """Per feature: the metric, the current threshold and the largest value seen
    between random halves, per sample size."""

    feature: str
    metric: str
    threshold: float
    largest: dict[int, float]

    def suggestion(self, margin: float) -> float:
        return _round_up(max(self.largest.values()) * margin)


def suggest_thresholds(dataset_name: str, pattern: str | None, sizes: list[int], repeats: int,
                       margin: float) -> str:
    """The ``suggest-thresholds`` command: measures the noise, returns the table."""
    return suggest(measure_noise(dataset_name, pattern, sizes, repeats), margin)


def measure_noise(dataset_name: str, pattern: str | None, sizes: list[int], repeats: int,
                  seed: int = 0) -> list[Noise]:
    dataset = datasets.get_dataset(dataset_name)
    schema = dataset.schema()
    if pattern is None and dataset.default_inputs is None:
        raise UserError(f"dataset {dataset.name!r} has no default input: pass --input")
    files = match_files(pattern or dataset.default_inputs()[0])
    table = dataset.preparation(schema).prepare_table(
        decoded_table(dataset.csv_decoder(schema), files).table, layout.TRAIN)
    return noise_between_halves(table, schema, sizes, repeats, seed)


def noise_between_halves(table: pa.Table, schema: schema_pb2.Schema, sizes: list[int],
                         repeats: int, seed: int = 0) -> list[Noise]:
    """Every comparator of ``schema`` between random 80/20 parts of ``table``
    (decoded rows), ``repeats`` times per sample size (0: all rows)."""
    return noise_of_each(table, [schema], sizes, repeats, seed)[0]


def noise_of_each(table: pa.Table, schemas: list[schema_pb2.Schema], sizes: list[int],
                  repeats: int, seed: int = 0) -> list[list[Noise]]:
    """``noise_between_halves`` for schemas that differ only in their
    comparators: the statistics of each random part are computed once and
    compared under each schema (computing them is what costs)."""
    options = stats_options(schemas[0])
    rng = np.random.default_rng(seed)
    noise: list[dict[str, Noise]] = [{} for _ in schemas]
    for size in sizes:
        rows = table if not size or size >= table.num_rows else table.take(
            pa.array(np.sort(rng.choice(table.num_rows, size, replace=False))))
        batch = rows.combine_chunks().to_batches()[0]
        for _ in range(repeats):
            held_out = rng.random(batch.num_rows) < HELD_OUT
            train = stats_impl.generate_statistics_in_memory(
                batch.filter(pa.array(~held_out)), options)
            held = stats_impl.generate_statistics_in_memory(
                batch.filter(pa.array(held_out)), options)
            for schema, found in zip(schemas, noise, strict=True):
                for feature, m in comparisons(skew_between(held, schema, train),
                                              "skew").items():
                    entry = found.setdefault(feature, Noise(feature, m["metric"],
                                                            m["threshold"], {}))
                    entry.largest[len(rows)] = max(entry.largest.get(len(rows), 0.0),
                                                   m["value"])
    return [sorted(found.values(), key=lambda n: n.feature) for found in noise]


def scale_signal(table: pa.Table, schema: schema_pb2.Schema, names: list[str],
                 factor: float = SCALE, repeats: int = SCALED_REPEATS, seed: int = 0
                 ) -> dict[str, float]:
    """Per number of ``names``: the smallest value its skew comparator takes
    between the rest of ``table`` and a random part of ``SCALED_ROWS`` rows with
    the number multiplied by ``factor`` (the others as they are)."""
    return scale_signal_of_each(table, [schema], names, factor, repeats, seed)[0]


def scale_signal_of_each(table: pa.Table, schemas: list[schema_pb2.Schema], names: list[str],
                         factor: float = SCALE, repeats: int = SCALED_REPEATS, seed: int = 0
                         ) -> list[dict[str, float]]:
    """``scale_signal`` under each of ``schemas`` (which differ only in their
    comparators), from the same statistics."""
    if not names or table.num_rows <= SCALED_ROWS:
        return [{} for _ in schemas]
    options = stats_options(schemas[0])
    rng = np.random.default_rng(seed)
    batch = table.combine_chunks().to_batches()[0]
    smallest: list[dict[str, float]] = [{} for _ in schemas]
    for _ in range(repeats):
        held_out = np.zeros(batch.num_rows, dtype=bool)
        held_out[rng.choice(batch.num_rows, SCALED_ROWS, replace=False)] = True
        rest = stats_impl.generate_statistics_in_memory(batch.filter(pa.array(~held_out)),
                                                        options)
        scaled = stats_impl.generate_statistics_in_memory(
            scaled_columns(batch.filter(pa.array(held_out)), names, factor), options)
        for schema, found in zip(schemas, smallest, strict=True):
            for feature, m in comparisons(skew_between(scaled, schema, rest),
                                          "skew").items():
                if feature in names:
                    found[feature] = min(found.get(feature, math.inf), m["value"])
    return smallest


def scaled_columns(batch: pa.RecordBatch, names: list[str], factor: float) -> pa.RecordBatch:
    """``batch`` with its number columns ``names`` multiplied by ``factor``
    (whole numbers rounded, as a file would write them)."""
    columns = list(batch.columns)
    for name in names:
        i = batch.schema.get_field_index(name)
        lists = batch.column(i)
        values = pc.list_flatten(lists)
        times = pc.multiply(values.cast(pa.float64()), factor)
        if pa.types.is_integer(values.type):
            times = pc.round(times)
        columns[i] = pa.LargeListArray.from_arrays(
            lists.offsets, times.cast(values.type), mask=lists.is_null())
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def random_span_ratios(table: pa.Table, schema: schema_pb2.Schema, splits: int,
                       span_rows: int = SCALED_ROWS, seed: int = 0) -> list[dict[str, float]]:
    """Per random split of ``table`` as a run splits its rows (80% training, a
    span of ``span_rows`` rows from the rest): feature -> the span's skew value
    over its threshold (above 1 is flagged), as ``validate`` would compute it."""
    options = stats_options(schema)
    batch = table.combine_chunks().to_batches()[0]
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(splits):
        order = rng.permutation(batch.num_rows)
        cut = int((1 - HELD_OUT) * batch.num_rows)
        training = batch.take(pa.array(np.sort(order[:cut])))
        span = batch.take(pa.array(np.sort(order[cut:cut + span_rows])))
        anomalies = skew_between(
            stats_impl.generate_statistics_in_memory(span, options), schema,
            stats_impl.generate_statistics_in_memory(training, options))
        ratios.append({f: m["value"] / m["threshold"]
                       for f, m in comparisons(anomalies, "skew").items()})
    return ratios


@dataclasses.dataclass(frozen=True)
class Comparator:
    """A drafted comparator: its threshold, the histogram a number is compared
    by, and, for a number, what a ``SCALE`` shift of it reads (``signal``)."""

    feature: str
    threshold: float
    source: int | None = None  # schema_pb2.HistogramSelection.Type, for a number
    signal: float | None = None

    @property
    def unchecked(self) -> bool:
        return self.threshold >= NEVER_FLAGGED

    @property
    def sees_scale(self) -> bool | None:
        """Whether a ``SCALE`` shift of the number at 1,000 rows is flagged."""
        return None if self.signal is None else self.signal > self.threshold

    def describe(self) -> str:
        """How ``init`` prints it."""
        if self.unchecked:
            return ("unchecked: random parts of the data already differ by the metric's "
                    "maximum, so no threshold would flag anything")
        text = f"skew/drift threshold {self.threshold:g}"
        if self.sees_scale is False:
            text += f" (a {SCALE}x scale would not be flagged: it reads {self.signal:.3g})"
        return text


def draft_comparators(schema: schema_pb2.Schema, table: pa.Table, uncompared: set[str],
                      sizes: list[int], repeats: int, margin: float, floor: float
                      ) -> dict[str, Comparator]:
    """Sets skew and drift comparators on every feature of ``schema`` but
    ``uncompared`` (L-infinity distance for text, Jensen-Shannon divergence for
    numbers), with thresholds from the noise between random parts of
    ``table`` (``margin`` x the largest value, at least ``floor``, at most 1).
    A number is compared by the histogram under which a ``SCALE`` shift stands
    furthest above the threshold. Returns the comparators by feature."""
    compared = [f for f in schema.feature if f.name not in uncompared]
    numbers = [f.name for f in compared if f.type != schema_pb2.BYTES]
    variants = []
    for source in _SOURCES:
        variant = schema_pb2.Schema()
        variant.CopyFrom(schema)
        for feature in variant.feature:
            feature.ClearField("skew_comparator")
            feature.ClearField("drift_comparator")
            if feature.name in uncompared:
                continue
            if feature.type == schema_pb2.BYTES:
                feature.skew_comparator.infinity_norm.threshold = NEVER_FLAGGED
            else:
                divergence = feature.skew_comparator.jensen_shannon_divergence
                divergence.threshold = NEVER_FLAGGED
                divergence.source.type = source
        variants.append(variant)
    signals = scale_signal_of_each(table, variants, numbers)
    candidates: dict[str, list[Comparator]] = {}
    for source, signal, noise in zip(_SOURCES, signals,
                                     noise_of_each(table, variants, sizes, repeats),
                                     strict=True):
        for measured in noise:
            threshold = min(max(measured.suggestion(margin), floor), NEVER_FLAGGED)
            number = measured.feature in numbers
            candidates.setdefault(measured.feature, []).append(Comparator(
                measured.feature, threshold, source if number else None,
                signal.get(measured.feature) if number else None))
    drafted = {name: max(options, key=_power) for name, options in candidates.items()}
    for feature in schema.feature:
        feature.ClearField("skew_comparator")
        feature.ClearField("drift_comparator")
        chosen = drafted.get(feature.name)
        if chosen is None:  # not compared, or nothing to compare
            continue
        for comparator in (feature.skew_comparator, feature.drift_comparator):
            if chosen.source is None:
                comparator.infinity_norm.threshold = chosen.threshold
            else:
                comparator.jensen_shannon_divergence.threshold = chosen.threshold
                comparator.jensen_shannon_divergence.source.type = chosen.source
    return dict(sorted(drafted.items()))


def _power(comparator: Comparator) -> tuple[float, float]:
    """How far a scale shift stands above the threshold; then the lower
    threshold (text has one candidate: power 0)."""
    signal = comparator.signal or 0.0
    return signal / comparator.threshold if comparator.threshold else 0.0, -comparator.threshold


def suggest(noise: list[Noise], margin: float) -> str:
    """A table of the measurements and the suggested thresholds."""
    sizes = sorted({size for n in noise for size in n.largest})
    header = (f"{'feature':<16}{'metric':<28}"
              + "".join(f"{f'max @ {s:,}':>16}" for s in sizes)
              + f"{'current':>10}{'suggested':>11}")
    lines = [header]
    for n in noise:
        lines.append(f"{n.feature:<16}{n.metric:<28}"
                     + "".join(f"{n.largest[s]:>16.4f}" for s in sizes)
                     + f"{n.threshold:>10g}{n.suggestion(margin):>11g}")
    return "\n".join(lines)


def _round_up(value: float, digits: int = 2) -> float:
    if value <= 0:
        return 0.0
    scale = 10 ** (digits - 1 - math.floor(math.log10(value)))
    return math.ceil(value * scale) / scale
