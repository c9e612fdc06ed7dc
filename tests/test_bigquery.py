"""BigQuery input, offline: the generated SQL (golden strings), the conversion of
BigQuery rows, and agreement between the warehouse's split and the local one."""

import io
import os

import apache_beam as beam
import pytest
from apache_beam.testing import test_pipeline
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import cli, datasets
from pipelines.decode import bigquery, row_keys
from pipelines.decode.columns import Column, RejectedRow, columns_from_schema
from pipelines.decode.row_keys import ROW_KEY
from pipelines.stages import bigquery as stages_bigquery
from pipelines.stages.counters import row_counts

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")
FLIGHTS = datasets.get_dataset("flights")
COLUMNS = columns_from_schema(FLIGHTS.schema())
KEYS = FLIGHTS.csv_format.key_columns
CSV_HEADER = (b"year,month,day,dep_time,sched_dep_time,dep_delay,arr_time,sched_arr_time,"
              b"arr_delay,carrier,flight,tailnum,origin,dest,air_time,distance,hour,minute,"
              b"time_hour\n")
CSV_ROW = (b"2013,1,1,517,515,2,830,819,11,UA,1545,N14228,EWR,IAH,227,1400,5,15,"
           b"2013-01-01T10:00:00Z\n")
# The same flight as BigQuery returns it: INT64 as int, STRING as str, NULL as None.
BIGQUERY_ROW = {
    "year": 2013, "month": 1, "day": 1, "dep_time": 517, "sched_dep_time": 515,
    "dep_delay": 2, "arr_time": 830, "sched_arr_time": 819, "arr_delay": 11,
    "carrier": "UA", "flight": 1545, "tailnum": "N14228", "origin": "EWR", "dest": "IAH",
    "air_time": 227, "distance": 1400, "hour": 5, "minute": 15,
    "time_hour": "2013-01-01T10:00:00Z",
}


def _golden(name: str) -> str:
    with open(os.path.join(GOLDEN, name)) as f:
        return f.read()


@pytest.mark.parametrize("golden, source", [
    ("bigquery_table.sql", bigquery.BigQueryInput(table="my-project.flights.flights_2013")),
    ("bigquery_table_prepared.sql", bigquery.BigQueryInput(
        table="my-project.flights.flights_2013", where="origin != 'LGA'",
        serving_where="month >= 11", sample_percent=12.5)),
    ("bigquery_query.sql", bigquery.BigQueryInput(
        query="SELECT * FROM `my-project.flights.flights_2013` WHERE year = 2013;")),
])
def test_generated_sql_is_pinned(golden, source):
    assert bigquery.build_query(source, COLUMNS, KEYS, row_keys.eval_percent(0.2)) == _golden(
        golden)


def test_sql_split_is_farm_fingerprint_of_the_local_key():
    sql = bigquery.build_query(bigquery.BigQueryInput(table="p.d.t"), COLUMNS, KEYS, 20)
    key = ("CONCAT(CAST(year AS STRING), '|', CAST(month AS STRING), '|', "
           "CAST(day AS STRING), '|', CAST(carrier AS STRING), '|', "
           "CAST(flight AS STRING), '|', CAST(origin AS STRING))")
    assert f"WHEN MOD(ABS(FARM_FINGERPRINT({key})), 100) < 20 THEN 'eval'" in sql
    # What that CONCAT yields for a row is what the local split fingerprints.
    decoder = bigquery.RowDecoder(COLUMNS, KEYS)
    assert decoder.keys([BIGQUERY_ROW]) == ["2013|1|1|UA|1545|EWR"]


def test_a_row_gets_the_same_key_from_csv_and_from_bigquery():
    csv_decoder = FLIGHTS.csv_decoder()
    (from_csv,) = list(csv_decoder.decode(io.BytesIO(CSV_HEADER + CSV_ROW), "f.csv"))
    (from_bigquery,) = list(bigquery.RowDecoder(COLUMNS, KEYS).decode([BIGQUERY_ROW], "bq"))
    assert from_bigquery.schema == from_csv.schema
    assert from_bigquery.to_pydict() == from_csv.to_pydict()
    expected_key = row_keys.row_keys(["2013|1|1|UA|1545|EWR"])[0]
    assert from_bigquery.column(ROW_KEY).flatten().to_pylist() == [expected_key]


def test_bigquery_nulls_are_missing_and_bad_rows_rejected():
    rows = [
        {**BIGQUERY_ROW, "dep_delay": None, "tailnum": None},
        {**BIGQUERY_ROW, "carrier": None},
        {**BIGQUERY_ROW, "distance": 14.5},
    ]
    items = list(bigquery.RowDecoder(COLUMNS, KEYS).decode(rows, "bigquery"))
    rejected = [i.reason for i in items if isinstance(i, RejectedRow)]
    assert rejected == ["carrier: missing required value", "distance: 14.5 is not INT"]
    (batch,) = [i for i in items if not isinstance(i, RejectedRow)]
    assert batch.column("dep_delay").to_pylist() == [None]
    assert batch.column("tailnum").to_pylist() == [None]
    assert batch.column("carrier").to_pylist() == [[b"UA"]]


def test_rows_labelled_against_the_local_split_are_counted():
    decoder = bigquery.RowDecoder(COLUMNS, KEYS)
    rows = [{**BIGQUERY_ROW, "flight": n} for n in range(100)]
    buckets = row_keys.split_buckets(row_keys.row_keys(decoder.keys(rows)))
    for row, bucket in zip(rows, buckets, strict=True):
        row["split"] = "eval" if bucket < 20 else "train"
    rows[0]["split"] = "train" if rows[0]["split"] == "eval" else "eval"  # one disagrees
    pipeline = test_pipeline.TestPipeline()
    _ = (pipeline | beam.Create([rows])
         | beam.ParDo(stages_bigquery._DecodeRows(decoder, 20)).with_outputs("rejected", main="b"))
    result = pipeline.run()
    assert row_counts(result)["read"] == 100
    counters = result.metrics().query()["counters"]
    assert sum(c.committed for c in counters
               if c.key.metric.name == "rows_split_disagreements") == 1


@pytest.mark.parametrize("args, message", [
    (["--where", "month = 1"], "need --bigquery_table or --bigquery_query"),
    (["--bigquery_table", "p.d.t", "--train_input", "x.csv"], "exclude each other"),
    (["--bigquery_table", "p.d.t", "--limit", "5"], "use --sample_percent"),
    (["--bigquery_table", "not-a-table"], "must be PROJECT.DATASET.TABLE"),
    (["--bigquery_table", "p.d.t", "--sample_percent", "0"], "--sample_percent must be in"),
    (["--bigquery_table", "p.d.t", "--bigquery_query", "SELECT 1"], "exactly one of"),
])
def test_bigquery_flag_errors(tmp_path, capsys, args, message):
    assert cli.main(["run", "--output_dir", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err


def test_bigquery_sql_command_prints_the_query(capsys):
    assert cli.main(["bigquery-sql", "--bigquery_table", "my-project.flights.flights_2013"]) == 0
    assert capsys.readouterr().out == _golden("bigquery_table.sql")


def test_keyless_sql_writes_every_value_as_the_local_key_text():
    columns = [Column("id", schema_pb2.INT, True), Column("score", schema_pb2.FLOAT, False),
               Column("name", schema_pb2.BYTES, False)]
    sql = bigquery.build_query(bigquery.BigQueryInput(table="p.d.t"), columns, (), 20)
    # NULL as \N ('\\N' in a BigQuery literal), floats through FORMAT('%.17g').
    key = ("CONCAT(IFNULL(CAST(id AS STRING), '\\\\N'), '|', "
           "IFNULL(FORMAT('%.17g', score), '\\\\N'), '|', IFNULL(name, '\\\\N'))")
    assert f"WHEN MOD(ABS(FARM_FINGERPRINT({key})), 100) < 20 THEN 'eval'" in sql
