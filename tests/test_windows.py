"""Window features, point-in-time correct.

- The computation against a plain-Python reference on random rows: every
  aggregate, ties in time, values known before or after the row's time, and
  missing times, entities and values.
- The Beam stages over several batches give what the in-memory path gives.
- Leakage: changing a flight's ``dep_delay`` changes no feature of a flight
  scheduled before it actually departed.
- A real run on flights days chosen for their edges (the first hours of the
  year, month ends, a serving input across November and December): every
  row's four features in every split equal a pandas recomputation from the raw
  CSV.
"""

import io
import random

import apache_beam as beam
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines import datasets, nycflights
from pipelines.decode.columns import as_list_array
from pipelines.decode.row_keys import row_keys
from pipelines.decode.windows import (
    WindowFeature,
    Windows,
    aggregate,
    compact_times,
    compact_values,
    merge_events,
    window_features_of_table,
)
from pipelines.errors import UserError
from pipelines.model.inputs import make_dataset
from pipelines.reports.run_dir import RunDir
from pipelines.stages.windows import AddWindowFeatures, WindowEvents
from tests.conftest import run_cli
from transforms import flights

FLIGHTS = datasets.get_dataset("flights")
HOUR, DAY = 3600, 86_400


def event_time(batch) -> pa.Array:
    """The hand-made rows' time: their ``t`` column."""
    return pc.list_element(batch.column("t"), 0)


SAMPLE = Windows(event_time, (
    *(WindowFeature(f"count_{s}", "e", "count", s) for s in (HOUR, DAY, 2 * DAY)),
    *(WindowFeature(f"{a}_{s}_{k}", "e", a, s, value="v", known_after=k, default=-1.0)
      for a in ("sum", "mean", "min", "max") for s in (HOUR, DAY) for k in (None, "k")),
))
TYPES = {"t": pa.int64(), "e": pa.large_binary(), "v": pa.float32(), "k": pa.float32()}


def _random_rows(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)

    def maybe(value, missing):
        return None if rng.random() < missing else value

    # Times on a 10-minute grid over three days: many ties.
    return [{"t": maybe(rng.randrange(0, 3 * DAY, 600), 0.03),
             "e": maybe(rng.choice([b"a", b"b", b"c"]), 0.03),
             "v": maybe(float(rng.randrange(-5, 20)), 0.1),
             "k": maybe(float(rng.randrange(-50, 300)), 0.1)} for _ in range(count)]


def _table(rows: list[dict]) -> pa.Table:
    return pa.table({name: as_list_array(pa.array([r[name] for r in rows], kind))
                     for name, kind in TYPES.items()})


def _reference(rows: list[dict], feature: WindowFeature) -> list[float]:
    """Each row's feature from the other rows, one comparison at a time."""
    out = []
    for i, row in enumerate(rows):
        if row["t"] is None or row[feature.entity] is None:
            out.append(feature.default if feature.aggregate != "count" else 0)
            continue
        values = []
        for j, other in enumerate(rows):
            if (j == i or other["t"] is None or other[feature.entity] != row[feature.entity]
                    or (feature.value and other[feature.value] is None)
                    or (feature.known_after and other[feature.known_after] is None)):
                continue
            known = other["t"] + (round(other[feature.known_after] * 60)
                                  if feature.known_after else 0)
            if row["t"] - feature.seconds <= known < row["t"]:
                values.append(other[feature.value] if feature.value else 1.0)
        if feature.aggregate == "count":
            out.append(len(values))
        elif not values:
            out.append(feature.default)
        else:
            out.append({"sum": sum, "min": min, "max": max,
                        "mean": lambda v: sum(v) / len(v)}[feature.aggregate](values))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_aggregate_equals_a_row_by_row_reference(seed):
    rows = _random_rows(300, seed)
    computed = window_features_of_table(SAMPLE, _table(rows))
    for feature in SAMPLE.features:
        got = computed.column(feature.name).combine_chunks().flatten().to_numpy()
        expected = np.array(_reference(rows, feature), dtype=np.float64)
        np.testing.assert_allclose(got, expected.astype(got.dtype), rtol=1e-6,
                                   err_msg=feature.name)


def _chunk(times: list[int], values: list[float] | None) -> tuple:
    """An event chunk as ``event_chunks`` makes them."""
    return (*compact_times(np.array(times, dtype=np.int64)),
            None if values is None else compact_values(np.array(values, dtype=np.float64)))


def test_events_are_held_compactly_and_give_back_their_exact_values():
    # A batch job holds every row's events: int32 time offsets when they fit,
    # no values for a count, float32 values only where that changes none.
    small = merge_events([_chunk([3, 1], [2.0, 4.0])])
    assert small.offsets.dtype == np.int32 and small.values.dtype == np.float32
    assert small.times.tolist() == [1, 3] and small.sums.tolist() == [0.0, 4.0, 6.0]
    counts = merge_events([_chunk([9, 8], None), _chunk([7], None)])
    assert counts.values is None and counts.times.tolist() == [7, 8, 9]

    whole, fractions = ([100, 5, 2**40], [1.0, -3.0, 7.0]), ([50, 7], [0.1, 1 / 3])
    events = merge_events([_chunk(*whole), _chunk(*fractions)])
    assert events.offsets.dtype == np.int64  # 2**40 seconds apart: no int32
    assert events.values.dtype == np.float64
    assert events.times.tolist() == [5, 7, 50, 100, 2**40]
    assert events.values.tolist() == [-3.0, 1 / 3, 0.1, 1.0, 7.0]
    assert events.sums.tolist() == np.cumsum([0.0, -3.0, 1 / 3, 0.1, 1.0, 7.0]).tolist()
    targets, no_own = np.array([60, 2**40 + 1]), np.zeros(2, dtype=bool)
    for kind, expected in (("sum", [-3.0 + 1 / 3 + 0.1, 7.0]), ("max", [1 / 3, 7.0]),
                           ("min", [-3.0, 7.0]), ("count", [3, 1])):
        feature = WindowFeature(kind, "e", kind, DAY, value=None if kind == "count" else "v")
        got = aggregate(feature, events, targets, no_own, targets, np.zeros(2))
        np.testing.assert_allclose(got, expected, rtol=1e-15, err_msg=kind)


def _features(batch: pa.RecordBatch) -> list[tuple]:
    columns = [batch.column(f.name).flatten().to_pylist() for f in SAMPLE.features]
    return [(t[0] if t else None, *values) for t, *values in zip(
        batch.column("t").to_pylist(), *columns, strict=True)]


def test_the_beam_stages_compute_what_the_in_memory_path_computes():
    rows = _random_rows(400, 7)
    table = _table(rows)
    expected = _features(window_features_of_table(SAMPLE, table).to_batches()[0])
    batches = [table.slice(start, 97).to_batches()[0] for start in range(0, 400, 97)]
    pipeline = test_pipeline.TestPipeline()
    decoded = pipeline | beam.Create(batches)
    events = decoded | WindowEvents(SAMPLE)
    added = decoded | AddWindowFeatures(SAMPLE, events)
    assert_that(added | beam.FlatMap(_features), equal_to(expected))
    pipeline.run()


def _flights_rows(lines: list[bytes], header: bytes) -> pa.Table:
    decoder = FLIGHTS.csv_decoder()
    return pa.Table.from_batches(
        [b for b in decoder.decode(io.BytesIO(header + b"".join(lines)), "slice.csv")
         if isinstance(b, pa.RecordBatch)])


def _lines_of_days(path: str, days: set[tuple[int, int]]) -> tuple[bytes, list[bytes]]:
    with open(path, "rb") as f:
        header = f.readline()
        return header, [line for line in f
                        if tuple(int(v) for v in line.split(b",")[1:3]) in days]


def test_a_delay_changes_no_feature_of_a_flight_scheduled_before_it_departed():
    header, lines = _lines_of_days(nycflights.default_inputs()[0],
                                   {(1, 1), (1, 2), (1, 3)})
    table = _flights_rows(lines, header)
    windows = FLIGHTS.windows()
    before = window_features_of_table(windows, table)
    times = windows.row_times(table.combine_chunks().to_batches()[0])
    delays = table.column("dep_delay").combine_chunks()
    rng = np.random.default_rng(0)
    for row in rng.choice(table.num_rows, 25, replace=False):
        for new_delay in (-30, 0, 45, 600, None):
            changed = delays.to_pylist()
            old = changed[row]
            changed[row] = None if new_delay is None else [new_delay]
            after = window_features_of_table(windows, table.set_column(
                table.schema.get_field_index("dep_delay"), "dep_delay",
                pa.array(changed, delays.type)))
            departures = [times[row] + 60 * d[0] for d in (old, changed[row]) if d]
            if not departures:
                continue  # cancelled both ways: no event, nothing can change
            earlier = times < min(departures)
            for name in windows.names:
                a = before.column(name).combine_chunks().flatten().to_numpy()
                b = after.column(name).combine_chunks().flatten().to_numpy()
                assert np.array_equal(a[earlier], b[earlier]), (row, new_delay, name)


def test_window_declarations_must_match_the_schema():
    schema = FLIGHTS.schema()
    del schema.feature[[f.name for f in schema.feature].index("origin_departures_1h")]
    with pytest.raises(UserError, match="the schema tags"):
        FLIGHTS.windows(schema)


# Days whose edges matter: the year's first hours (nothing before them), the
# ends of January and February, and in serving the end of November.
TRAIN_DAYS = {(1, 1), (1, 2), (1, 31), (2, 1), (2, 28), (3, 1)}
SERVING_DAYS = {(11, 30), (12, 1)}


def _pandas_reference(path: str) -> pd.DataFrame:
    """The four features from the raw CSV, by pandas and numpy, row by row."""
    frame = pd.read_csv(path, keep_default_na=True, na_values=["NA"])
    hour = pd.to_datetime(frame["time_hour"], format="%Y-%m-%dT%H:%M:%SZ", utc=True)
    t = (hour - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(seconds=1)
    t = t.to_numpy() + 60 * (frame["sched_dep_time"].to_numpy() % 100)
    departed = t + 60 * frame["dep_delay"].to_numpy()
    delay = frame["dep_delay"].to_numpy()
    result = {}
    for entity in ("origin", "carrier"):
        values = frame[entity].to_numpy()
        counts, means = np.zeros(len(frame), dtype=np.int64), np.zeros(len(frame))
        for i in range(len(frame)):
            others = (values == values[i]) & (np.arange(len(frame)) != i)
            counts[i] = np.sum(others & (t >= t[i] - HOUR) & (t < t[i]))
            known = others & ~np.isnan(delay) & (departed >= t[i] - DAY) & (departed < t[i])
            means[i] = delay[known].mean() if known.any() else 0.0
        result[f"{entity}_departures_1h"] = counts
        result[f"{entity}_dep_delay_mean_24h"] = means
    result["row"] = frame["year"].astype(str) + "|" + frame["month"].astype(str) + "|" + \
        frame["day"].astype(str) + "|" + frame["carrier"] + "|" + \
        frame["flight"].astype(str) + "|" + frame["origin"]
    return pd.DataFrame(result)


@pytest.fixture(scope="module")
def edge_days_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("windows")
    inputs = {}
    for name, source, days in (("train", 0, TRAIN_DAYS), ("serving", 1, SERVING_DAYS)):
        header, lines = _lines_of_days(nycflights.default_inputs()[source], days)
        inputs[name] = str(base / f"{name}.csv")
        with open(inputs[name], "wb") as f:
            f.write(header + b"".join(lines))
    out = str(base / "out")
    result = run_cli("run", "--dataset", "flights", "--train_input", inputs["train"],
                     "--serving_input", inputs["serving"], "--output_dir", out)
    assert result.returncode == 0, result.stderr[-3000:]
    return RunDir(out), inputs


def _written(run: RunDir, split: str) -> dict[int, dict]:
    written = {}
    for features in make_dataset(run, split, 4096, with_row_key=True):
        keys = features["row_key"].numpy()
        for name in flights.WINDOW_NAMES:
            for key, value in zip(keys, features[name].numpy(), strict=True):
                written.setdefault(int(key), {})[name] = value
    return written


@pytest.fixture(scope="module")
def references(edge_days_run):
    _, inputs = edge_days_run
    found = {}
    for name, path in inputs.items():
        reference = _pandas_reference(path)
        # Flights are keyed by date, carrier, flight number and origin: the row_key.
        reference["row_key"] = row_keys(reference["row"].tolist())
        found[name] = reference.set_index("row_key")
    return found


@pytest.mark.slow
@pytest.mark.parametrize("split", ["train", "eval", "serving"])
def test_every_rows_window_features_equal_pandas(edge_days_run, references, split):
    run, _ = edge_days_run
    by_key = references["serving" if split == "serving" else "train"]
    written = _written(run, split)
    assert len(written) == run.record.rows.of(split) > 300
    month_starts = year_start = 0
    for key, values in written.items():
        expected = by_key.loc[key]
        for name in flights.WINDOW_NAMES:
            assert values[name] == pytest.approx(np.float32(expected[name]), rel=1e-6), (
                key, name)
        date = expected["row"].split("|")[1:3]
        month_starts += date in (["2", "1"], ["3", "1"], ["12", "1"])
        year_start += date == ["1", "1"] and values["origin_departures_1h"] == 0
    assert month_starts > 50  # rows whose windows reach into the month before
    if split != "serving":
        assert year_start > 0  # the year's first flights from an airport: nothing before


# Streaming: real rows of the year's first hours, in event-time order.
LATENESS, EARLY = 300, 3600


def _one_row_batches(table: pa.Table) -> list[pa.RecordBatch]:
    """One batch per row, each holding its own row only, as a Pub/Sub message
    decodes into (a slice would carry, and pickle, every row's buffers)."""
    batch = table.combine_chunks().to_batches()[0]
    return [batch.take(pa.array([i])) for i in range(batch.num_rows)]


def _key(batch: pa.RecordBatch) -> int:
    return batch.column("row_key")[0].as_py()[0]


def _by_key(batches) -> dict[int, tuple]:
    names = flights.WINDOW_NAMES
    found = {}
    for batch in batches:
        for i in range(batch.num_rows):
            key = batch.column("row_key")[i].as_py()[0]
            found[key] = tuple(batch.column(n)[i].as_py()[0] for n in names)
    return found


@pytest.mark.slow
def test_streaming_gives_every_row_the_batch_features():
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
    from apache_beam.testing.test_stream import TestStream
    from apache_beam.transforms.window import TimestampedValue

    from pipelines.stages.windows import StreamingWindowFeatures

    header, lines = _lines_of_days(nycflights.default_inputs()[0], {(1, 1)})
    table = _flights_rows(lines[:400], header)
    windows = FLIGHTS.windows()
    rows = _one_row_batches(table)
    times = [int(windows.row_times(r)[0]) for r in rows]
    # Late: three early EWR flights of UA, the busiest airport and carrier,
    # sent once the watermark has passed them by hours.
    late = [i for i, r in enumerate(rows)
            if r.column("origin")[0].as_py() == [b"EWR"]
            and r.column("carrier")[0].as_py() == [b"UA"]][5:8]
    on_time = [i for i in range(len(rows)) if i not in late]
    assert len({_key(r) for r in rows}) == len(rows)

    # Each quarter hour's rows, then the watermark to its end.
    stream = TestStream()
    for quarter in sorted({times[i] // 900 for i in on_time}):
        stream = stream.add_elements([TimestampedValue(rows[i], times[i]) for i in on_time
                                      if times[i] // 900 == quarter])
        stream = stream.advance_watermark_to((quarter + 1) * 900)
    # Time moves on past every row's wait; what comes at the end of time would
    # be too late for the assertion's own grouping.
    stream = stream.advance_watermark_to(max(times) + LATENESS + EARLY + 1)
    stream = stream.add_elements([TimestampedValue(rows[i], times[i]) for i in late])
    stream = stream.advance_watermark_to_infinity()

    reference = _by_key(window_features_of_table(
        windows, pa.Table.from_batches([rows[i] for i in on_time])).to_batches())
    late_keys = sorted(_key(rows[i]) for i in late)

    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    with beam.Pipeline(options=options) as pipeline:
        enriched = pipeline | stream | StreamingWindowFeatures(windows, LATENESS, EARLY)
        assert_that(enriched["rows"] | "Rows" >> beam.Map(lambda b: _by_key([b]).popitem()),
                    equal_to(list(reference.items())), label="EveryRowsFeatures")
        assert_that(enriched["late"] | "Late" >> beam.Map(_key),
                    equal_to(late_keys), label="LateRows")
