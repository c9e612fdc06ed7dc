"""Builds the preprocessing pipeline: read, split, statistics, validation, TFT.

``build_pipeline`` returns the constructed, not yet run, ``beam.Pipeline``; the
launcher (``pipelines.cli``) runs it. Locally::

    python -m pipelines run --dataset flights --output_dir /tmp/flights

and on Dataflow the same entry point with Beam's flags, as ``run_dataflow.sh``
will pass them::

    python -m pipelines run --dataset flights --output_dir gs://BUCKET/flights \
        --train_input 'gs://BUCKET/raw/*.csv' --temp_dir gs://BUCKET/tmp \
        --runner DataflowRunner --project PROJECT --region REGION \
        --temp_location gs://BUCKET/tmp --setup_file ./setup.py

Output layout under ``output_dir``: ``stats/<split>.pb``,
``anomalies/<split>.pbtxt``, ``data/<split>/part-*.tfrecord.gz``,
``transform_fn/``, ``transformed_metadata/``, ``rejected/*.jsonl``, the raw
schema as ``metadata/schema.pbtxt`` and, written last by the launcher,
``run_summary.json``.
"""

import dataclasses
import os

import apache_beam as beam
import tensorflow_transform.beam as tft_beam
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.csv_arrow import CsvDecoder, columns_from_schema
from pipelines.datasets import Dataset
from pipelines.read import ReadRaw
from pipelines.split import ROW_KEY, SplitExamples
from pipelines.transform import Analyze, Transform, WriteOutputs, tensor_adapter_config
from pipelines.validation import GenerateStats, ValidateStats

__all__ = ["RunConfig", "STAGE_LABELS", "build_pipeline"]

# Top-level labels of the stages, and the names the run summary uses for them.
STAGE_LABELS = {
    "ReadRaw": "read",
    "SplitExamples": "split",
    "GenerateStats": "statistics",
    "ValidateStats": "validate",
    "Analyze": "analyze",
    "Transform": "transform",
    "WriteOutputs": "write",
}


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What one run reads and writes."""

    dataset: Dataset
    output_dir: str
    train_input: str
    serving_input: str | None
    temp_dir: str
    eval_fraction: float = 0.2
    limit: int | None = None


def build_pipeline(config: RunConfig, beam_args: list[str]) -> beam.Pipeline:
    """Constructs the whole pipeline; Beam options pass through untouched."""
    schema = config.dataset.schema()
    decoder = CsvDecoder(columns_from_schema(schema), config.dataset.csv_format)
    adapter_config = tensor_adapter_config(decoder.output_schema, schema)
    inputs = {"train": config.train_input}
    if config.serving_input:
        inputs["serving"] = config.serving_input
    out = config.output_dir

    pipeline = beam.Pipeline(options=PipelineOptions(beam_args))
    # No deep-copy optimization: it re-runs the read for each TFT phase, which
    # would also count every training row twice.
    with tft_beam.Context(temp_dir=config.temp_dir, passthrough_keys={ROW_KEY}):
        raw = pipeline | "ReadRaw" >> ReadRaw(
            inputs, decoder, os.path.join(out, "rejected", "rejected"), config.limit)
        splits = {name: raw[name] for name in inputs} | "SplitExamples" >> SplitExamples(
            config.eval_fraction)
        statistics = splits | "GenerateStats" >> GenerateStats(
            schema, os.path.join(out, "stats"))
        _ = statistics | "ValidateStats" >> ValidateStats(
            schema, os.path.join(out, "anomalies"))
        transform_fn = splits["train"] | "Analyze" >> Analyze(
            config.dataset.load_preprocessing_fn(), adapter_config)
        transformed = splits | "Transform" >> Transform(adapter_config, transform_fn)
        _ = transformed | "WriteOutputs" >> WriteOutputs(out, transform_fn)
    return pipeline
