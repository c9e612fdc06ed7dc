"""BigQuery as an input, without Beam: the SQL that prepares rows in the
warehouse, and the conversion of the rows it returns into the same Arrow
batches as CSV input (``pipelines.stages.bigquery`` reads them in a pipeline).

The generated query selects the schema's columns, filters (``--where``),
samples deterministically (``--sample_percent``) and labels every row with its
split, in the warehouse::

    MOD(ABS(FARM_FINGERPRINT(key)), 100) < eval_percent  -> 'eval'

where ``key`` is the dataset's key columns cast to STRING and joined with
``|``: the same fingerprint and bucket as ``pipelines.decode.row_keys``, so a row lands in
the same split locally and in BigQuery. Rows matching ``--serving_where`` are
the serving split. The pipeline recomputes each row's split locally and counts
any disagreement (``rows_split_disagreements``), which fails the run.

``--where`` and ``--serving_where`` are SQL boolean expressions pasted into the
query as given: they run in your own project, with your permissions.
"""

import re
from collections.abc import Iterator

import pyarrow as pa
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines.decode import row_keys
from pipelines.decode.columns import (
    Column,
    RejectedRow,
    arrow_schema,
    as_list_array,
    columns_from_schema,
)
from pipelines.errors import UserError

__all__ = ["SPLIT_COLUMN", "BigQueryInput", "RowDecoder", "build_query"]

SPLIT_COLUMN = "split"
_TABLE = re.compile(r"^[A-Za-z0-9_.:-]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_$-]+$")
_SAMPLE_SALT = "sample"  # a different hash than the split's, so sampling keeps the split shares


class BigQueryInput:
    """Where the rows come from and how the warehouse prepares them."""

    def __init__(self, *, table: str | None = None, query: str | None = None,
                 where: str | None = None, serving_where: str | None = None,
                 sample_percent: float | None = None):
        if (table is None) == (query is None):
            raise UserError("pass exactly one of --bigquery_table and --bigquery_query")
        if table is not None and not _TABLE.match(table):
            raise UserError(f"--bigquery_table must be PROJECT.DATASET.TABLE, got {table!r}")
        if sample_percent is not None and not 0 < sample_percent <= 100:
            raise UserError(f"--sample_percent must be in (0, 100], got {sample_percent}")
        self.table, self.query = table, query
        self.where, self.serving_where = where, serving_where
        self.sample_percent = sample_percent

    @classmethod
    def from_flags(cls, *, table: str | None, query: str | None, where: str | None = None,
                   serving_where: str | None = None, sample_percent: float | None = None
                   ) -> "BigQueryInput | None":
        """The input the BigQuery flags name, or None when they name none.

        Raises:
          UserError: the flags that shape the query come without a table or query.
        """
        if table or query:
            return cls(table=table, query=query, where=where, serving_where=serving_where,
                       sample_percent=sample_percent)
        if where or serving_where or sample_percent is not None:
            raise UserError("--where, --serving_where and --sample_percent shape the BigQuery "
                            "query: they need --bigquery_table or --bigquery_query")
        return None

    def sql(self, schema: schema_pb2.Schema, key_columns: tuple[str, ...],
            eval_fraction: float, stratify_by: str | None = None) -> str:
        """The query ``run`` sends for a dataset's schema and key columns (``build_query``).

        Raises:
          UserError: ``eval_fraction`` or ``stratify_by`` is not one a split takes.
        """
        columns = columns_from_schema(schema)
        row_keys.check_stratify_by(stratify_by, columns)
        return build_query(self, columns, key_columns, row_keys.eval_percent(eval_fraction),
                           stratify_by)


def _key_expression(key_columns: tuple[str, ...], columns: list[Column]) -> str:
    """The row's key text in SQL: the key columns as text, or, for a dataset
    without key columns, every value as ``row_keys.value_text`` writes it."""
    if key_columns:
        texts = [f"CAST({column} AS STRING)" for column in key_columns]
    else:
        texts = [f"IFNULL({_value_text(c)}, '{_sql_string(row_keys.NULL_TEXT)}')"
                 for c in columns]
    separator = f", '{row_keys.KEY_SEPARATOR}', "
    return f"CONCAT({separator.join(texts)})"


def _value_text(column: Column) -> str:
    if column.type == schema_pb2.FLOAT:
        return f"FORMAT('{row_keys.FLOAT_FORMAT}', {column.name})"
    if column.type == schema_pb2.INT:
        return f"CAST({column.name} AS STRING)"
    return column.name


def _sql_string(text: str) -> str:
    """``text`` inside a single-quoted BigQuery string literal."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def build_query(source: BigQueryInput, columns: list[Column], key_columns: tuple[str, ...],
                eval_percent: int, stratify_by: str | None = None) -> str:
    """The standard-SQL query that returns the schema's columns and ``split``.

    With ``stratify_by``, eval takes ``eval_percent`` of each class of that
    column (half rounded up): the rows whose fingerprint ranks first within
    their class, as ``pipelines.decode.row_keys.stratum_limit`` picks them.
    """
    key = _key_expression(key_columns, columns)
    names = ",\n    ".join(c.name for c in columns)
    origin = (f"`{source.table}`" if source.table
              else "(\n" + _indent(source.query.strip().rstrip(";"), 4) + "\n  )")
    conditions = []
    if source.where:
        conditions.append(f"({source.where})")
    if source.sample_percent is not None:
        # Hundredths of a percent: 0.05 keeps 5 rows in 10,000.
        conditions.append(
            f"MOD(ABS(FARM_FINGERPRINT(CONCAT('{_SAMPLE_SALT}{row_keys.KEY_SEPARATOR}', {key}))), "
            f"10000) < {round(source.sample_percent * 100)}")
    where = ("\n  WHERE " + "\n    AND ".join(conditions)) if conditions else ""
    serving = (f"    WHEN ({source.serving_where}) THEN 'serving'\n"
               if source.serving_where else "")
    return (
        "-- Generated by tft-preprocessing: the schema's columns and each row's split.\n"
        "WITH source AS (\n"
        f"  SELECT\n    {names}\n"
        f"  FROM {origin}{where}\n"
        ")\n"
        "SELECT\n"
        "  *,\n"
        "  CASE\n"
        f"{serving}"
        f"    WHEN {_eval_condition(key, eval_percent, stratify_by, source.serving_where)}"
        f" THEN 'eval'\n"
        "    ELSE 'train'\n"
        f"  END AS {SPLIT_COLUMN}\n"
        "FROM source\n")


def _eval_condition(key: str, eval_percent: int, stratify_by: str | None,
                    serving_where: str | None) -> str:
    if stratify_by is None:
        return f"MOD(ABS(FARM_FINGERPRINT({key})), 100) < {eval_percent}"
    # Serving rows form partitions of their own, so they count in no class. The
    # parentheses inside DIV are redundant in BigQuery; translators (sqlglot's
    # DIV -> //) can lose them.
    partition = (f"IFNULL(({serving_where}), FALSE), {stratify_by}" if serving_where
                 else stratify_by)
    return (f"RANK() OVER (PARTITION BY {partition} ORDER BY FARM_FINGERPRINT({key}))\n"
            f"      <= DIV((COUNT(*) OVER (PARTITION BY {partition}) * {eval_percent} + 50), 100)")


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in text.splitlines())


class RowDecoder:
    """BigQuery rows (dicts of Python values) -> the CSV decoder's RecordBatches.

    NULL is a missing value. A row missing a required value, or holding a value
    of the wrong type, is rejected with its reason, as a CSV row would be.
    """

    def __init__(self, columns: list[Column], key_columns: tuple[str, ...]):
        self._columns = columns
        self.key_columns = key_columns
        self._arrow_schema = arrow_schema(columns)

    def decode(self, rows: list[dict], source: str) -> Iterator[pa.RecordBatch | RejectedRow]:
        kept, values = [], {c.name: [] for c in self._columns}
        for row in rows:
            problem = self._problem(row)
            if problem:
                yield RejectedRow(source, None, *problem, repr(row))
                continue
            kept.append(row)
            for column in self._columns:
                value = row.get(column.name)
                if column.type == schema_pb2.BYTES and isinstance(value, str):
                    value = value.encode("utf-8")
                values[column.name].append(value)
        if not kept:
            return
        arrays = [as_list_array(pa.array(values[c.name], c.arrow_type)) for c in self._columns]
        arrays.append(as_list_array(pa.array(row_keys.row_keys(self.keys(kept)))))
        yield pa.RecordBatch.from_arrays(arrays, schema=self._arrow_schema)

    def keys(self, rows: list[dict]) -> list[str]:
        """Each row's key text, as the generated SQL writes it: the key columns as
        ``CAST(... AS STRING)`` spells them, or every value (``value_text``)."""
        if self.key_columns:
            return [row_keys.KEY_SEPARATOR.join(str(row[k]) for k in self.key_columns)
                    for row in rows]
        return [row_keys.KEY_SEPARATOR.join(
            row_keys.value_text(row.get(c.name), c.type) for c in self._columns) for row in rows]

    def _problem(self, row: dict) -> tuple[str, str] | None:
        """(kind, reason) of the first problem with the row, or None."""
        for column in self._columns:
            value = row.get(column.name)
            if value is None:
                if column.required:
                    return "missing_required", f"{column.name}: missing required value"
            elif not _fits(value, column.type):
                return "wrong_type", (f"{column.name}: {value!r} is not "
                                      f"{schema_pb2.FeatureType.Name(column.type)}")
            elif column.hard_domain and not _within(value, column.domain):
                return "out_of_domain", f"{column.name}: {value!r} is outside the schema's domain"
        return None


def _within(value, domain) -> bool:
    if domain is None:
        return True
    if isinstance(domain, tuple):
        low, high = domain
        return (low is None or value >= low) and (high is None or value <= high)
    return (value.encode("utf-8") if isinstance(value, str) else value) in domain


def _fits(value, feature_type: int) -> bool:
    if feature_type == schema_pb2.INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if feature_type == schema_pb2.FLOAT:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str | bytes)
