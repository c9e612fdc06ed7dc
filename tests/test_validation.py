"""Skew and drift comparators on real flights rows: each fires on a crafted
shift and stays quiet on a random split of the same data. Statistics are
computed in memory with the ``GenerateStats`` stage's options, and the stage
itself is shown to measure the same skew."""


import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from apache_beam.testing import test_pipeline
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import datasets, layout
from pipelines.commands import suggest_thresholds as thresholds
from pipelines.decode import row_keys
from pipelines.decode.columns import as_list_array
from pipelines.decode.files import decoded_table
from pipelines.decode.row_keys import ROW_KEY
from pipelines.reports import explanations
from pipelines.reports.anomalies import comparisons, load_statistics
from pipelines.stages import statistics as stages_statistics

FLIGHTS = datasets.get_dataset("flights")
SCHEMA = FLIGHTS.schema()
ROWS = 20_000
COMPARED = sorted(f.name for f in SCHEMA.feature if f.skew_comparator.ByteSize())
CATEGORICAL = {f.name for f in SCHEMA.feature if f.type == schema_pb2.BYTES}


def _rows(path: str) -> pa.RecordBatch:
    table = decoded_table(FLIGHTS.csv_decoder(SCHEMA), [path], ROWS).table
    return FLIGHTS.preparation(SCHEMA).prepare_table(table, layout.TRAIN).combine_chunks(
    ).to_batches()[0]


def _replace(batch: pa.RecordBatch, name: str, column: pa.Array) -> pa.RecordBatch:
    arrays = [column if n == name else batch.column(n) for n in batch.schema.names]
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


def _shifted(batch: pa.RecordBatch, name: str) -> pa.RecordBatch:
    """A quarter of the rows moved to the most common value (categories), or
    every value moved up by one standard deviation (numbers)."""
    column = batch.column(name)
    values = column.flatten()
    if name in CATEGORICAL:
        common = pc.value_counts(values).to_pylist()
        common = max(common, key=lambda c: c["counts"])["values"]
        rows = column.to_pylist()
        quarter = len(rows) // 4
        shifted = [[common] if r is not None else None for r in rows[:quarter]] + rows[quarter:]
        return _replace(batch, name, as_list_array(pa.array(
            [None if r is None else r[0] for r in shifted], pa.large_binary())))
    std = np.std(values.to_numpy())
    moved = pc.add(values, pa.scalar(int(round(std)) or 1, values.type))
    return _replace(batch, name, pa.LargeListArray.from_arrays(
        column.offsets, moved, mask=column.is_null()))


def _splits() -> dict[str, pa.RecordBatch]:
    """The train and eval sides of a random split of real rows, and one copy of
    the eval side per comparator, shifted in that feature."""
    rows = _rows(FLIGHTS.default_inputs()[0])
    is_eval = row_keys.split_buckets(rows.column(ROW_KEY).flatten().to_numpy()) < 20
    train, held_out = rows.filter(pa.array(~is_eval)), rows.filter(pa.array(is_eval))
    batches = {"train": train, "random": held_out}
    batches |= {f"shift_{name}": _shifted(held_out, name) for name in COMPARED}
    unknown_carrier = held_out.column("carrier").to_pylist()
    for i in range(0, len(unknown_carrier), 10):  # a tenth: over the 0.06 threshold
        unknown_carrier[i] = [b"XX"]
    batches["unknown_carrier"] = _replace(
        held_out, "carrier", pa.array(unknown_carrier, pa.large_list(pa.large_binary())))
    return batches


@pytest.fixture(scope="module")
def splits() -> dict[str, pa.RecordBatch]:
    return _splits()


@pytest.fixture(scope="module")
def statistics(splits):
    """Each split's statistics, computed in memory with the stage's options (a
    Beam pipeline per variant would cost seconds each;
    ``test_the_stage_measures_skew_as_in_memory_statistics`` ties the two)."""
    options = stages_statistics.stats_options(SCHEMA)
    return {name: stats_impl.generate_statistics_in_memory(batch, options)
            for name, batch in splits.items()}


def test_the_stage_measures_skew_as_in_memory_statistics(splits, statistics, tmp_path):
    """The pipeline's own GenerateStats stage gives the same skew measurements
    as the statistics the other tests compute in memory (its top values come
    from a sketch, so the statistics themselves may differ in the tail)."""
    pipeline = test_pipeline.TestPipeline()
    _ = ({name: pipeline | f"Create{name}" >> beam.Create([splits[name]])
          for name in ("train", "random", "shift_origin")}
         | stages_statistics.GenerateStats(SCHEMA, str(tmp_path)))
    pipeline.run()
    staged = {name: load_statistics(layout.stats_file(str(tmp_path), name))
              for name in ("train", "random", "shift_origin")}
    for name in ("random", "shift_origin"):
        from_stage = comparisons(
            stages_statistics.validate_split(staged[name], SCHEMA, staged["train"]), "skew")
        in_memory = comparisons(
            stages_statistics.validate_split(statistics[name], SCHEMA, statistics["train"]),
            "skew")
        assert sorted(from_stage) == COMPARED
        assert from_stage == in_memory, name
    assert staged["train"].datasets[0].num_examples == splits["train"].num_rows


def test_a_random_split_of_the_same_data_is_quiet(statistics):
    anomalies = stages_statistics.validate_split(statistics["random"], SCHEMA, statistics["train"])
    measured = comparisons(anomalies, "skew")
    assert sorted(measured) == COMPARED
    assert all(m["ok"] for m in measured.values()), measured
    assert not anomalies.anomaly_info


@pytest.mark.parametrize("feature", COMPARED)
def test_each_comparator_fires_on_a_shift_of_its_feature(statistics, feature):
    shifted = statistics[f"shift_{feature}"]
    skew = comparisons(
        stages_statistics.validate_split(shifted, SCHEMA, statistics["train"]), "skew")
    assert not skew[feature]["ok"], skew[feature]
    expected = "L_infinity" if feature in CATEGORICAL else "Jensen-Shannon divergence"
    assert skew[feature]["metric"] == expected
    # Drift uses the same comparators against a former span.
    drift = comparisons(
        stages_statistics.validate_split(shifted, SCHEMA, previous_statistics=statistics["random"]),
        "drift")
    assert not drift[feature]["ok"], drift[feature]


def test_anomalies_are_explained_with_the_likely_fix(statistics):
    anomalies = stages_statistics.validate_split(statistics["unknown_carrier"], SCHEMA,
                                          statistics["train"])
    findings = explanations.explain(anomalies, "schemas/flights.pbtxt")
    domain = [f for f in findings if f.kind == "schema"]
    assert [f.feature for f in domain] == ["carrier"]
    assert "XX" in domain[0].text
    assert domain[0].fix.startswith(
        "Add the values to `carrier`'s domain in `schemas/flights.pbtxt` if they are legitimate")
    skewed = [f for f in findings if f.kind == "skew"]
    assert skewed and all("suggest-thresholds" in f.fix for f in skewed)


def test_schema_thresholds_sit_above_the_noise_of_a_5000_row_run(flights_slices):
    noise = thresholds.measure_noise("flights", flights_slices[0], [0], repeats=10)
    assert sorted(n.feature for n in noise) == COMPARED
    for n in noise:
        assert max(n.largest.values()) < n.threshold, n
        assert n.suggestion(1.5) >= max(n.largest.values()) * 1.5


def test_suggestions_round_up_to_two_significant_digits():
    n = thresholds.Noise("f", "L_infinity", 0.06, {5000: 0.03791})
    assert n.suggestion(1.5) == 0.057
