"""Decodes CSV into typed Arrow RecordBatches in the layout TFDV and TFT read.

pyarrow's vectorised reader parses large blocks of a file at once; every value
then becomes a ``large_list`` of length one (a null list when the value is
missing), the canonical TFXIO layout that TFDV's statistics and TFT's
TensorAdapter consume without any per-row Python.

Nothing is dropped silently: a row with the wrong number of fields, a value that
does not parse as its schema type (or is not UTF-8), or a missing value in a
required column comes back as a ``RejectedRow`` with its physical line number
and the reason.
"""

import csv
import dataclasses
import functools
import json
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import split
from pipelines.errors import UserError

__all__ = [
    "ROW_KEY",
    "Column",
    "CsvFormat",
    "CsvDecoder",
    "HeaderMismatchError",
    "RejectedRow",
    "arrow_schema",
    "as_list_array",
    "columns_from_schema",
    "header_names",
]

ROW_KEY = split.ROW_KEY

_ARROW_TYPES = {
    schema_pb2.INT: pa.int64(),
    schema_pb2.FLOAT: pa.float32(),
    schema_pb2.BYTES: pa.large_binary(),
}
# Chunk size for locating the offending values once a vectorised cast has failed.
_PROBE_CHUNK = 1024


class HeaderMismatchError(UserError):
    """The CSV header does not name exactly the schema's columns."""


@dataclasses.dataclass(frozen=True)
class CsvFormat:
    """How a dataset's CSV files are written."""

    delimiter: str = ","
    null_values: tuple[str, ...] = ("",)
    key_columns: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Column:
    """A raw column as the schema declares it."""

    name: str
    type: int  # schema_pb2.FeatureType
    required: bool

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.type]


@dataclasses.dataclass(frozen=True)
class RejectedRow:
    """A row that could not be decoded, kept for the dead-letter output."""

    source: str
    line: int | None
    reason: str
    text: str

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)


def columns_from_schema(schema: schema_pb2.Schema) -> list[Column]:
    """The schema's features as columns; required means present in every row."""
    return [
        Column(f.name, f.type, f.presence.min_fraction >= 1.0)
        for f in schema.feature
    ]


def arrow_schema(columns: list[Column]) -> pa.Schema:
    """The Arrow schema of decoded batches: the columns, then ``row_key``."""
    fields = [pa.field(c.name, pa.large_list(c.arrow_type)) for c in columns]
    return pa.schema(fields + [pa.field(ROW_KEY, pa.large_list(pa.int64()))])


class CsvDecoder:
    """Turns CSV byte streams into typed RecordBatches plus rejected rows."""

    def __init__(self, columns: list[Column], csv_format: CsvFormat,
                 block_bytes: int = 4 << 20):
        self._columns = columns
        self._format = csv_format
        self._block_bytes = block_bytes
        self._arrow_schema = arrow_schema(columns)
        self._null_values = pa.array(csv_format.null_values, pa.binary())

    @property
    def output_schema(self) -> pa.Schema:
        return self._arrow_schema

    def decode(self, stream: BinaryIO, source: str, limit: int | None = None
               ) -> Iterator[pa.RecordBatch | RejectedRow]:
        """Yields decoded batches and rejected rows of one file, in file order.

        The stream is read here in blocks cut at line ends and each block is
        parsed from memory, so pyarrow never calls back into a Python file
        object, and the physical line number of every row is known exactly (a
        value may not contain a line break: such a row is rejected).

        Args:
          stream: the file's (decompressed) bytes.
          source: the file's name, recorded with rejected rows.
          limit: decode only the first ``limit`` data lines.

        Raises:
          HeaderMismatchError: the header's columns differ from the schema's.
        """
        names = self._read_header(stream, source)
        first_line = 2  # of the next block; line 1 is the header
        remaining = limit
        for block in _line_blocks(stream, self._block_bytes):
            lines = block.count(b"\n") + (not block.endswith(b"\n"))
            if remaining is not None and lines > remaining:
                block, lines = _first_lines(block, remaining), remaining
            yield from self._decode_block(block, names, first_line, source)
            first_line += lines
            if remaining is not None:
                remaining -= lines
                if remaining == 0:
                    return

    def check_header(self, stream: BinaryIO, source: str) -> None:
        """Reads only the header of ``stream``; raises HeaderMismatchError if off."""
        self._read_header(stream, source)

    def _read_header(self, stream: BinaryIO, source: str) -> list[str]:
        names = header_names(stream, self._format)
        expected = [c.name for c in self._columns]
        missing = sorted(set(expected) - set(names))
        unexpected = sorted(set(names) - set(expected))
        if missing or unexpected:
            problems = []
            if missing:
                problems.append(f"missing schema columns {missing}")
            if unexpected:
                problems.append(f"unexpected columns {unexpected}")
            raise HeaderMismatchError(
                f"{source}: CSV header has {' and '.join(problems)}; the header "
                f"must name exactly the schema's columns")
        return names

    def _decode_block(self, block: bytes, names: list[str], first_line: int,
                      source: str) -> Iterator[pa.RecordBatch | RejectedRow]:
        invalid: list[pa_csv.InvalidRow] = []

        def skip(row: pa_csv.InvalidRow) -> str:
            invalid.append(row)
            return "skip"

        table = pa_csv.read_csv(
            pa.BufferReader(block),
            read_options=pa_csv.ReadOptions(
                column_names=names, block_size=len(block) + 1, use_threads=False),
            parse_options=pa_csv.ParseOptions(
                delimiter=self._format.delimiter, invalid_row_handler=skip,
                # A blank line is a row with the wrong number of fields, not nothing.
                ignore_empty_lines=False),
            # Everything is read as raw bytes: typing happens in _type_batch, where
            # a bad value rejects its row instead of failing the whole block.
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.binary() for name in names},
                null_values=[], strings_can_be_null=False,
                quoted_strings_can_be_null=False, check_utf8=False))
        skipped = []
        for row in invalid:
            line = None if row.number is None else first_line + row.number - 1
            skipped.append(line)
            yield RejectedRow(source, line,
                              f"expected {row.expected_columns} fields, "
                              f"found {row.actual_columns}", row.text)
        if table.num_rows:
            lines = np.setdiff1d(
                np.arange(first_line, first_line + table.num_rows + len(skipped)),
                np.array([n for n in skipped if n is not None], dtype=np.int64))
            yield from self._type_batch(
                table.combine_chunks().to_batches()[0], lines, source)

    def _type_batch(self, batch: pa.RecordBatch, lines: np.ndarray, source: str
                    ) -> Iterator[pa.RecordBatch | RejectedRow]:
        """Types one parsed block; rows that do not fit the schema are rejected."""
        raw = {name: batch.column(name) for name in batch.schema.names}
        reasons: dict[int, str] = {}
        all_empty = functools.reduce(pc.and_, (pc.equal(a, b"") for a in raw.values()))
        for i in np.flatnonzero(_to_numpy(all_empty)):
            reasons[int(i)] = "empty line"
        for key in self._format.key_columns:
            # Keys are fingerprinted as UTF-8 text, as BigQuery STRINGs are.
            for i in _uncastable(raw[key], pa.string()):
                reasons.setdefault(i, f"{key}: key column is not valid UTF-8")
        values = {}
        for column in self._columns:
            missing = pc.is_in(raw[column.name], value_set=self._null_values)
            if column.required:
                for i in np.flatnonzero(_to_numpy(missing)):
                    reasons.setdefault(int(i), f"{column.name}: missing required value")
            values[column.name] = pc.if_else(missing, None, raw[column.name])
        typed = {}
        for column in self._columns:
            try:
                typed[column.name] = _cast(values[column.name], column.arrow_type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                for i in _uncastable(values[column.name], column.arrow_type):
                    reasons.setdefault(
                        i, f"{column.name}: cannot parse {values[column.name][i].as_py()!r} "
                           f"as {schema_pb2.FeatureType.Name(column.type)}")
        if reasons:
            yield from self._rejected(raw, reasons, lines, source)
            keep = np.ones(batch.num_rows, dtype=bool)
            keep[list(reasons)] = False
            if not keep.any():
                return
            mask = pa.array(keep)
            raw = {name: array.filter(mask) for name, array in raw.items()}
            typed = {column.name: typed[column.name].filter(mask) if column.name in typed
                     else _cast(values[column.name].filter(mask), column.arrow_type)
                     for column in self._columns}
        yield self._assemble(raw, typed)

    def _rejected(self, raw: dict[str, pa.Array], reasons: dict[int, str],
                  lines: np.ndarray, source: str) -> Iterator[RejectedRow]:
        names = list(raw)
        for i in sorted(reasons):
            fields = [raw[n][i].as_py().decode("utf-8", "backslashreplace") for n in names]
            text = self._format.delimiter.join(fields) if any(fields) else ""
            yield RejectedRow(source, int(lines[i]), reasons[i], text)

    def _assemble(self, raw: dict[str, pa.Array], typed: dict[str, pa.Array]
                  ) -> pa.RecordBatch:
        arrays = [as_list_array(typed[column.name]) for column in self._columns]
        key_columns = self._format.key_columns
        if key_columns:
            keys = pc.binary_join_element_wise(
                *(raw[k] for k in key_columns), split.KEY_SEPARATOR.encode())
            row_key = split.row_keys(pc.cast(keys, pa.string()).to_pylist())
        else:
            row_key = np.zeros(len(arrays[0]), dtype=np.int64)
        arrays.append(as_list_array(pa.array(row_key)))
        return pa.RecordBatch.from_arrays(arrays, schema=self._arrow_schema)


def header_names(stream: BinaryIO, csv_format: CsvFormat) -> list[str]:
    """The column names on the first line of a CSV stream."""
    first_line = stream.readline().decode("utf-8", "replace")
    return next(csv.reader([first_line], delimiter=csv_format.delimiter))


def _line_blocks(stream: BinaryIO, block_bytes: int) -> Iterator[bytes]:
    """The rest of ``stream`` in blocks of whole lines, about ``block_bytes`` each."""
    pending = b""
    while True:
        data = stream.read(block_bytes)
        if not data:
            if pending:
                yield pending
            return
        pending += data
        cut = pending.rfind(b"\n") + 1
        if cut:
            yield pending[:cut]
            pending = pending[cut:]


def _first_lines(block: bytes, count: int) -> bytes:
    """The first ``count`` lines of ``block``, which holds more than that."""
    ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == ord("\n"))
    return block[:ends[count - 1] + 1]


def _to_numpy(mask: pa.Array) -> np.ndarray:
    return mask.to_numpy(zero_copy_only=False)


def _cast(values: pa.Array, arrow_type: pa.DataType) -> pa.Array:
    """Raw bytes to ``arrow_type``; numbers are parsed from their UTF-8 text."""
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return pc.cast(values, arrow_type)
    return pc.cast(pc.cast(values, pa.string()), arrow_type)


def _uncastable(values: pa.Array, arrow_type: pa.DataType) -> list[int]:
    """Positions of non-null values that ``_cast`` cannot convert to ``arrow_type``.

    One vectorised cast settles a clean column; a dirty one is narrowed down by
    chunks, then value by value within the failing chunks.
    """
    try:
        _cast(values, arrow_type)
        return []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    bad = []
    for start in range(0, len(values), _PROBE_CHUNK):
        chunk = values.slice(start, _PROBE_CHUNK)
        try:
            _cast(chunk, arrow_type)
            continue
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        for offset in range(len(chunk)):
            try:
                _cast(chunk.slice(offset, 1), arrow_type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                bad.append(start + offset)
    return bad


def as_list_array(values: pa.Array) -> pa.LargeListArray:
    """Wraps each value in a list of one; a null value becomes a null list."""
    if values.null_count == 0:
        offsets = pa.array(np.arange(len(values) + 1, dtype=np.int64))
        return pa.LargeListArray.from_arrays(offsets, values)
    present = _to_numpy(pc.is_valid(values))
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(present, out=offsets[1:])
    return pa.LargeListArray.from_arrays(
        pa.array(offsets), values.drop_null(), mask=pa.array(~present))
