"""``--sketch_statistics``: ``GenerateStats`` takes string features' top values
and unique counts from TFDV's sketches. Below the sketches' sizes they are the
exact statistics; past the Misra-Gries sketch's 1,024 buckets its rank
histogram's counts are estimates, while the exact default counts every value."""

import apache_beam as beam
import pyarrow as pa
from apache_beam.testing import test_pipeline
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import layout
from pipelines.decode.columns import as_list_array
from pipelines.reports.anomalies import load_statistics
from pipelines.stages.statistics import GenerateStats

SCHEMA = text_format.Parse(
    'feature { name: "few" type: BYTES } feature { name: "many" type: BYTES }',
    schema_pb2.Schema())
# "few": five values; "many": 3,000 values seen once and one seen 200 times.
FEW = [f"f{i % 5}".encode() for i in range(3200)]
MANY = [f"m{i:04d}".encode() for i in range(3000)] + [b"heavy"] * 200


def _statistics(tmp_path, sketch: bool) -> dict:
    batch = pa.RecordBatch.from_arrays(
        [as_list_array(pa.array(FEW)), as_list_array(pa.array(MANY))], ["few", "many"])
    pipeline = test_pipeline.TestPipeline()
    _ = ({layout.TRAIN: pipeline | beam.Create([batch])}
         | GenerateStats(SCHEMA, str(tmp_path), sketch=sketch))
    pipeline.run()
    statistics = load_statistics(layout.stats_file(str(tmp_path), layout.TRAIN))
    return {f.path.step[0]: f.string_stats for f in statistics.datasets[0].features}


def test_sketches_match_exact_counts_below_their_sizes_and_estimate_past_them(tmp_path):
    exact = _statistics(tmp_path / "exact", sketch=False)
    sketched = _statistics(tmp_path / "sketch", sketch=True)
    assert exact["few"] == sketched["few"]
    assert [(v.value, v.frequency) for v in exact["few"].top_values] == [
        (f"f{i}", 640.0) for i in (4, 3, 2, 1, 0)]  # ties: the larger value first
    # 3,001 distinct values: the KMV sketch (16,384) counts them exactly, and
    # the most frequent value is found by both.
    assert exact["many"].unique == sketched["many"].unique == 3001
    assert exact["many"].top_values[0].value == sketched["many"].top_values[0].value == "heavy"
    assert exact["many"].top_values[0].frequency == 200
    # Past 1,024 distinct values the sketch's counts are estimates: the exact
    # rank histogram counts each single value once, the sketch's does not.
    exact_tail = [b.sample_count for b in exact["many"].rank_histogram.buckets[1:]]
    sketched_tail = [b.sample_count for b in sketched["many"].rank_histogram.buckets[1:]]
    assert set(exact_tail) == {1.0}
    assert sketched_tail != exact_tail
