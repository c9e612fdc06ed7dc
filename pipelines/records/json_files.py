"""Reading and writing the records' JSON files, local or remote (``gs://``).

A record is written whole or not at all (``atomic_files``), so a reader finds
the previous document or the new one; a file that does not parse all the same
(a copy cut short, a disk that filled up under an older version) is a
``UserError`` naming it, never a ``JSONDecodeError``.
"""

import json

import tensorflow as tf

from pipelines.errors import UserError
from pipelines.records import atomic_files

__all__ = ["read_json", "write_json"]


def read_json(path: str) -> dict:
    """The JSON document at ``path``.

    Raises:
      UserError: it does not parse (an empty file included).
    """
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    if not data.strip():
        raise UserError(f"{path} does not parse as JSON: it is empty ({len(data)} bytes)")
    try:
        return json.loads(data)
    except ValueError as error:  # JSONDecodeError, or bytes that are not UTF-8
        raise UserError(f"{path} does not parse as JSON: {error}") from None


def write_json(path: str, document: dict) -> None:
    """A JSON document as the records are written: indented, one trailing
    newline, whole or not at all."""
    atomic_files.write_text(path, json.dumps(document, indent=2) + "\n")
