"""Curated TFMD schemas, one ``<dataset>.pbtxt`` per registered dataset.

The schema is the single source of truth for a dataset's raw features: TFDV
validates statistics against it and the raw feature spec that TFT analyzes is
derived from it, so the two cannot drift apart.
"""

import importlib.resources

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

__all__ = ["load_schema", "parse_schema", "schema_file"]


def parse_schema(text: str) -> schema_pb2.Schema:
    """Parses a schema from its protobuf text format."""
    return text_format.Parse(text, schema_pb2.Schema())


def load_schema(dataset: str) -> schema_pb2.Schema:
    """Loads the curated schema shipped for ``dataset`` as package data."""
    resource = importlib.resources.files(__name__) / f"{dataset}.pbtxt"
    return parse_schema(resource.read_text(encoding="utf-8"))


def schema_file(dataset: str) -> str:
    """The curated schema's path in this repository, as messages and fixes name it."""
    return f"schemas/{dataset}.pbtxt"
