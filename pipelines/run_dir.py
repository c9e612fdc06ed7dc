"""A finished run's output directory, as the consumers (train, serve, parity) see it."""

import functools
import json
import os

import tensorflow as tf
import tensorflow_transform as tft
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import datasets
from pipelines.errors import UserError

__all__ = ["SUMMARY_FILE", "RunDir", "raw_schema"]

SUMMARY_FILE = "run_summary.json"


def raw_schema(output_dir: str) -> schema_pb2.Schema:
    """The raw schema a run used (``metadata/schema.pbtxt``); readable as soon as
    the outputs are in place, before ``run_summary.json`` is."""
    with tf.io.gfile.GFile(os.path.join(output_dir, "metadata", "schema.pbtxt")) as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())


class RunDir:
    """The outputs of ``python -m pipelines run`` under one directory."""

    def __init__(self, path: str):
        summary_path = os.path.join(path, SUMMARY_FILE)
        if not tf.io.gfile.exists(summary_path):
            raise UserError(f"{path} holds no completed run ({SUMMARY_FILE} is missing); "
                            f"run `python -m pipelines run --output_dir {path}` first")
        with tf.io.gfile.GFile(summary_path) as f:
            self.summary = json.load(f)
        self.path = path

    @functools.cached_property
    def dataset(self) -> datasets.Dataset:
        return datasets.get_dataset(self.summary["dataset"])

    @functools.cached_property
    def tft_output(self) -> tft.TFTransformOutput:
        return tft.TFTransformOutput(self.path)

    def schema(self) -> schema_pb2.Schema:
        return raw_schema(self.path)

    @property
    def schema_file(self) -> str:
        """Where the run's schema came from, as fixes should name it."""
        return self.summary.get("schema_file") or f"schemas/{self.summary['dataset']}.pbtxt"

    def data_files(self, split: str) -> list[str]:
        """The transformed TFRecord shards of ``split``, sorted."""
        files = sorted(tf.io.gfile.glob(os.path.join(self.path, "data", split, "*.tfrecord.gz")))
        if not files:
            raise UserError(f"{self.path} has no transformed {split!r} data")
        return files
