"""Checks made before a pipeline is built, so that a mistake costs a second,
not a slow failed run: Beam flags, inputs, the schema, what Dataflow can reach.

Each failure is a ``UserError``: one line that says what to fix.
"""

import logging

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

import schemas
from pipelines.datasets import Dataset
from pipelines.decode.csv_decoder import CsvDecoder
from pipelines.decode.files import match_files, open_input, total_bytes
from pipelines.errors import UserError
from pipelines.stages import progress

__all__ = [
    "announce_input_size", "check_beam_flags", "check_input", "check_reachable_by_workers",
    "load_schema",
]


def check_beam_flags(beam_args: list[str]) -> None:
    """Fails on flags that neither this launcher nor any Beam option knows."""
    parsers = []
    beam_logger = logging.getLogger("apache_beam.options.pipeline_options")
    level = beam_logger.level
    beam_logger.setLevel(logging.ERROR)  # Beam would only warn and drop them
    try:
        PipelineOptions(beam_args).get_all_options(add_extra_args_fn=parsers.append)
    finally:
        beam_logger.setLevel(level)
    _, unknown = parsers[0].parse_known_args(beam_args)
    flags = [arg for arg in unknown if arg.startswith("-")]
    if flags:
        raise UserError(f"unrecognized flags (neither this pipeline's nor Beam's): "
                        f"{' '.join(flags)}; see python -m pipelines run --help")


def check_input(pattern: str, decoder: CsvDecoder) -> list[str] | None:
    """Local inputs must exist, carry the schema's header and hold a row; remote
    ones are checked when the pipeline runs (building a job needs no cloud access).

    Returns the schema's columns the files lack (a serving decoder's files may
    lack the label), or None for remote inputs, which are not read here.
    """
    if "://" in pattern:
        return None
    files = match_files(pattern)
    lacking = set()
    for path in files:
        with open_input(path) as stream:
            lacking.update(decoder.check_header(stream, path))
    for path in files:
        with open_input(path) as stream:
            if next(decoder.decode(stream, path, limit=1), None) is not None:
                return sorted(lacking)
    raise UserError(f"{pattern} holds no data rows: {len(files)} file(s) with a header only")


def check_reachable_by_workers(output_dir: str, *inputs: str | None) -> None:
    """Dataflow workers read and write GCS only."""
    for path in (output_dir, *inputs):
        if path and not path.startswith("gs://"):
            raise UserError(f"{path} is not on GCS, and Dataflow workers cannot reach this "
                            f"machine's files: copy it to gs://BUCKET/... (gsutil cp) and "
                            f"pass that path")


def load_schema(dataset: Dataset, path: str | None) -> tuple[schema_pb2.Schema, str]:
    """The curated schema, or the one at ``path``, and the file it came from;
    one readable line if it does not parse."""
    schema_file = path or dataset.schema_file
    try:
        if path is None:
            return dataset.schema(), schema_file
        if not FileSystems.exists(path):
            raise UserError(f"--schema {path}: no such file")
        with FileSystems.open(path) as f:
            return schemas.parse_schema(f.read().decode("utf-8")), schema_file
    except text_format.ParseError as error:
        raise UserError(f"{schema_file} does not parse as a TFMD schema: {error}") from None


def announce_input_size(patterns: list[str], limit: int | None) -> None:
    """Tells the read stage's progress the size of its input, so that it can show
    the share read and the time left: local inputs read whole only."""
    if limit is None and patterns and not any("://" in p for p in patterns):
        progress.expect_bytes("read", sum(total_bytes(p) for p in patterns))
