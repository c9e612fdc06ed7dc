"""``Analyze``, ``Transform`` and ``WriteOutputs``: the TFT half of the pipeline.

The full-pass analysis (means, variances, vocabularies, quantiles) sees the
train split only; the one ``transform_fn`` it yields transforms every split, so
eval and serving are transformed exactly as training was. Batches stay in Arrow
from input to output: TFT reads RecordBatches through a TensorAdapterConfig,
returns RecordBatches, and tfx_bsl encodes them into ``tf.Example`` in C++.

Must be applied inside a ``tft_beam.Context`` whose ``passthrough_keys``
include ``row_key``, which then rides along untouched into every example.
"""

import os
from collections.abc import Callable

import apache_beam as beam
import pyarrow as pa
import tensorflow_transform.beam as tft_beam
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.coders import example_coder
from tfx_bsl.tfxio import tensor_adapter, tensor_representation_util

from pipelines import progress

__all__ = ["Analyze", "Transform", "WriteOutputs", "tensor_adapter_config"]


def tensor_adapter_config(arrow_schema: pa.Schema, schema: schema_pb2.Schema
                          ) -> tensor_adapter.TensorAdapterConfig:
    """How TFT turns decoded batches into the tensors the schema describes.

    Required features (a fixed shape) become dense tensors, optional ones sparse.
    Columns outside the schema, such as ``row_key``, are not fed to TFT.
    """
    return tensor_adapter.TensorAdapterConfig(
        arrow_schema,
        tensor_representation_util.InferTensorRepresentationsFromSchema(schema))


class Analyze(beam.PTransform):
    """Train RecordBatches -> the deferred ``transform_fn``."""

    def __init__(self, preprocessing_fn: Callable,
                 adapter_config: tensor_adapter.TensorAdapterConfig):
        super().__init__()
        self._preprocessing_fn = preprocessing_fn
        self._adapter_config = adapter_config

    def expand(self, train):
        return (train, self._adapter_config) | "AnalyzeDataset" >> tft_beam.AnalyzeDataset(
            self._preprocessing_fn)


class Transform(beam.PTransform):
    """Dict of raw batches -> dict of transformed ``(RecordBatch, passthrough)``."""

    def __init__(self, adapter_config: tensor_adapter.TensorAdapterConfig,
                 transform_fn):
        super().__init__()
        self._adapter_config = adapter_config
        self._transform_fn = transform_fn

    def expand(self, splits):
        transformed = {}
        for name, batches in splits.items():
            label = name.capitalize()
            data, _ = (((batches, self._adapter_config), self._transform_fn)
                       | f"Transform{label}" >> tft_beam.TransformDataset(
                           output_record_batches=True))
            transformed[name] = data | f"Progress{label}" >> beam.Map(_advance)
        return transformed


def _advance(transformed):
    progress.advance("transform", transformed[0].num_rows)
    return transformed


class _EncodeExamples(beam.DoFn):
    """A transformed RecordBatch -> serialized ``tf.Example``s, one per row."""

    def setup(self):
        self._encoder = example_coder.RecordBatchToExamplesEncoder()

    def process(self, transformed):
        record_batch, _ = transformed  # unary passthroughs never occur: row_key is per row
        progress.advance("write", record_batch.num_rows)
        yield from self._encoder.encode(record_batch)


class WriteOutputs(beam.PTransform):
    """Writes ``data/<split>/part-*.tfrecord.gz``, the ``transform_fn`` and the
    raw schema, where ``tft.TFTransformOutput`` looks for them:
    ``transform_fn/``, ``transformed_metadata/`` and ``metadata/schema.pbtxt``.
    """

    def __init__(self, output_dir: str, transform_fn, raw_schema: schema_pb2.Schema):
        super().__init__()
        self._output_dir = output_dir
        self._transform_fn = transform_fn
        self._raw_schema = raw_schema

    def expand(self, transformed):
        written = {}
        for name, batches in transformed.items():
            label = name.capitalize()
            written[name] = (
                batches
                | f"Encode{label}" >> beam.ParDo(_EncodeExamples())
                | f"Write{label}" >> beam.io.WriteToTFRecord(
                    os.path.join(self._output_dir, "data", name, "part"),
                    file_name_suffix=".tfrecord.gz",
                    compression_type=beam.io.filesystem.CompressionTypes.GZIP))
        _ = self._transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(
            self._output_dir)
        pipeline = next(iter(transformed.values())).pipeline
        _ = (pipeline
             | "RawSchema" >> beam.Create([text_format.MessageToString(self._raw_schema)])
             | "WriteRawSchema" >> beam.io.WriteToText(
                 os.path.join(self._output_dir, "metadata", "schema.pbtxt"),
                 shard_name_template="", num_shards=1))
        return written
