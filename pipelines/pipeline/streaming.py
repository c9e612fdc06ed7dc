"""The streaming job: CSV lines from Pub/Sub, prepared as ``run`` prepares its
inputs (lookups, then window features over the unbounded stream), published as
JSON rows (``python -m pipelines run --input_topic ... --streaming``)."""

import dataclasses

import apache_beam as beam
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import beam_speedups, layout
from pipelines.datasets import Dataset
from pipelines.decode.columns import columns_from_schema
from pipelines.pipeline.prepare import PrepareInputs
from pipelines.stages.pubsub import EncodeRows, ReadMessages, late_message, line_decoder

__all__ = ["StreamConfig", "build_streaming_pipeline"]


@dataclasses.dataclass(frozen=True)
class StreamConfig:
    """The streaming job: CSV lines from ``input_topic`` -> rows with their
    window features, as JSON, to ``output_topic``; rejected and late rows to
    ``rejected_topic``."""

    dataset: Dataset
    schema: schema_pb2.Schema
    input_topic: str
    output_topic: str
    rejected_topic: str
    allowed_lateness: int


def build_streaming_pipeline(config: StreamConfig, beam_args: list[str]) -> beam.Pipeline:
    """Constructs the streaming job (``--streaming`` among ``beam_args``)."""
    preparation = config.dataset.preparation(config.schema)
    decoder = line_decoder(columns_from_schema(config.schema), config.dataset.csv_format)
    pipeline = beam_speedups.new_pipeline(beam_args)
    prepared = pipeline | "Prepare" >> PrepareInputs(
        ReadMessages(config.input_topic, decoder, preparation.windows), preparation,
        streaming_lateness=config.allowed_lateness)
    _ = (prepared.rows[layout.SERVING]
         | "EncodeRows" >> beam.ParDo(EncodeRows())
         | "WriteRows" >> beam.io.WriteToPubSub(config.output_topic))
    late = (prepared.late
            | "EncodeLate" >> beam.ParDo(EncodeRows())
            | "AsLate" >> beam.Map(late_message))
    _ = ((prepared.rejected, late)
         | "AllRejected" >> beam.Flatten()
         | "WriteRejected" >> beam.io.WriteToPubSub(config.rejected_topic))
    return pipeline
