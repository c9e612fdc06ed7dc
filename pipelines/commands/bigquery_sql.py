"""``bigquery-sql``: the SQL ``run`` would send to BigQuery, without running it.

    python -m pipelines bigquery-sql --bigquery_table PROJECT.DATASET.TABLE \
        [--serving_where SQL] [--where SQL] [--sample_percent P] [--eval_fraction 0.2]
        [--stratify_by COLUMN]
"""

import argparse

from pipelines import datasets
from pipelines.decode.bigquery import BigQueryInput, build_query
from pipelines.decode.columns import columns_from_schema
from pipelines.decode.row_keys import check_stratify_by, eval_percent

__all__ = ["bigquery_sql"]


def bigquery_sql(args: argparse.Namespace) -> str:
    """The generated query for the dataset and the BigQuery flags in ``args``."""
    dataset = datasets.get_dataset(args.dataset)
    schema = dataset.schema()
    columns = columns_from_schema(schema)
    check_stratify_by(args.stratify_by, columns)
    source = BigQueryInput(
        table=args.bigquery_table, query=args.bigquery_query, where=args.where,
        serving_where=args.serving_where, sample_percent=args.sample_percent)
    return build_query(source, columns, dataset.csv_format.key_columns,
                       eval_percent(args.eval_fraction), args.stratify_by)
