"""A finished run's output directory, as its readers (validate, train, parity) see it."""

import functools
import os

import tensorflow as tf
import tensorflow_transform as tft
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

import schemas
from pipelines import datasets, layout
from pipelines.errors import UserError
from pipelines.records.run_record import RunRecord

__all__ = ["RunDir", "raw_schema"]


def raw_schema(output_dir: str) -> schema_pb2.Schema:
    """The raw schema a run used (``metadata/schema.pbtxt``); readable as soon as
    the outputs are in place, before ``run_summary.json`` is."""
    with tf.io.gfile.GFile(layout.raw_schema_file(output_dir)) as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())


class RunDir:
    """The outputs of ``python -m pipelines run`` under one directory, and its
    record (``RunRecord``: how the run was made and what it found)."""

    def __init__(self, path: str):
        self.record = RunRecord.read(path)
        self.path = path

    @functools.cached_property
    def dataset(self) -> datasets.Dataset:
        """The copy of the dataset the run used (runs made before it kept one: the
        registered dataset of that name)."""
        copy = layout.dataset_dir(self.path)
        if tf.io.gfile.exists(os.path.join(copy, datasets.DATASET_FILE)):
            return datasets.load_directory(copy)
        return datasets.get_dataset(self.record.dataset)

    @functools.cached_property
    def tft_output(self) -> tft.TFTransformOutput:
        return tft.TFTransformOutput(self.path)

    def schema(self) -> schema_pb2.Schema:
        return raw_schema(self.path)

    @property
    def schema_file(self) -> str:
        """Where the run's schema came from, as fixes should name it."""
        return self.record.schema_file or schemas.schema_file(self.record.dataset)

    def transformed_feature_spec(self, split: str) -> dict:
        """The feature spec of a split's transformed records: a serving split read
        without the label's inputs has no label."""
        spec = dict(self.tft_output.transformed_feature_spec())
        if split == layout.SERVING:
            for name in self.record.serving_without:
                spec.pop(name, None)
        return spec

    def data_files(self, split: str) -> list[str]:
        """The transformed TFRecord shards of ``split``, sorted."""
        files = sorted(tf.io.gfile.glob(layout.data_files_pattern(self.path, split)))
        if not files:
            raise UserError(f"{self.path} has no transformed {split!r} data")
        return files
