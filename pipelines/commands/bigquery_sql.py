"""``bigquery-sql``: the SQL ``run`` would send to BigQuery, without running it.

    python -m pipelines bigquery-sql --bigquery_table PROJECT.DATASET.TABLE \
        [--serving_where SQL] [--where SQL] [--sample_percent P] [--eval_fraction 0.2]
        [--stratify_by COLUMN]
"""

import argparse

from pipelines import datasets
from pipelines.decode.bigquery import BigQueryInput, build_query
from pipelines.decode.columns import columns_from_schema
from pipelines.decode.row_keys import eval_percent
from pipelines.errors import UserError

__all__ = ["bigquery_sql", "check_stratify_by"]


def check_stratify_by(column: str | None, schema) -> None:
    """A stratified split needs a column every row has: a class to count it in."""
    if column is None:
        return
    columns = {c.name: c for c in columns_from_schema(schema)}
    if column not in columns:
        raise UserError(f"--stratify_by {column}: no such column; the schema's columns: "
                        f"{', '.join(columns)}")
    if not columns[column].required:
        raise UserError(f"--stratify_by {column}: the column may be missing, and a row "
                        f"without a class cannot be stratified; pick a required column")


def bigquery_sql(args: argparse.Namespace) -> str:
    """The generated query for the dataset and the BigQuery flags in ``args``."""
    dataset = datasets.get_dataset(args.dataset)
    schema = dataset.schema()
    check_stratify_by(args.stratify_by, schema)
    source = BigQueryInput(
        table=args.bigquery_table, query=args.bigquery_query, where=args.where,
        serving_where=args.serving_where, sample_percent=args.sample_percent)
    return build_query(source, columns_from_schema(schema), dataset.csv_format.key_columns,
                       eval_percent(args.eval_fraction), args.stratify_by)
