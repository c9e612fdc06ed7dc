"""``bigquery-sql``: the SQL ``run`` would send to BigQuery, without running it.

    python -m pipelines bigquery-sql --bigquery_table PROJECT.DATASET.TABLE \
        [--serving_where SQL] [--where SQL] [--sample_percent P] [--eval_fraction 0.2]
        [--stratify_by COLUMN]

The query is made as ``run`` makes it (``BigQueryInput.from_flags`` and
``BigQueryInput.sql``), for the dataset's curated schema.
"""

from pipelines import datasets
from pipelines.decode.bigquery import BigQueryInput
from pipelines.errors import UserError

__all__ = ["bigquery_sql"]


def bigquery_sql(dataset_name: str, eval_fraction: float, stratify_by: str | None, *,
                 table: str | None, query: str | None, where: str | None = None,
                 serving_where: str | None = None, sample_percent: float | None = None
                 ) -> str:
    """The generated query for the dataset and the BigQuery flags."""
    dataset = datasets.get_dataset(dataset_name)
    source = BigQueryInput.from_flags(table=table, query=query, where=where,
                                      serving_where=serving_where,
                                      sample_percent=sample_percent)
    if source is None:
        raise UserError("pass exactly one of --bigquery_table and --bigquery_query")
    return source.sql(dataset.schema(), dataset.csv_format.key_columns, eval_fraction,
                      stratify_by)
