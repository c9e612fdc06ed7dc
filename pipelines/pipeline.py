"""Builds the preprocessing pipeline: read, split, statistics, validation, TFT.

``build_pipeline`` returns the constructed, not yet run, ``beam.Pipeline``; the
launcher (``pipelines.cli``) runs it. Locally::

    python -m pipelines run --dataset flights --output_dir /tmp/flights

and on Dataflow the same entry point with Beam's flags, as ``run_dataflow.sh``
passes them::

    python -m pipelines run --dataset flights --output_dir gs://BUCKET/output/flights \
        --train_input 'gs://BUCKET/raw/*.csv' --temp_dir gs://BUCKET/tft-tmp \
        --runner DataflowRunner --project PROJECT --region REGION \
        --temp_location gs://BUCKET/tmp --staging_location gs://BUCKET/staging \
        --setup_file ./setup.py

Output layout under ``output_dir``: ``stats/<split>.pb``,
``anomalies/<split>.pbtxt``, ``data/<split>/part-*.tfrecord.gz``,
``transform_fn/``, ``transformed_metadata/``, ``rejected/*.jsonl``, the raw
schema as ``metadata/schema.pbtxt`` and, written last by the launcher,
``run_summary.json``. With ``--bigquery_table`` or ``--bigquery_query`` the
training rows come from BigQuery instead (``pipelines.bigquery``).
"""

import dataclasses
import os

import apache_beam as beam
import tensorflow_transform.beam as tft_beam
from apache_beam.options.pipeline_options import PipelineOptions
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import beam_speedups
from pipelines.bigquery import BigQueryInput, ReadBigQuery, RowDecoder, build_query
from pipelines.csv_arrow import CsvDecoder, columns_from_schema
from pipelines.datasets import Dataset
from pipelines.read import ReadRaw
from pipelines.split import ROW_KEY, SplitExamples, eval_percent
from pipelines.transform import Analyze, Transform, WriteOutputs, tensor_adapter_config
from pipelines.validation import GenerateStats, ValidateStats

__all__ = ["RunConfig", "STAGE_LABELS", "build_pipeline"]

# Top-level labels of the stages, and the names the run summary uses for them.
STAGE_LABELS = {
    "ReadRaw": "read",
    "ReadAgain": "read",
    "SplitExamples": "split",
    "SplitAgain": "split",
    "GenerateStats": "statistics",
    "ValidateStats": "validate",
    "Analyze": "analyze",
    "Transform": "transform",
    "WriteOutputs": "write",
}


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What one run reads and writes.

    Training rows come from ``train_input`` (a CSV glob) or from ``bigquery``;
    serving rows from ``serving_input`` or, with BigQuery, from the rows
    matching its ``serving_where``.
    """

    dataset: Dataset
    output_dir: str
    train_input: str | None
    serving_input: str | None
    temp_dir: str
    eval_fraction: float = 0.2
    limit: int | None = None
    bigquery: BigQueryInput | None = None
    schema: schema_pb2.Schema | None = None  # default: the dataset's curated schema
    schema_file: str = ""

    def __post_init__(self):
        if self.schema is None:
            object.__setattr__(self, "schema", self.dataset.schema())
            object.__setattr__(self, "schema_file", f"schemas/{self.dataset.name}.pbtxt")

    @property
    def has_serving(self) -> bool:
        return bool(self.serving_input or (self.bigquery and self.bigquery.serving_where))

    def bigquery_sql(self) -> str | None:
        if self.bigquery is None:
            return None
        return build_query(self.bigquery, columns_from_schema(self.schema),
                           self.dataset.csv_format.key_columns,
                           eval_percent(self.eval_fraction))


def build_pipeline(config: RunConfig, beam_args: list[str]) -> beam.Pipeline:
    """Constructs the whole pipeline; Beam options pass through untouched."""
    beam_speedups.install()
    schema = config.schema
    columns = columns_from_schema(schema)
    decoder = CsvDecoder(columns, config.dataset.csv_format)
    adapter_config = tensor_adapter_config(decoder.output_schema, schema)
    csv_inputs = {name: pattern for name, pattern in (("train", config.train_input),
                                                      ("serving", config.serving_input))
                  if pattern}
    bigquery = None
    if config.bigquery:
        bigquery = ReadBigQuery(
            config.bigquery_sql(), RowDecoder(columns, config.dataset.csv_format.key_columns),
            eval_percent(config.eval_fraction),
            with_serving=bool(config.bigquery.serving_where))
    out = config.output_dir

    pipeline = beam.Pipeline(options=PipelineOptions(beam_args))
    # No deep-copy optimization: it re-runs the read for each TFT phase, which
    # would also count every training row twice.
    with tft_beam.Context(temp_dir=config.temp_dir, passthrough_keys={ROW_KEY}):
        raw = pipeline | "ReadRaw" >> ReadRaw(
            csv_inputs, decoder, os.path.join(out, "rejected", "rejected"), config.limit,
            bigquery)
        splits = {name: raw[name] for name in ("train", "serving") if name in raw
                  } | "SplitExamples" >> SplitExamples(config.eval_fraction)
        statistics = splits | "GenerateStats" >> GenerateStats(
            schema, os.path.join(out, "stats"))
        _ = statistics | "ValidateStats" >> ValidateStats(
            schema, os.path.join(out, "anomalies"))
        transform_fn = splits["train"] | "Analyze" >> Analyze(
            config.dataset.load_preprocessing_fn(), adapter_config)
        if bigquery is None:
            # Transforming needs the finished transform_fn, so the DirectRunner
            # would hold every row in memory until the analysis is done. Reading
            # the CSV again streams them instead: memory stays flat as inputs grow.
            again = pipeline | "ReadAgain" >> ReadRaw(
                csv_inputs, decoder, rejected_prefix=None, limit=config.limit)
            splits = again | "SplitAgain" >> SplitExamples(config.eval_fraction, counted=False)
        transformed = splits | "Transform" >> Transform(adapter_config, transform_fn)
        _ = transformed | "WriteOutputs" >> WriteOutputs(out, transform_fn, schema)
    return pipeline
