"""``transforms.flights.preprocessing_fn`` on five hand-written rows.

The rows go through the package's own CSV decoder, so TFT receives exactly the
Arrow batches the pipeline feeds it. Expected values are worked out here
independently of TensorFlow: by hand, with ``math`` and ``datetime``, and with
pyfarmhash for the hash buckets (TFT hashes with farmhash Fingerprint64).
"""

import datetime
import io
import math

import farmhash
import numpy as np
import pyarrow as pa
from tensorflow_transform.beam import tft_unit

from pipelines import datasets
from pipelines.decode.columns import RejectedRow, as_list_array
from pipelines.stages.transform import tensor_adapter_config
from transforms import flights

HEADER = (b"year,month,day,dep_time,sched_dep_time,dep_delay,arr_time,sched_arr_time,"
          b"arr_delay,carrier,flight,tailnum,origin,dest,air_time,distance,hour,minute,"
          b"time_hour\n")
ROWS = [
    # on time
    b"2013,1,1,500,500,0,800,810,-10,UA,1,N1,EWR,IAH,200,100,5,0,2013-01-01T10:00:00Z\n",
    # 30 minutes late
    b"2013,3,1,810,800,10,1130,1100,30,UA,2,N2,JFK,MIA,150,200,8,0,2013-03-01T13:00:00Z\n",
    # diverted: departed, no arrival delay recorded
    b"2013,2,28,1120,1100,20,NA,1400,NA,AA,3,N3,EWR,IAH,NA,400,11,0,2013-02-28T16:00:00Z\n",
    # cancelled, no tail number
    b"2013,12,31,NA,1400,NA,NA,1700,NA,DL,4,NA,LGA,ATL,NA,800,14,0,2013-12-31T19:00:00Z\n",
    # exactly 15 minutes late is not "delayed"
    b"2013,6,15,1730,1700,30,2000,1945,15,UA,5,N5,EWR,ORD,120,1600,17,0,2013-06-15T21:00:00Z\n",
]
DATES = [(2013, 1, 1), (2013, 3, 1), (2013, 2, 28), (2013, 12, 31), (2013, 6, 15)]
HOURS = [5, 8, 11, 14, 17]
DISTANCES = [100, 200, 400, 800, 1600]
CARRIERS = ["UA", "UA", "AA", "DL", "UA"]
ORIGINS = ["EWR", "JFK", "EWR", "LGA", "EWR"]
DESTS = ["IAH", "MIA", "IAH", "ATL", "ORD"]
TAILNUMS = ["N1", "N2", "N3", "", "N5"]  # a missing tail number hashes as ""
# Vocabularies are ordered by frequency, ties by value in descending order.
VOCABULARIES = {
    "carrier": ["UA", "DL", "AA"],
    "origin": ["EWR", "LGA", "JFK"],
    "dest": ["IAH", "ORD", "MIA", "ATL"],
}


# The window features, as a feature store would supply them (the pipeline's
# own computation is tested in tests/test_windows.py): counts, then means.
WINDOWS = {
    "origin_departures_1h": [0, 3, 1, 2, 4],
    "carrier_departures_1h": [5, 0, 0, 1, 9],
    "origin_dep_delay_mean_24h": [0.0, 12.5, -3.0, 7.0, 1.5],
    "carrier_dep_delay_mean_24h": [2.0, 0.0, 4.0, 8.0, 6.0],
}


# The weather joined to each flight (the join is tested in tests/test_lookups.py);
# the third flight's hour has no observation.
WEATHER = {
    "temp": [40.0, 50.0, None, 60.0, 70.0],
    "wind_speed": [10.0, 5.0, None, 15.0, 10.0],
    "precip": [0.0, 0.0, None, 0.5, 0.1],
    "visib": [10.0, 10.0, None, 2.0, 8.0],
}


def _decoded_rows():
    dataset = datasets.get_dataset("flights")
    schema = dataset.schema()
    decoder = dataset.csv_decoder(schema)
    (batch,) = list(decoder.decode(io.BytesIO(HEADER + b"".join(ROWS)), "rows.csv"))
    assert not isinstance(batch, RejectedRow)
    joined = [as_list_array(pa.array(WEATHER[c], pa.float32()))
              for lookup in dataset.lookups(schema) for c in lookup.columns]
    windows = [as_list_array(pa.array(WINDOWS[f.name], f.arrow_type))
               for f in dataset.windows(schema).features]
    batch = pa.RecordBatch.from_arrays([*batch.columns, *joined, *windows],
                                       schema=dataset.preparation(schema).output_schema(
                                           decoder.output_schema))
    return [batch], tensor_adapter_config(batch.schema, schema)


def _z_scores_imputed(values: list) -> list[float]:
    """z-scores with the present values' mean and deviation; a missing value 0."""
    present = np.array([v for v in values if v is not None], dtype=np.float64)
    return [0.0 if v is None else (v - present.mean()) / present.std() for v in values]


def _expected_rows():
    # dep_delay 0, 10, 20, missing, 30: the present values have mean 15 and
    # variance 125; the missing one is imputed with the mean, a z-score of 0.
    dep_delay_z = [x / math.sqrt(125) for x in (-15, -5, 5, 0, 15)]
    log_distance = np.log1p(np.array(DISTANCES, dtype=np.float64))
    distance_log = (log_distance - log_distance.mean()) / log_distance.std()
    rows = []
    for i, (year, month, day) in enumerate(DATES):
        weekday = datetime.date(year, month, day).weekday()  # Monday = 0
        rows.append({
            "dep_delay_z": dep_delay_z[i],
            "dep_delay_missing": [0, 0, 0, 1, 0][i],
            "distance_log": distance_log[i],
            # Ten quantile buckets over five distinct values: the nine boundaries
            # are 100 and then each larger value twice, and a value's bucket is
            # the number of boundaries at or below it.
            "distance_bucket": [1, 3, 5, 7, 9][i],
            # minutes of the day 300..1020 scaled to 0..1
            "sched_dep_minute_01": [0.0, 0.25, 0.5, 0.75, 1.0][i],
            "sched_hour_sin": math.sin(2 * math.pi * HOURS[i] / 24),
            "sched_hour_cos": math.cos(2 * math.pi * HOURS[i] / 24),
            "day_of_week_sin": math.sin(2 * math.pi * weekday / 7),
            "day_of_week_cos": math.cos(2 * math.pi * weekday / 7),
            "carrier_id": VOCABULARIES["carrier"].index(CARRIERS[i]),
            "origin_id": VOCABULARIES["origin"].index(ORIGINS[i]),
            "dest_id": VOCABULARIES["dest"].index(DESTS[i]),
            "tailnum_hash": farmhash.fingerprint64(TAILNUMS[i]) % flights.TAILNUM_HASH_BUCKETS,
            "origin_x_dest": farmhash.fingerprint64(f"{ORIGINS[i]}_{DESTS[i]}")
            % flights.ROUTE_HASH_BUCKETS,
            "delayed": [0, 1, 1, 1, 0][i],
            **{name: values[i] for name, values in WINDOWS.items()},
            **{f"{name}_z": _z_scores_imputed(values)[i] for name, values in WEATHER.items()},
            "weather_missing": int(WEATHER["temp"][i] is None),
        })
    return rows


class FlightsPreprocessingTest(tft_unit.TransformTestCase):
    test_session = None  # tf.test.TestCase's old helper, which pytest would collect


    def test_preprocessing_fn(self):
        batches, adapter_config = _decoded_rows()
        self.assertAnalyzeAndTransformResults(
            batches, adapter_config, flights.preprocessing_fn,
            expected_data=_expected_rows(),
            expected_vocab_file_contents={
                name: [v.encode() for v in values] for name, values in VOCABULARIES.items()})

    def test_preprocessing_fn_without_context(self):
        # The same rows without the window and weather features: the same
        # values for every other output (benchmarks/compare.py's second job).
        batches, adapter_config = _decoded_rows()
        context = {*WINDOWS, *(f"{name}_z" for name in WEATHER), "weather_missing"}
        self.assertAnalyzeAndTransformResults(
            batches, adapter_config, flights.preprocessing_fn_without_context,
            expected_data=[{k: v for k, v in row.items() if k not in context}
                           for row in _expected_rows()],
            expected_vocab_file_contents={
                name: [v.encode() for v in values] for name, values in VOCABULARIES.items()})
