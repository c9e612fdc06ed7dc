"""``bigquery-sql``: the SQL ``run`` would send to BigQuery, without running it.

    python -m pipelines bigquery-sql --bigquery_table PROJECT.DATASET.TABLE \
        [--serving_where SQL] [--where SQL] [--sample_percent P] [--eval_fraction 0.2]
"""

import argparse

from pipelines import datasets
from pipelines.decode.bigquery import BigQueryInput, build_query
from pipelines.decode.columns import columns_from_schema
from pipelines.decode.row_keys import eval_percent

__all__ = ["bigquery_sql"]


def bigquery_sql(args: argparse.Namespace) -> str:
    """The generated query for the dataset and the BigQuery flags in ``args``."""
    dataset = datasets.get_dataset(args.dataset)
    source = BigQueryInput(
        table=args.bigquery_table, query=args.bigquery_query, where=args.where,
        serving_where=args.serving_where, sample_percent=args.sample_percent)
    return build_query(source, columns_from_schema(dataset.schema()),
                       dataset.csv_format.key_columns, eval_percent(args.eval_fraction))
