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
"""

import dataclasses
import math

import numpy as np
import pyarrow as pa
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import datasets, layout
from pipelines.decode.files import decoded_table, match_files
from pipelines.decode.row_keys import DEFAULT_EVAL_FRACTION
from pipelines.errors import UserError
from pipelines.reports.anomalies import comparisons
from pipelines.stages.statistics import stats_options, validate_split

__all__ = ["HELD_OUT", "Noise", "measure_noise", "noise_between_halves", "suggest",
           "suggest_thresholds"]

HELD_OUT = DEFAULT_EVAL_FRACTION  # random parts the size of the default split's


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
    options = stats_options(schema)
    rng = np.random.default_rng(seed)
    noise: dict[str, Noise] = {}
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
            anomalies = validate_split(held, schema, train)
            for feature, m in comparisons(anomalies, "skew").items():
                entry = noise.setdefault(feature, Noise(feature, m["metric"], m["threshold"], {}))
                entry.largest[len(rows)] = max(entry.largest.get(len(rows), 0.0), m["value"])
    return sorted(noise.values(), key=lambda n: n.feature)


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
