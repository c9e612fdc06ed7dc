"""The ``predict`` pipeline: raw CSV rows prepared as ``run`` prepares a serving
input, then scored by a serving model with Beam's ``RunInference``
(``pipelines.commands.predict`` runs it)."""

import dataclasses

import apache_beam as beam
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import beam_speedups, layout
from pipelines.datasets import Dataset
from pipelines.pipeline.prepare import PrepareInputs
from pipelines.stages.predictions import Predict
from pipelines.stages.read import ReadRaw

__all__ = ["PredictConfig", "build_predict_pipeline"]


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """What one ``predict`` reads and writes: raw CSV rows of ``dataset`` (as
    the serving model carries it) scored by the model at ``model_dir``, whose
    ``predict_raw`` signature names its output ``output``; beside each
    prediction the dataset's key columns and the ``passthrough`` columns or,
    without key columns, the row's file and line as well."""

    dataset: Dataset
    schema: schema_pb2.Schema
    input: str
    output_dir: str
    model_dir: str
    output: str
    limit: int | None = None
    passthrough: tuple[str, ...] = ()

    @property
    def written_columns(self) -> tuple[str, ...]:
        """The decoded columns each prediction is written with: the keys, then
        the passthrough columns (each once)."""
        return tuple(dict.fromkeys((*self.dataset.csv_format.key_columns, *self.passthrough)))

    @property
    def writes_origin(self) -> bool:
        """A row without a key is joined back by its file and line number."""
        return not self.dataset.csv_format.key_columns


def build_predict_pipeline(config: PredictConfig, beam_args: list[str]) -> beam.Pipeline:
    """Constructs the ``predict`` pipeline: the rows read as ``run`` reads a
    serving input (rejected rows to ``rejected/``), their joined and window
    features derived from the input's own rows, then ``RunInference``."""
    out = config.output_dir
    decoder = config.dataset.csv_decoder(config.schema)
    if config.writes_origin:
        decoder = decoder.with_origin()
    inputs = {layout.SERVING: config.input}
    pipeline = beam_speedups.new_pipeline(beam_args)
    read = ReadRaw(inputs, decoder, layout.rejected_prefix(out), config.limit)
    prepared = pipeline | "Prepare" >> PrepareInputs(
        read, config.dataset.preparation(config.schema), reread_for_windows=read.again())
    _ = prepared.rows[layout.SERVING] | "Predict" >> Predict(
        config.model_dir, config.output, config.written_columns,
        layout.predictions_prefix(out), origin=config.writes_origin)
    return pipeline
