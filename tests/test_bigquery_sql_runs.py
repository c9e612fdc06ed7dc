"""The generated BigQuery SQL, executed: golden strings prove the SQL did not
change, this proves it labels every row as the local split does.

sqlglot transpiles what ``bigquery-sql`` generates from BigQuery's dialect to
DuckDB's, and DuckDB runs it over the same CSV files the pipeline reads, with
``FARM_FINGERPRINT`` registered as a function over this package's fingerprint
(pyfarmhash, checked against BigQuery's published values in test_split.py).
Two mappings are this harness's, not the package's: BigQuery's ``FORMAT`` is
printf-style, which in DuckDB is ``PRINTF`` (sqlglot maps it to DuckDB's
fmt-style ``FORMAT``), and ``PROJECT.DATASET.TABLE`` becomes a DuckDB view.
"""

import duckdb
import numpy as np
import pyarrow as pa
import sqlglot
from sqlglot import exp
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import datasets
from pipelines.decode import row_keys
from pipelines.decode.bigquery import BigQueryInput, build_query
from pipelines.decode.columns import Column, CsvFormat, columns_from_schema
from pipelines.decode.csv_decoder import CsvDecoder
from pipelines.decode.files import decoded_table

_DUCKDB_TYPES = {schema_pb2.INT: "BIGINT", schema_pb2.FLOAT: "DOUBLE",
                 schema_pb2.BYTES: "VARCHAR"}


def _farm_fingerprint(texts: pa.Array) -> pa.Array:
    return pa.array(row_keys.row_keys(texts.to_pylist()), pa.int64())


def _printf(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Format):
        return exp.Anonymous(this="PRINTF", expressions=[node.this, *node.expressions])
    return node


def _run(sql: str, table: str, paths: list[str], columns: list[Column],
         null: str) -> list[tuple]:
    """The BigQuery ``sql`` run by DuckDB over ``paths`` loaded as ``table``."""
    con = duckdb.connect()
    con.create_function("FARM_FINGERPRINT", _farm_fingerprint, ["VARCHAR"], "BIGINT",
                        type="arrow")
    types = ", ".join(f"'{c.name}': '{_DUCKDB_TYPES[c.type]}'" for c in columns)
    files = ", ".join(f"'{p}'" for p in paths)
    con.execute(f"CREATE VIEW source_rows AS SELECT * FROM read_csv([{files}], header=true, "
                f"nullstr='{null}', columns={{{types}}})")
    duck = sqlglot.parse_one(sql, read="bigquery").transform(_printf).sql("duckdb")
    duck = duck.replace(".".join(f'"{part}"' for part in table.split(".")), "source_rows")
    return con.execute(duck).fetchall()


def _keys_of(batch: pa.RecordBatch, names: tuple[str, ...]) -> list[tuple]:
    """Each row's values of the required columns ``names``, text as ``str``."""
    columns = []
    for name in names:
        values = batch.column(name).flatten()
        if pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):
            values = values.cast(pa.large_string())
        columns.append(values.to_pylist())
    return list(zip(*columns, strict=True))


def _local_splits(decoder: CsvDecoder, train: str, serving: str | None,
                  key_names: tuple[str, ...], key=tuple) -> dict:
    """What the pipeline decides for each row of the CSV files, by ``key`` of the
    row's values of ``key_names``."""
    splits = {}
    for path, name in ((train, None), (serving, "serving")):
        if path is None:
            continue
        table = decoded_table(decoder, [path]).table
        batch = table.combine_chunks().to_batches()[0]
        in_eval = row_keys.is_eval(batch, 20)
        for values, e in zip(_keys_of(batch, key_names), in_eval, strict=True):
            splits[key(values)] = name or ("eval" if e else "train")
    return splits


FLIGHTS = datasets.get_dataset("flights")
FLIGHTS_KEYS = FLIGHTS.csv_format.key_columns


def _flights_sql_rows(stratify_by: str | None = None) -> list[dict]:
    """Every flights row as the generated SQL (Nov-Dec as serving) returns it."""
    columns = columns_from_schema(FLIGHTS.schema())
    table = "my-project.flights.flights_2013"
    sql = build_query(BigQueryInput(table=table, serving_where="month >= 11"), columns,
                      FLIGHTS_KEYS, 20, stratify_by=stratify_by)
    names = [c.name for c in columns] + ["split"]
    return [dict(zip(names, values, strict=True))
            for values in _run(sql, table, list(FLIGHTS.default_inputs()), columns, "NA")]


def _flights_key(row: dict) -> tuple[str, ...]:
    return tuple(str(row[k]) for k in FLIGHTS_KEYS)


def test_flights_sql_labels_every_row_as_the_local_split():
    train, serving = FLIGHTS.default_inputs()
    local = _local_splits(FLIGHTS.csv_decoder(), train, serving, FLIGHTS_KEYS,
                          lambda values: tuple(str(v) for v in values))
    labels = {_flights_key(row): row["split"] for row in _flights_sql_rows()}
    counts = {s: sum(v == s for v in labels.values()) for s in ("train", "eval", "serving")}
    assert counts == {"train": 225_359, "eval": 56_014, "serving": 55_403}
    assert labels == local


KEYLESS = [Column("id", schema_pb2.INT, True), Column("score", schema_pb2.FLOAT, False),
           Column("ratio", schema_pb2.FLOAT, False), Column("name", schema_pb2.BYTES, False)]


def test_keyless_sql_labels_every_row_as_the_local_split(tmp_path):
    rng = np.random.default_rng(1)
    lines = ["id,score,ratio,name"]
    for i in range(5000):
        score = "NA" if rng.random() < 0.2 else repr(round(float(rng.normal(50, 20)), 3))
        ratio = "NA" if rng.random() < 0.2 else repr(float(rng.random()))  # 17 digits
        name = "NA" if rng.random() < 0.2 else f"name {rng.integers(30)}"
        lines.append(f"{i},{score},{ratio},{name}")
    path = tmp_path / "keyless.csv"
    path.write_text("\n".join(lines) + "\n")
    sql = build_query(BigQueryInput(query="SELECT * FROM `p.d.keyless`"), KEYLESS, (), 20)
    rows = _run(sql, "p.d.keyless", [str(path)], KEYLESS, "NA")
    labels = {values[0]: values[-1] for values in rows}
    decoder = CsvDecoder(KEYLESS, CsvFormat(null_values=("NA",)))
    local = _local_splits(decoder, str(path), None, ("id",), lambda values: values[0])
    assert len(labels) == 5000
    assert labels == local
    assert abs(sum(v == "eval" for v in labels.values()) / 5000 - 0.2) < 0.02



def test_stratified_sql_labels_every_row_as_the_local_stratified_split():
    """Eval takes 20% of every origin, to the row, in BigQuery as locally."""
    labels = {_flights_key(row): (row["origin"], row["split"])
              for row in _flights_sql_rows(stratify_by="origin")}
    train, _ = FLIGHTS.default_inputs()
    batch = decoded_table(FLIGHTS.csv_decoder(), [train]).table.combine_chunks().to_batches()[0]
    origins = batch.column("origin").flatten().to_pylist()
    row_key = batch.column(row_keys.ROW_KEY).flatten().to_numpy()
    limits = {o: row_keys.stratum_limit(np.sort(row_key[np.array(origins) == o]), 20)
              for o in set(origins)}
    in_eval = row_keys.stratified_eval_mask(origins, row_key, limits)
    local = {tuple(str(v) for v in values): "eval" if e else "train"
             for values, e in zip(_keys_of(batch, FLIGHTS_KEYS), in_eval, strict=True)}
    assert {k: split for k, (_, split) in labels.items() if split != "serving"} == local
    for origin in set(origins):
        in_class = [split for o, split in labels.values() if o == origin.decode()]
        rows_in_class = sum(s != "serving" for s in in_class)
        assert in_class.count("eval") == row_keys.stratum_eval_rows(rows_in_class, 20)
