"""The ``validate`` pipeline: new serving rows of a finished run, prepared and
split as ``run`` prepares its serving input, then their statistics validated
against the run's schema, for skew against its training statistics and, for
drift, against a former span's (``pipelines.commands.validate`` runs it)."""

import dataclasses

import apache_beam as beam
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from pipelines import beam_speedups, layout
from pipelines.datasets import Dataset
from pipelines.decode.prepare import Preparation
from pipelines.decode.request_logs import log_decoder
from pipelines.pipeline.prepare import PrepareInputs
from pipelines.stages.read import ReadRaw
from pipelines.stages.split import SplitExamples
from pipelines.stages.statistics import GenerateStats, ValidateStats

__all__ = ["ValidateConfig", "build_validate_pipeline"]


@dataclasses.dataclass(frozen=True)
class ValidateConfig:
    """What one ``validate`` reads and writes: new serving rows of a finished
    run, validated against its schema, its training statistics and, for drift,
    a former span's statistics; the outputs go to ``output_dir``, a span's
    directory laid out as a run's (``stats/``, ``anomalies/``, ``rejected/``)."""

    dataset: Dataset
    schema: schema_pb2.Schema
    serving_input: str
    output_dir: str
    eval_fraction: float
    training_statistics: statistics_pb2.DatasetFeatureStatisticsList
    previous_statistics: statistics_pb2.DatasetFeatureStatisticsList | None = None
    limit: int | None = None
    # The input is a request log (``pipelines.decode.request_logs``) and
    # ``schema`` its ``logged_schema``: read as written, nothing derived again.
    request_log: bool = False


def build_validate_pipeline(config: ValidateConfig, beam_args: list[str]) -> beam.Pipeline:
    """Constructs the ``validate`` pipeline: the stages ``run`` applies to its
    serving split, up to validation."""
    out = config.output_dir
    pipeline = beam_speedups.new_pipeline(beam_args)
    decoder = (log_decoder(config.schema) if config.request_log
               else config.dataset.csv_decoder(config.schema).reading_by_header())
    inputs = {layout.SERVING: config.serving_input}
    preparation = (Preparation() if config.request_log
                   else config.dataset.preparation(config.schema))
    read = ReadRaw(inputs, decoder, layout.rejected_prefix(out), config.limit)
    prepared = pipeline | "Prepare" >> PrepareInputs(
        read, preparation, reread_for_windows=read.again())
    splits = prepared.rows | "SplitExamples" >> SplitExamples(config.eval_fraction)
    statistics = splits | "GenerateStats" >> GenerateStats(config.schema, out)
    previous = config.previous_statistics
    _ = statistics | "ValidateStats" >> ValidateStats(
        config.schema, out,
        training=pipeline | "TrainingStats" >> beam.Create([config.training_statistics]),
        previous=(pipeline | "PreviousStats" >> beam.Create([previous])) if previous else None)
    return pipeline
