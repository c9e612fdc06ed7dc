"""Reading and writing the records' JSON files, local or remote (``gs://``)."""

import json

import tensorflow as tf

from pipelines.errors import UserError

__all__ = ["read_json", "write_json"]


def read_json(path: str) -> dict:
    """The JSON document at ``path``.

    Raises:
      UserError: it does not parse.
    """
    with tf.io.gfile.GFile(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as error:
            raise UserError(f"{path} does not parse as JSON: {error}") from None


def write_json(path: str, document: dict) -> None:
    """A JSON document as the records are written: indented, one trailing newline."""
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(document, indent=2) + "\n")
