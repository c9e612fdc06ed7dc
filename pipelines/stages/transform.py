"""``Analyze``, ``Transform`` and ``WriteOutputs``: the TFT half of the pipeline.

The full-pass analysis (means, variances, vocabularies, quantiles) sees the
train split only; the one ``transform_fn`` it yields transforms every split, so
eval and serving are transformed exactly as training was. Batches stay in Arrow
from input to output: TFT reads RecordBatches through a TensorAdapterConfig,
returns RecordBatches, and tfx_bsl encodes them into ``tf.Example`` in C++.

Serving data may lack the label and the label-only inputs (the features not in
the schema's ``SERVING`` environment): the serving split is then transformed
without the label outputs, and the tensors of the columns it lacks are filled
with a default no output that is kept depends on.

Must be applied inside a ``tft_beam.Context`` whose ``passthrough_keys``
include ``row_key``, which then rides along untouched into every example.
"""

import collections
import concurrent.futures
import os
import uuid
from collections.abc import Callable

import apache_beam as beam
import pyarrow as pa
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.coders import example_coder
from tfx_bsl.tfxio import tensor_adapter, tensor_representation_util

from pipelines import layout
from pipelines.decode.columns import SERVING
from pipelines.stages import progress

__all__ = ["Analyze", "Transform", "WriteOutputs", "tensor_adapter_config"]


def tensor_adapter_config(arrow_schema: pa.Schema, schema: schema_pb2.Schema,
                          serving: bool = False) -> tensor_adapter.TensorAdapterConfig:
    """How TFT turns decoded batches into the tensors the schema describes.

    Required features (a fixed shape) become dense tensors, optional ones sparse.
    Columns outside the schema, such as ``row_key``, are not fed to TFT. For
    ``serving`` data, a required column not in the ``SERVING`` environment gets
    a default value, since serving files may lack it.
    """
    representations = tensor_representation_util.InferTensorRepresentationsFromSchema(schema)
    if serving:
        for feature in schema.feature:
            dense = representations[feature.name]
            if SERVING in feature.not_in_environment and dense.HasField("dense_tensor"):
                default = dense.dense_tensor.default_value
                if feature.type == schema_pb2.BYTES:
                    default.bytes_value = b""
                elif feature.type == schema_pb2.INT:
                    default.int_value = 0
                else:
                    default.float_value = 0.0
    return tensor_adapter.TensorAdapterConfig(arrow_schema, representations)


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
    """Dict of raw batches -> dict of transformed ``(RecordBatch, passthrough)``.

    ``serving``, when given, is how the serving split differs: its adapter
    config (``tensor_adapter_config(..., serving=True)``) and the outputs it is
    transformed without (the label, when serving data lacks its inputs).
    """

    def __init__(self, adapter_config: tensor_adapter.TensorAdapterConfig, transform_fn,
                 serving: tuple[tensor_adapter.TensorAdapterConfig, list[str]] | None = None):
        super().__init__()
        self._adapter_config = adapter_config
        self._transform_fn = transform_fn
        self._serving = serving

    def expand(self, splits):
        transformed = {}
        for name, batches in splits.items():
            label = name.capitalize()
            config, excluded = self._adapter_config, None
            if name == layout.SERVING and self._serving is not None:
                config, excluded = self._serving
            data, _ = (((batches, config), self._transform_fn)
                       | f"Transform{label}" >> tft_beam.TransformDataset(
                           exclude_outputs=excluded, output_record_batches=True))
            transformed[name] = data | f"Progress{label}" >> beam.Map(_advance)
        return transformed


def _advance(transformed):
    progress.advance("transform", transformed[0].num_rows)
    return transformed


# zlib level 1: a third of level 6's time for files about 30% larger (measured
# on the flights train split: 0.49 s and 17 MB against 1.54 s and 13 MB).
GZIP_LEVEL = 1
_SHARD = "part-{index:05d}-of-{count:05d}.tfrecord.gz"


class _WriteShards(beam.DoFn):
    """Transformed RecordBatches -> gzip'd TFRecord files of ``tf.Example``s.

    Batches are encoded by tfx_bsl in C++ and written by TensorFlow's
    TFRecordWriter, one temporary file per bundle: no Beam element per
    example. Only the files of bundles that completed are output, so a retried
    bundle leaves at most an orphan temporary file, which ``_name_shards``
    deletes.

    Encoding runs on a thread of its own, a batch or two ahead of the writes:
    tfx_bsl releases the GIL while it encodes, so the other core encodes while
    this one goes on (the writes stay here: each record's write releases and
    retakes the GIL, which a thread gets back only when this one lets it go).
    """

    # Batches encoded ahead of the writes at most: what it costs in memory.
    AHEAD = 2

    def __init__(self, directory: str):
        self._directory = directory

    def setup(self):
        self._encoder = example_coder.RecordBatchToExamplesEncoder()
        self._encoding = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="encode-examples")
        self._options = tf.io.TFRecordOptions(compression_type="GZIP",
                                              compression_level=GZIP_LEVEL)
        tf.io.gfile.makedirs(self._directory)

    def start_bundle(self):
        self._writer, self._path = None, None
        self._encoded = collections.deque()

    def process(self, transformed):
        record_batch, _ = transformed  # unary passthroughs never occur: row_key is per row
        progress.advance("write", record_batch.num_rows)
        if self._writer is None:
            self._path = os.path.join(self._directory, f"tmp-{uuid.uuid4().hex}.tfrecord.gz")
            self._writer = tf.io.TFRecordWriter(self._path, self._options)
        self._encoded.append(self._encoding.submit(self._encoder.encode, record_batch))
        while len(self._encoded) > self.AHEAD:
            self._write_next()

    def _write_next(self):
        for record in self._encoded.popleft().result():
            self._writer.write(record)

    def finish_bundle(self):
        if self._writer is not None:
            while self._encoded:
                self._write_next()
            self._writer.close()
            yield GlobalWindows.windowed_value(self._path)

    def teardown(self):
        self._encoding.shutdown(cancel_futures=True)


def _name_shards(paths: list[str], directory: str) -> list[str]:
    """Renames the completed temporary files to ``part-NNNNN-of-NNNNN`` and
    deletes any other temporary file; an empty split gets one empty shard."""
    paths = sorted(paths)
    if not paths:
        with tf.io.TFRecordWriter(os.path.join(directory, _SHARD.format(index=0, count=1)),
                                  tf.io.TFRecordOptions(compression_type="GZIP")):
            pass
        return [os.path.join(directory, _SHARD.format(index=0, count=1))]
    names = [os.path.join(directory, _SHARD.format(index=i, count=len(paths)))
             for i in range(len(paths))]
    FileSystems.rename(paths, names)
    orphans = [m.path for m in FileSystems.match([os.path.join(directory, "tmp-*")])[0]
               .metadata_list]
    if orphans:
        FileSystems.delete(orphans)
    return names


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
            directory = layout.data_dir(self._output_dir, name)
            written[name] = (
                batches
                | f"Write{label}" >> beam.ParDo(_WriteShards(directory))
                | f"Collect{label}" >> beam.combiners.ToList()
                | f"Name{label}" >> beam.Map(_name_shards, directory))
        _ = self._transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(
            self._output_dir)
        pipeline = next(iter(transformed.values())).pipeline
        _ = (pipeline
             | "RawSchema" >> beam.Create([text_format.MessageToString(self._raw_schema)])
             | "WriteRawSchema" >> beam.io.WriteToText(
                 layout.raw_schema_file(self._output_dir),
                 shard_name_template="", num_shards=1))
        return written
