"""Decodes CSV files into typed Arrow RecordBatches (the layout of ``columns``).

pyarrow's vectorised reader parses large blocks of a file at once, every value
is read as raw bytes and each column is then cast to its schema type, so one
bad value rejects its row, not its block.

Nothing is dropped silently. A ``RejectedRow`` carries the raw line, its
physical line number, a ``kind`` and the reason, for:

- ``wrong_field_count``: too few or too many fields, and a line of more than
  ``MAX_FIELDS`` delimiters (quoted or not), rejected before pyarrow parses it:
  pyarrow 10 crashes the process on a line of about 400,000 fields;
- ``unbalanced_quotes``: a quote that opens a value which never closes (by the
  end of the file, or within ``MAX_LINE_BYTES``), or whose record of several
  lines is no record (the wrong number of fields, not UTF-8: a stray quote).
  Only that line is rejected; the lines after it are read again as records;
- ``invalid_utf8``: a line, or a text value, that is not UTF-8;
- ``empty_line`` (screened before parsing, so that a file of blank lines costs
  what any file of short lines costs) and ``repeated_header`` (the header line
  again, as happens when files are concatenated);
- ``overlong_line``: longer than ``MAX_LINE_BYTES``, skipped without holding it;
- ``missing_required``: a missing value in a column the schema requires;
- ``unparsable``: a value that does not parse as its schema type;
- ``out_of_domain``: a value outside its domain, for the features whose schema
  annotation carries the tag ``reject_out_of_domain`` (other domain violations
  are TFDV anomalies, reported but not rejected).

Records follow RFC 4180: a quoted value may hold delimiters, doubled quotes
and line breaks. A block of lines none of which holds an odd number of quote
characters is all one-line records and goes to pyarrow (the fast path, as
fast as before records could span lines). From the first line that does, the
records are read as Python's ``csv`` module reads them, each numbered by the
line it starts on, and a record still open at the block's end is carried into
the next block: a scan of the quotes finds where each record ends, pyarrow
parses the records whose quotes all open and close values where RFC 4180 puts
them (``newlines_in_values``), and the ``csv`` module reads the others (a
stray quote, a record to reject: ``CsvDecoder._decode_quoted``). Files are
decoded whole by one worker (``ReadRaw``), so no record is ever cut between
workers. A line break inside a value reads as ``\n`` whichever way it was
written: line ends are normalised before parsing.

A column with a value format (``CsvFormat.column_formats``: dates, ISO 8601
with a zone, decimal commas; ``value_formats``) is converted before it is
typed; a value the format does not read is ``unparsable``, its reason naming
the format.

A serving decoder (``for_serving``) also reads files that lack the columns
serving data may lack (the label and the label-only inputs: ``Column.in_serving``):
their header does not name them or, without a header, their lines hold the
other columns in order. Those columns decode as missing values.

A serving decoder that reads files by their header (``reading_by_header``, as
``validate`` does) also reads a file whose first line names most of the
serving columns, whatever the dataset's dialect says about a header, the column
order or the delimiter: columns are matched by name, the file's other columns
are left out, and a column the header lacks decodes as missing in every row
(``file_columns`` says which, for the validation to report).

A decoder ``with_origin`` also gives every row the file it came from and its
physical line number (``ORIGIN_FILE``, ``ORIGIN_LINE``: names no schema column
can have), for ``predict`` to write beside a prediction of a row that has no
key to join it back by.

A header is refused in one line (``HeaderMismatchError``) when it names a
schema column twice (which of the two holds the column?), holds more than
``MAX_FIELDS`` names, or is longer than ``MAX_LINE_BYTES``.
"""

import codecs
import collections
import csv
import dataclasses
import functools
import itertools
import re
from collections.abc import Callable, Generator, Iterator
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines.decode import row_keys, value_formats
from pipelines.decode.columns import Column, CsvFormat, RejectedRow, arrow_schema, as_list_array
from pipelines.errors import UserError

__all__ = ["MAX_FIELDS", "MAX_LINE_BYTES", "ORIGIN_FILE", "ORIGIN_LINE", "CsvDecoder",
           "FileColumns", "HeaderMismatchError", "header_names"]

MAX_LINE_BYTES = 8 << 20
# Delimiters a line may hold, quoted or not: far more than any schema has columns,
# far fewer than the ~400,000 fields in one line at which pyarrow 10's parser
# crashes the process (measured: 399,7xx).
MAX_FIELDS = 1 << 16
# A field may be as long as a line may be. Python's csv module (headers, and the
# dialect's sample) otherwise raises on a field over 128 KiB; the limit is the
# process's, and only ever raised here.
csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))
_QUOTE, _NEWLINE = ord('"'), ord("\n")
_UTF8_BOM = codecs.BOM_UTF8
# A line feed with any carriage returns before it ends one line, and so does a lone
# carriage return.
_LINE_END = re.compile(rb"\r*\n|\r")

# The line after a block's last, for the csv module to read: if a record is
# still open, the line joins it; if not, it is a record of its own.
_SENTINEL = "\n"
_NEVER_CLOSES = "unbalanced quotes: a quoted value opened on this line never closes"
_STRAY_QUOTE = ("unbalanced quotes: the quoted value opened on this line makes no record "
                "of the following lines")
# Chunk size for locating the offending values once a vectorised cast has failed.
_PROBE_CHUNK = 1024
# Fewer regular records than this between two that need the csv module are read
# with them by the csv module: typing a batch of a few rows costs more.
_MIN_PYARROW_RECORDS = 64
# The delimiters a file read by its header may use, besides the dataset's.
_HEADER_DELIMITERS = (",", ";", "\t", "|")
# What a column the schema does not know is read as, in a file read by its header:
# "<_EXTRA><position>: <its name>", a name no schema column can have.
_EXTRA = "\0extra "
# A row's file and physical line, in the batches of a decoder ``with_origin``.
ORIGIN_FILE, ORIGIN_LINE = "\0origin file", "\0origin line"


class HeaderMismatchError(UserError):
    """The CSV header does not name exactly the schema's columns."""


@dataclasses.dataclass(frozen=True)
class FileColumns:
    """How one file's columns meet the schema's.

    Attributes:
      names: the columns as the file holds them, in file order.
      lacking: the schema's columns the file does not hold (decoded as missing).
      missing: those of them serving data must hold (not the label's).
      extra: the file's columns the schema does not know (left out).
      by_header: the file was read by a header the dataset's dialect does not
        describe (another order, delimiter, or a header where it expects none).
      delimiter: the delimiter the file was read with.
    """

    names: tuple[str, ...]
    lacking: tuple[str, ...]
    missing: tuple[str, ...]
    extra: tuple[str, ...]
    by_header: bool
    delimiter: str


class _Utf8Lines:
    """A file's bytes as UTF-8 with ``\\n`` line ends, whatever the file wrote.

    A UTF-8 byte-order mark at the start is dropped; text in another encoding
    is re-encoded as UTF-8 (bytes the encoding cannot map stay as they are, so
    their line is rejected as ``invalid_utf8`` rather than silently changed);
    ``\\r\\n``, a lone ``\\r`` (old Mac exports) and ``\\r\\r\\n`` (a file
    converted twice) each end one line. Only ``read(size)`` is offered, as the
    decoder needs; it returns ``b""`` at the end of the file only.
    """

    def __init__(self, stream: BinaryIO, encoding: str):
        self._stream = stream
        self._started = False
        self._carry = b""  # trailing \r, which may belong to a \r\n across reads
        self._decoder = None
        if codecs.lookup(encoding).name != "utf-8":
            self._decoder = codecs.getincrementaldecoder(encoding)(errors="surrogateescape")

    def read(self, size: int = -1) -> bytes:
        while True:
            data = self._stream.read(size)
            final = not data
            if self._decoder is not None:
                data = self._decoder.decode(data, final=final).encode(
                    "utf-8", errors="surrogateescape")
            if not self._started and (data or final):
                self._started = True
                data = data.removeprefix(_UTF8_BOM)
            data = self._carry + data
            self._carry = b""
            if not final:
                kept = data.rstrip(b"\r")
                data, self._carry = kept, data[len(kept):]
            if b"\r" in data:
                data = _LINE_END.sub(b"\n", data)
            if data or final:
                return data


def _text_stream(stream: BinaryIO, csv_format: CsvFormat) -> _Utf8Lines:
    return stream if isinstance(stream, _Utf8Lines) else _Utf8Lines(stream, csv_format.encoding)


def header_names(stream: BinaryIO, csv_format: CsvFormat) -> list[str]:
    """The column names on the first line of a CSV stream (none when the line
    is longer than ``MAX_LINE_BYTES``)."""
    first = _read_first_line(_text_stream(stream, csv_format))
    return _fields(first.line, csv_format) if first.whole else []


@dataclasses.dataclass(frozen=True)
class _FirstLine:
    """A file's first line, and the bytes read past it; a line longer than
    ``MAX_LINE_BYTES`` is not whole: ``line`` holds what was read of it."""

    line: bytes
    rest: bytes
    whole: bool = True

    def as_data(self) -> bytes:
        """The bytes read, the first line too, for a decoder to read as data."""
        if not self.whole:
            return self.line
        return self.line + b"\n" + self.rest if self.line or self.rest else b""


def _read_first_line(stream: _Utf8Lines, max_line_bytes: int | None = None,
                     chunk_bytes: int = 1 << 16) -> _FirstLine:
    max_line_bytes = max_line_bytes or MAX_LINE_BYTES
    data = b""
    while b"\n" not in data and len(data) <= max_line_bytes:
        chunk = stream.read(chunk_bytes)
        if not chunk:
            break
        data += chunk
    line, newline, rest = data.partition(b"\n")
    if not newline and len(line) > max_line_bytes:
        return _FirstLine(data, b"", whole=False)
    return _FirstLine(line, rest)


def _fields(line: bytes, csv_format: CsvFormat) -> list[str]:
    text = line.decode("utf-8", "replace")
    return next(csv.reader([text], delimiter=csv_format.delimiter,
                           skipinitialspace=csv_format.skip_initial_space), [])


@dataclasses.dataclass(frozen=True)
class _OverlongLine:
    prefix: bytes


@dataclasses.dataclass
class _Block:
    """Whole lines of a file, with the physical number of each line."""

    data: bytes
    numbers: np.ndarray
    starts: np.ndarray
    ends: np.ndarray  # exclusive, without the line break

    @classmethod
    def of(cls, data: bytes, first_line: int) -> "_Block":
        breaks = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == _NEWLINE)
        ends = breaks if data.endswith(b"\n") else np.append(breaks, len(data))
        starts = np.concatenate([[0], breaks[:len(ends) - 1] + 1]).astype(np.int64)
        return cls(data, first_line + np.arange(len(ends)), starts, ends)

    def line(self, number: int) -> bytes:
        i = int(np.searchsorted(self.numbers, number))  # numbers ascend
        return self.data[self.starts[i]:self.ends[i]].rstrip(b"\r")

    def lines(self, first: int, end: int) -> "_Block":
        """The block of lines ``first`` to ``end`` (exclusive), by position."""
        stop = len(self.data) if end == len(self.numbers) else int(self.starts[end])
        offset = int(self.starts[first])
        return _Block(self.data[offset:stop], self.numbers[first:end],
                      self.starts[first:end] - offset, self.ends[first:end] - offset)

    def head(self, count: int) -> "_Block":
        return _Block(self.data[:self.ends[count - 1] + 1], self.numbers[:count],
                      self.starts[:count], self.ends[:count])


class CsvDecoder:
    """Turns CSV byte streams into typed RecordBatches plus rejected rows."""

    def __init__(self, columns: list[Column], csv_format: CsvFormat,
                 block_bytes: int = 4 << 20, max_line_bytes: int | None = None,
                 serving: bool = False, by_header: bool = False, origin: bool = False):
        self._columns = columns
        self._format = csv_format
        self._block_bytes = block_bytes
        self._max_line_bytes = max_line_bytes or MAX_LINE_BYTES
        self._arrow_schema = arrow_schema(columns)
        if origin:
            self._arrow_schema = self._arrow_schema.append(
                pa.field(ORIGIN_FILE, pa.string())).append(pa.field(ORIGIN_LINE, pa.int64()))
        self._origin = origin
        # A column's own markers too (``CsvFormat.column_null_values``).
        self._null_values = {c.name: pa.array(csv_format.null_values_of(c.name), pa.binary())
                             for c in columns}
        # The columns a file may lack: those not in the serving environment, when
        # this decoder reads serving data.
        self._may_lack = [c.name for c in columns if serving and not c.in_serving]
        self._serving = serving
        self._by_header = by_header
        # A column that writes its values its own way (a date, a decimal comma)
        # is converted to what pyarrow types before it is typed.
        self._value_formats = dict(csv_format.column_formats)
        self._converters = {c: value_formats.converter(f)
                            for c, f in self._value_formats.items()}

    def for_serving(self) -> "CsvDecoder":
        """The decoder of serving files, which may lack the columns not in the
        schema's ``SERVING`` environment."""
        return CsvDecoder(self._columns, self._format, self._block_bytes,
                          self._max_line_bytes, serving=True, by_header=self._by_header,
                          origin=self._origin)

    def reading_by_header(self) -> "CsvDecoder":
        """This decoder, but its serving decoder reads a file whose first line
        names most of the serving columns by that header (see the module's
        docstring); a file it cannot place so is read by the dialect."""
        return CsvDecoder(self._columns, self._format, self._block_bytes,
                          self._max_line_bytes, serving=self._serving, by_header=True,
                          origin=self._origin)

    def with_origin(self) -> "CsvDecoder":
        """This decoder, its batches carrying each row's file and line number
        (``ORIGIN_FILE``, ``ORIGIN_LINE``)."""
        return CsvDecoder(self._columns, self._format, self._block_bytes,
                          self._max_line_bytes, serving=self._serving,
                          by_header=self._by_header, origin=True)

    @property
    def output_schema(self) -> pa.Schema:
        return self._arrow_schema

    def decode(self, stream: BinaryIO, source: str, limit: int | None = None
               ) -> Iterator[pa.RecordBatch | RejectedRow]:
        """Yields decoded batches and rejected rows of one file, in file order.

        The stream is read here in blocks cut at line ends and each block is
        parsed from memory, so pyarrow never calls back into a Python file
        object, and the physical line number of every row is known exactly.

        Args:
          stream: the file's (decompressed) bytes.
          source: the file's name, recorded with rejected rows.
          limit: decode only the first ``limit`` data lines.

        Raises:
          HeaderMismatchError: the header's columns differ from the schema's.
        """
        stream = _text_stream(stream, self._format)
        names, rest, csv_format = self._read_header(stream, source)
        next_line = 2 if csv_format.has_header else 1  # line 1 is the header, if any
        remaining = limit
        # The lines of a record whose quoted value is still open at the end of a
        # block: they are decoded with the next block, which may close it.
        carried: _Block | None = None
        for chunk in _line_blocks(stream, self._block_bytes, self._max_line_bytes, rest):
            if isinstance(chunk, _OverlongLine):
                if carried is not None:  # a record cannot hold an overlong line
                    yield from self._decode_lines(carried, names, source, csv_format, True)
                    carried = None
                yield RejectedRow(
                    source, next_line, "overlong_line", _overlong(self._max_line_bytes),
                    chunk.prefix[:200].decode("utf-8", "backslashreplace") + "...")
                next_line += 1
                lines = 1
            else:
                block = _Block.of(chunk, next_line)
                lines = len(block.numbers)
                if remaining is not None and lines > remaining:
                    block, lines = block.head(remaining), remaining
                if carried is not None:
                    block = _Block.of(carried.data + block.data, int(carried.numbers[0]))
                carried = yield from self._decode_lines(block, names, source, csv_format,
                                                        False)
                next_line += lines
            if remaining is not None:
                remaining -= lines
                if remaining == 0:
                    break
        if carried is not None:
            yield from self._decode_lines(carried, names, source, csv_format, True)

    def check_header(self, stream: BinaryIO, source: str) -> list[str]:
        """Reads only the first line of ``stream``; raises HeaderMismatchError if
        off. Returns the schema's columns the file lacks (a serving file's)."""
        return list(self.file_columns(stream, source).lacking)

    def file_columns(self, stream: BinaryIO, source: str) -> FileColumns:
        """Reads only the first line of ``stream``: how the file's columns meet
        the schema's. Raises HeaderMismatchError if they cannot be read."""
        names, _, csv_format = self._read_header(_text_stream(stream, self._format), source)
        expected = [c.name for c in self._columns]
        as_written = [n.split(": ", 1)[1] if n.startswith(_EXTRA) else n for n in names]
        lacking = tuple(n for n in expected if n not in names)
        return FileColumns(
            names=tuple(as_written), lacking=lacking,
            missing=tuple(n for n in lacking if n not in self._may_lack),
            extra=tuple(w for n, w in zip(names, as_written, strict=True)
                        if n.startswith(_EXTRA) or (
                            n not in expected and n not in csv_format.ignored_columns)),
            by_header=csv_format is not self._format, delimiter=csv_format.delimiter)

    def _read_header(self, stream: _Utf8Lines, source: str
                     ) -> tuple[list[str], bytes, CsvFormat]:
        """The file's column names, what was read past the header line (the
        first line itself too, when it is data), and the format to read the
        file with (the dialect's, or the one its header calls for)."""
        default_names = list(self._format.column_names) or [c.name for c in self._columns]
        by_header = self._serving and self._by_header
        if not self._format.has_header and not self._may_lack and not by_header:
            return default_names, b"", self._format
        first = _read_first_line(stream, self._max_line_bytes)
        line, rest = first.line, first.rest
        if not first.whole:
            if self._format.has_header:
                raise HeaderMismatchError(
                    f"{source}: the first line is longer than {self._max_line_bytes:,} bytes, "
                    f"which no header is")
            # Data: the decoder rejects it as an overlong line.
            return default_names, first.as_data(), self._format
        if by_header:
            placed = self._header_format(line, source)
            if placed is not None:
                return placed[0], rest, placed[1]
        if not self._format.has_header:
            # Without a header, the number of fields on the first line tells
            # whether the file holds every column or the serving columns only.
            serving_names = [n for n in default_names if n not in self._may_lack]
            fields = _fields(line, self._format)
            return (serving_names if len(fields) == len(serving_names) else default_names,
                    first.as_data(), self._format)
        names = _fields(line, self._format)
        if not names:
            raise HeaderMismatchError(f"{source} is empty: it has no header line")
        _check_header_names(names, [c.name for c in self._columns], source)
        expected = [c.name for c in self._columns]
        missing = [n for n in expected if n not in names and n not in self._may_lack]
        unexpected = [n for n in names
                      if n not in expected and n not in self._format.ignored_columns]
        if missing or unexpected:
            problems = []
            if missing:
                problems.append(f"missing schema columns {_few(missing)}")
            if unexpected:
                problems.append(f"unexpected columns {_few(unexpected)}")
            raise HeaderMismatchError(
                f"{source}: CSV header has {' and '.join(problems)}; the header "
                f"must name exactly the schema's columns")
        return names, rest, self._format

    def _header_format(self, line: bytes, source: str
                       ) -> tuple[list[str], CsvFormat] | None:
        """The names on ``line`` and the format to read its file with, when the
        line is a header naming at least half of the serving columns (with the
        dialect's delimiter or another common one); None when it is not. A file
        whose header is exactly what the dialect expects keeps the dialect."""
        expected = [c.name for c in self._columns]
        serving = [n for n in expected if n not in self._may_lack]
        best = None
        for delimiter in dict.fromkeys((self._format.delimiter, *_HEADER_DELIMITERS)):
            candidate = dataclasses.replace(self._format, delimiter=delimiter,
                                            has_header=True)
            fields = _fields(line, candidate)
            matched = len({f.strip() for f in fields} & set(serving))
            if best is None or matched > best[0]:
                best = (matched, fields, candidate)
        matched, fields, csv_format = best
        if 2 * matched < len(serving):
            return None
        names = [f.strip() for f in fields]
        _check_header_names(names, expected, source)
        as_the_dialect_says = (
            self._format.has_header and names == fields
            and csv_format.delimiter == self._format.delimiter
            and all(n in names for n in serving)
            and all(n in expected or n in self._format.ignored_columns for n in names))
        if as_the_dialect_says:
            return names, self._format
        # The file's other columns are read under names no schema column has, so
        # that a blank or repeated name cannot collide with one.
        known = set(expected)
        names = [n if n in known and names.index(n) == i else f"{_EXTRA}{i}: {n}"
                 for i, n in enumerate(names)]
        spaced = any(f != f.lstrip() for f in fields[1:])
        return names, dataclasses.replace(
            csv_format, skip_initial_space=csv_format.skip_initial_space or spaced,
            ignored_columns=tuple(n for n in names if n.startswith(_EXTRA)))

    def _decode_lines(self, block: _Block, names: list[str], source: str,
                      csv_format: CsvFormat, final: bool
                      ) -> Generator[pa.RecordBatch | RejectedRow, None, _Block | None]:
        """Decodes a block of whole lines; returns the lines of a record left
        open at its end (None if there is none) for the next block to close,
        unless ``final`` (the file ends there).

        A block whose every line holds an even number of quote characters is
        all one-line records, and pyarrow parses it (the fast path). From the
        first line with an odd number on, the records may span lines: they are
        read as Python's ``csv`` module reads them (``_decode_quoted``).
        """
        while True:
            odd = _odd_quote_lines(block)
            if not len(odd):
                yield from self._decode_block(block, names, source, csv_format)
                return None
            if odd[0]:
                yield from self._decode_block(block.lines(0, int(odd[0])), names, source,
                                              csv_format)
                block = block.lines(int(odd[0]), len(block.numbers))
            opened = yield from self._decode_quoted(block, names, source, csv_format)
            if opened is None:
                return None
            record = block.lines(opened, len(block.numbers))
            if not final and len(record.data) <= self._max_line_bytes:
                return record
            # The file ends (or the record outgrows a line's limit) before its
            # quoted value closes: the quote is a stray one. Its line is rejected
            # and the lines after it are read again as records of their own.
            number = int(record.numbers[0])
            yield RejectedRow(source, number, "unbalanced_quotes", _NEVER_CLOSES,
                              _text(record.line(number)))
            if len(record.numbers) == 1:
                return None
            block = record.lines(1, len(record.numbers))

    def _decode_quoted(self, block: _Block, names: list[str], source: str,
                       csv_format: CsvFormat
                       ) -> Generator[pa.RecordBatch | RejectedRow, None, int | None]:
        """Decodes the records of a block exactly as ``_decode_records`` does, and
        returns what it returns, but has pyarrow parse the regular records.

        ``_scan_records`` finds where each record ends by counting quotes and
        marks the records that need the ``csv`` module: those whose quotes do
        not open a value at a field's start or close it at a field's end (where
        quote parity and the ``csv`` module may disagree about where a record
        ends), and those that would be rejected (empty, overlong, not UTF-8, the
        wrong number of fields). Runs of regular records go to pyarrow
        (``newlines_in_values``); each stretch of marked records, with the few
        regular ones between them (a batch of a handful of rows costs more to
        type than reading them with the ``csv`` module), goes to
        ``_decode_records`` as a block of its own, since every record boundary
        is one for the ``csv`` module too. If the ``csv`` module reads a record
        there as running on past the stretch, the scan was wrong about it, and
        the rest of the block is read by the ``csv`` module, as before.
        """
        records = _scan_records(block, csv_format.delimiter, len(names),
                                min(self._max_line_bytes, csv.field_size_limit()))
        if records is None:
            return (yield from self._decode_records(block, names, source, csv_format))
        done = 0  # records decoded
        for first, end in records.marked_runs(_MIN_PYARROW_RECORDS):
            if first > done:
                unparsed = yield from self._parse_records(block, records, done, first, names,
                                                          source, csv_format)
                if unparsed is not None:
                    first = unparsed
            start_line, end_line = records.first_lines[first], records.last_lines[end - 1] + 1
            opened = yield from self._decode_records(block.lines(start_line, end_line), names,
                                                     source, csv_format)
            if opened is not None:
                opened += start_line
                rest = yield from self._decode_records(
                    block.lines(opened, len(block.numbers)), names, source, csv_format)
                return None if rest is None else opened + rest
            done = end
        if done < len(records.first_lines):
            unparsed = yield from self._parse_records(block, records, done,
                                                      len(records.first_lines), names, source,
                                                      csv_format)
            if unparsed is not None:  # pyarrow read them otherwise: the csv module decides
                start_line = records.first_lines[unparsed]
                opened = yield from self._decode_records(
                    block.lines(start_line, len(block.numbers)), names, source, csv_format)
                return None if opened is None else start_line + opened
        if records.open_line is None:
            return None
        if records.open_regular:
            return records.open_line
        opened = yield from self._decode_records(
            block.lines(records.open_line, len(block.numbers)), names, source, csv_format)
        return None if opened is None else records.open_line + opened

    def _parse_records(self, block: _Block, records: "_Records", first: int, end: int,
                       names: list[str], source: str, csv_format: CsvFormat
                       ) -> Generator[pa.RecordBatch | RejectedRow, None, int | None]:
        """Has pyarrow parse the regular records ``first`` to ``end``; returns
        None, or ``first`` when pyarrow reads them otherwise than the scan did
        (nothing is yielded then: the ``csv`` module is to read them)."""
        starts, ends = records.starts[first:end], records.ends[first:end]
        stop = int(ends[-1]) + 1  # with the line break, if the block has one
        invalid: list[pa_csv.InvalidRow] = []

        def skip(row: pa_csv.InvalidRow) -> str:
            invalid.append(row)
            return "skip"

        table = _read_raw(block.data[int(starts[0]):stop], names, csv_format.delimiter, skip,
                          newlines_in_values=True)
        if invalid or table.num_rows != end - first:
            return first
        if not table.num_rows:
            return None
        numbers = block.numbers[records.first_lines[first:end]]

        def record(number: int) -> bytes:
            i = int(np.searchsorted(numbers, number))  # numbers ascend
            return block.data[starts[i]:ends[i]]

        batch = table.combine_chunks().to_batches()[0]
        if csv_format.skip_initial_space:
            batch = _strip_leading_spaces(batch)
        yield from self._type_batch(batch, numbers.astype(np.int64), names, source, record,
                                    csv_format)
        return None

    def _decode_records(self, block: _Block, names: list[str], source: str,
                        csv_format: CsvFormat
                        ) -> Generator[pa.RecordBatch | RejectedRow, None, int | None]:
        """Decodes the records of a block as Python's ``csv`` module reads them
        (a quoted value may hold delimiters, doubled quotes and line breaks);
        each is numbered by the line it starts on. Returns the index of the line
        where a record still open at the end of the block starts, or None.

        The checks are the one-line path's, made on each record: empty,
        overlong, not UTF-8, the wrong number of fields. A record of several
        lines that fails them was opened by a stray quote (``5'11"``, binary
        garbage), not by a quoted value: its first line is rejected as
        ``unbalanced_quotes`` and the lines after it are read again, so that
        one stray quote costs one line, as it did before records could span
        lines.
        """
        text = block.data.decode("utf-8", "surrogateescape")
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        rows, numbers, spans, rejected = [], [], {}, []
        start, opened = 0, None
        try:  # a block of UTF-8 needs no record checked one by one
            block.data.decode("utf-8")
            utf8 = True
        except UnicodeDecodeError:
            utf8 = False
        while start < len(lines):
            first = start
            reader = csv.reader(
                itertools.chain((line + "\n" for line in lines[first:]), (_SENTINEL,)),
                delimiter=csv_format.delimiter, skipinitialspace=csv_format.skip_initial_space)
            restart = None
            try:
                for fields in reader:
                    end = first + reader.line_num
                    if end > len(lines):  # the sentinel: it is a record, or closes one
                        opened = None if start == len(lines) else start
                        break
                    number = int(block.numbers[start])
                    data = block.data[block.starts[start]:block.ends[end - 1]]
                    problem = _record_problem(fields, data, len(names), self._max_line_bytes,
                                              utf8)
                    if problem is not None and end - start > 1:
                        rejected.append((number, "unbalanced_quotes", _STRAY_QUOTE,
                                         block.line(number)))
                        restart = start + 1
                        break
                    spans[number] = data
                    if problem is not None:
                        rejected.append((number, *problem, data))
                    else:
                        rows.append(fields)
                        numbers.append(number)
                    start = end
            except csv.Error:  # a value longer than a line may be: it never closed
                opened = start
            if restart is None:
                break
            start = restart
        for number, kind, reason, data in sorted(rejected, key=lambda r: r[0]):
            shown = _text(data)
            yield RejectedRow(source, number, kind, reason,
                              shown[:200] + "..." if kind == "overlong_line" else shown)
        if rows:
            arrays = [pa.array([f.encode("utf-8", "surrogateescape") for f in column],
                               pa.binary()) for column in zip(*rows, strict=True)]
            batch = pa.RecordBatch.from_arrays(arrays, names=names)
            if csv_format.skip_initial_space:
                batch = _strip_leading_spaces(batch)
            yield from self._type_batch(batch, np.array(numbers, dtype=np.int64), names,
                                        source, spans.__getitem__, csv_format)
        return opened

    def _decode_block(self, block: _Block, names: list[str], source: str,
                      csv_format: CsvFormat) -> Iterator[pa.RecordBatch | RejectedRow]:
        block, screened = _screen_lines(block, csv_format.delimiter.encode(),
                                        self._max_line_bytes)
        for number, (kind, reason, line) in screened.items():
            yield RejectedRow(source, number, kind, reason,
                              _text(line[:200]) + "..." if kind == "overlong_line" else _text(line))
        if not len(block.numbers):
            return
        invalid: list[pa_csv.InvalidRow] = []

        def skip(row: pa_csv.InvalidRow) -> str:
            invalid.append(row)
            return "skip"

        table = _read_raw(block.data, names, csv_format.delimiter, skip)
        skipped = set()
        for row in invalid:
            number = int(block.numbers[row.number - 1])
            skipped.add(number)
            yield RejectedRow(source, number, "wrong_field_count",
                              f"expected {row.expected_columns} fields, "
                              f"found {row.actual_columns}", _text(block.line(number)))
        if table.num_rows:
            lines = np.array([n for n in block.numbers if n not in skipped], dtype=np.int64)
            batch = table.combine_chunks().to_batches()[0]
            if csv_format.skip_initial_space:
                batch = _strip_leading_spaces(batch)
            yield from self._type_batch(batch, lines, names, source, block.line, csv_format)

    def _type_batch(self, batch: pa.RecordBatch, lines: np.ndarray, names: list[str],
                    source: str, raw_line: Callable[[int], bytes], csv_format: CsvFormat
                    ) -> Iterator[pa.RecordBatch | RejectedRow]:
        """Types one parsed block; rows that do not fit the schema are rejected."""
        raw = {name: batch.column(name) for name in names}
        lacking = [c.name for c in self._columns if c.name not in raw]
        reasons: dict[int, tuple[str, str]] = {}

        taken = np.zeros(batch.num_rows, dtype=bool)

        def reject(positions, kind: str, reason) -> None:
            # A row keeps its first reason; the others are not even worded (a block
            # of empty rows would otherwise word one per row and column).
            positions = np.asarray(positions, dtype=np.int64)
            for i in positions[~taken[positions]].tolist():
                reasons[i] = (kind, reason(i) if callable(reason) else reason)
            taken[positions] = True

        empty = functools.reduce(pc.and_, (pc.equal(a, b"") for a in raw.values()))
        reject(np.flatnonzero(_to_numpy(empty)), "empty_line", "empty line")
        if csv_format.has_header:
            header = functools.reduce(pc.and_, (pc.equal(raw[n], n.encode()) for n in names
                                                if not n.startswith(_EXTRA)))
            reject(np.flatnonzero(_to_numpy(header)), "repeated_header", "repeated header line")
        for name in lacking:  # a serving file without it: every value is missing
            raw[name] = pa.nulls(batch.num_rows, pa.binary())
        values = {}
        for column in self._columns:
            missing = pc.is_in(raw[column.name], value_set=self._null_values[column.name])
            if column.required and column.name not in lacking:
                reject(np.flatnonzero(_to_numpy(missing)), "missing_required",
                       f"{column.name}: missing required value")
            values[column.name] = pc.if_else(missing, None, raw[column.name])
        typed = {}
        for column in self._columns:
            column_values = values[column.name]
            cast = functools.partial(_cast, arrow_type=column.arrow_type,
                                     convert=self._converters.get(column.name))
            try:
                typed[column.name] = cast(column_values)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                bad = _uncastable(column_values, cast)
                value_format = self._value_formats.get(column.name)
                utf8 = column.type == schema_pb2.BYTES and value_format is None
                reject(bad, "invalid_utf8" if utf8 else "unparsable",
                       lambda i, c=column, v=column_values, f=value_format, u=utf8: (
                           f"{c.name}: not valid UTF-8" if u else
                           f"{c.name}: cannot read {v[i].as_py()!r} as "
                           f"{value_formats.describe(f)}" if f is not None else
                           f"{c.name}: cannot parse {v[i].as_py()!r} as "
                           f"{schema_pb2.FeatureType.Name(c.type)}"))
                # The rejected values become nulls, so the other checks still run.
                is_bad = np.zeros(len(column_values), dtype=bool)
                is_bad[bad] = True
                typed[column.name] = cast(pc.if_else(pa.array(is_bad), None, column_values))
            if column.hard_domain and column.domain is not None:
                outside = _outside(typed[column.name], column.domain)
                reject(outside, "out_of_domain", lambda i, c=column, t=typed[column.name]: (
                    f"{c.name}: {t[i].as_py()!r} is outside the schema's domain "
                    f"{_describe(c.domain)}"))
        if reasons:
            for i in sorted(reasons):
                kind, reason = reasons[i]
                yield RejectedRow(source, int(lines[i]), kind, reason,
                                  _text(raw_line(int(lines[i]))))
            keep = np.ones(batch.num_rows, dtype=bool)
            keep[list(reasons)] = False
            if not keep.any():
                return
            mask = pa.array(keep)
            raw = {name: array.filter(mask) for name, array in raw.items()}
            typed = {name: array.filter(mask) for name, array in typed.items()}
            lines = lines[keep]
        yield self._assemble(raw, typed, source, lines)

    def _assemble(self, raw: dict[str, pa.Array], typed: dict[str, pa.Array], source: str,
                  lines: np.ndarray) -> pa.RecordBatch:
        arrays = [as_list_array(typed[column.name]) for column in self._columns]
        key_columns = self._format.key_columns
        if key_columns:
            # A serving file may lack a key column (read by its header): its
            # rows are keyed as if the value were missing, not left without a key.
            keys = pc.cast(pc.binary_join_element_wise(
                *(raw[k] for k in key_columns), row_keys.KEY_SEPARATOR.encode(),
                null_handling="replace", null_replacement=row_keys.NULL_TEXT.encode()),
                pa.string())
        else:
            keys = pc.binary_join_element_wise(
                *(row_keys.column_texts(_key_values(c, raw, typed, self._converters.get(c.name)),
                                    c.type)
                  for c in self._columns), row_keys.KEY_SEPARATOR)
        row_key = row_keys.row_keys(keys)
        arrays.append(as_list_array(pa.array(row_key)))
        if self._origin:
            arrays += [pa.array([source] * len(lines), pa.string()),
                       pa.array(lines, pa.int64())]
        return pa.RecordBatch.from_arrays(arrays, schema=self._arrow_schema)


def _key_values(column: Column, raw: dict[str, pa.Array], typed: dict[str, pa.Array],
                convert=None) -> pa.Array:
    """A column's values as a keyless row key writes them: floats re-read from
    the file's text as float64 (BigQuery's FLOAT64), the others as typed."""
    values = typed[column.name]
    if column.type != schema_pb2.FLOAT:
        return values
    text = pc.if_else(pc.is_valid(values), pc.cast(raw[column.name], pa.string()), None)
    return _cast(pc.cast(text, pa.binary()), pa.float64(), convert)


def _check_header_names(names: list[str], expected: list[str], source: str) -> None:
    """Refuses a header that names a schema column more than once (which of
    them holds it?), or that holds more than ``MAX_FIELDS`` names."""
    if len(names) > MAX_FIELDS:
        raise HeaderMismatchError(f"{source}: the CSV header has {len(names):,} columns, "
                                  f"more than the {MAX_FIELDS:,} a file may have")
    known = set(expected)
    counts = collections.Counter(n for n in names if n in known)
    repeated = [n for n, count in counts.items() if count > 1]
    if repeated:
        name = repeated[0]
        positions = [i + 1 for i, n in enumerate(names) if n == name]
        raise HeaderMismatchError(
            f"{source}: the CSV header names {name!r} {len(positions)} times (columns "
            f"{', '.join(map(str, positions))})"
            + (f", and {_few(repeated[1:])} too" if len(repeated) > 1 else "")
            + "; each column must be named once")


def _overlong(max_line_bytes: int) -> str:
    return f"line longer than {max_line_bytes:,} bytes"


def _screen_lines(block: _Block, delimiter: bytes, max_line_bytes: int
                  ) -> tuple[_Block, dict[int, tuple[str, str, bytes]]]:
    """The block without the lines pyarrow cannot be given, and those lines by
    number with (kind, reason, text).

    A line that is not UTF-8 makes pyarrow fail the whole block when it reports
    the line as invalid; a line with an odd number of quote characters opens a
    quoted value that pyarrow would run on into the following lines; a line of
    more than ``MAX_FIELDS`` delimiters crashes pyarrow (at about 400,000). An
    empty line is rejected here too: parsed, it is a row of empty values that
    every numeric column then fails to cast, one probe per row. So is a line
    longer than ``max_line_bytes`` that a block happened to hold whole.
    """
    bad = np.zeros(len(block.numbers), dtype=bool)
    reasons: dict[int, tuple[str, str]] = {}
    lengths = block.ends - block.starts
    for i in np.flatnonzero(lengths == 0):
        bad[i] = True
        reasons[int(i)] = ("empty_line", "empty line")
    for i in np.flatnonzero(lengths > max_line_bytes):
        bad[i] = True
        reasons[int(i)] = ("overlong_line", _overlong(max_line_bytes))
    # Only a line longer than MAX_FIELDS bytes can hold more delimiters.
    for i in np.flatnonzero((lengths > MAX_FIELDS) & ~bad):
        fields = block.data.count(delimiter, int(block.starts[i]), int(block.ends[i])) + 1
        if fields > MAX_FIELDS:
            bad[i] = True
            reasons[int(i)] = ("wrong_field_count",
                               f"{fields:,} fields, more than the {MAX_FIELDS:,} a line may "
                               f"have")
    try:
        block.data.decode("utf-8")
    except UnicodeDecodeError:
        for i, (start, end) in enumerate(zip(block.starts, block.ends, strict=True)):
            if bad[i]:
                continue
            try:
                block.data[start:end].decode("utf-8")
            except UnicodeDecodeError:
                bad[i] = True
                reasons[i] = ("invalid_utf8", "line is not valid UTF-8")
    if not bad.any():
        return block, {}
    screened = {int(block.numbers[i]): (*reasons[i],
                                        block.data[block.starts[i]:block.ends[i]].rstrip(b"\r"))
                for i in sorted(reasons)}
    kept = ~bad
    pieces = [block.data[s:e] + b"\n"
              for s, e in zip(block.starts[kept], block.ends[kept], strict=True)]
    rest = dataclasses.replace(_Block.of(b"".join(pieces), 0), numbers=block.numbers[kept])
    return rest, screened


def _odd_quote_lines(block: _Block) -> np.ndarray:
    """The positions of the lines holding an odd number of quote characters:
    where a quoted value may open (or close) a record of several lines."""
    quotes = np.flatnonzero(np.frombuffer(block.data, dtype=np.uint8) == _QUOTE)
    if not len(quotes):
        return quotes
    per_line = np.bincount(np.searchsorted(block.ends, quotes),
                           minlength=len(block.numbers))[:len(block.numbers)]
    return np.flatnonzero(per_line % 2 == 1)


@dataclasses.dataclass(frozen=True)
class _Records:
    """The records of a block as quote parity ends them (``_scan_records``).

    Attributes:
      first_lines, last_lines: each record's first and last line, by position.
      starts, ends: each record's bytes (``ends`` exclusive, without the line
        break).
      marked: the records that need the ``csv`` module (``_scan_records``).
      open_line: the first line of a record still open at the block's end, or
        None.
      open_regular: whether that record's quotes are all regular, so that the
        ``csv`` module too reads it as still open.
    """

    first_lines: np.ndarray
    last_lines: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    marked: np.ndarray
    open_line: int | None
    open_regular: bool

    def marked_runs(self, min_gap: int) -> list[tuple[int, int]]:
        """The marked records as runs ``[first, end)``, a run taking in the
        regular records before the next marked one when fewer than ``min_gap``."""
        runs: list[list[int]] = []
        for i in np.flatnonzero(self.marked).tolist():
            if runs and i - runs[-1][1] < min_gap:
                runs[-1][1] = i + 1
            else:
                runs.append([i, i + 1])
        return [(first, end) for first, end in runs]


def _scan_records(block: _Block, delimiter: str, expected: int, max_record_bytes: int
                  ) -> _Records | None:
    """Where the records of a block end, by quote parity: a line ends a record
    when the quotes before its end are even in number. None when the delimiter
    is not one byte (pyarrow's is) or is the quote.

    Parity reads records as the ``csv`` module does when every quote is
    regular: one that opens a value stands at the start of a field (after a
    delimiter, a line break, or the quote that closed the value before it:
    ``""`` inside a value) and one that closes it stands at the end (before a
    delimiter, a line break, the end of the block, or a quote). A record with
    an irregular quote (``5'11"``; a quote after ``skip_initial_space``'s spaces)
    is marked, and so is one the ``csv`` module reads to reject it: empty,
    longer than ``max_record_bytes``, not UTF-8, without ``expected`` fields
    (delimiters outside quotes), or holding a carriage return or a NUL.
    """
    separator = delimiter.encode("utf-8")
    if len(separator) != 1 or separator[0] == _QUOTE:
        return None
    data = np.frombuffer(block.data, dtype=np.uint8)
    quotes = np.flatnonzero(data == _QUOTE)
    quotes_before = _counts_before(data == _QUOTE)
    last_lines = np.flatnonzero(quotes_before[block.ends] % 2 == 0)
    first_lines = np.concatenate([[0], last_lines[:-1] + 1]).astype(np.int64)[:len(last_lines)]
    starts, ends = block.starts[first_lines], block.ends[last_lines]
    count = len(last_lines)
    open_line = None
    if not count or last_lines[-1] != len(block.numbers) - 1:
        open_line = int(last_lines[-1]) + 1 if count else 0
    marked = (ends - starts == 0) | (ends - starts > max_record_bytes)

    def record_of(positions: np.ndarray) -> np.ndarray:
        """The record each byte position is in; ``count`` for the open one."""
        return np.searchsorted(ends, positions, side="right")

    # A record's fields: its delimiters, less those inside its quoted values
    # (between an opening quote, at an even position in ``quotes``, and the next).
    delimiters_before = _counts_before(data == separator[0])
    opening, closing = quotes[0::2], np.append(quotes[1::2], len(data))[:len(quotes[0::2])]
    quoted = np.bincount(record_of(opening), minlength=count + 1,
                         weights=delimiters_before[closing] - delimiters_before[opening]
                         ).astype(np.int64)
    fields = delimiters_before[ends] - delimiters_before[starts] - quoted[:count] + 1
    marked |= fields != expected
    # Before an opening quote (even position in ``quotes``), after a closing one.
    before = np.where(quotes > 0, data[np.maximum(quotes - 1, 0)], _NEWLINE)
    after = np.where(quotes < len(data) - 1, data[np.minimum(quotes + 1, len(data) - 1)],
                     _NEWLINE)
    beside = np.where(np.arange(len(quotes)) % 2 == 0, before, after)
    irregular = quotes[(beside != separator[0]) & (beside != _NEWLINE) & (beside != _QUOTE)]
    odd_bytes = np.flatnonzero((data == ord("\r")) | (data == 0))
    at = np.bincount(record_of(np.concatenate([irregular, odd_bytes])), minlength=count + 1)
    marked |= at[:count] > 0
    try:
        block.data.decode("utf-8")
    except UnicodeDecodeError:
        for i in np.flatnonzero(~marked).tolist():
            try:
                block.data[starts[i]:ends[i]].decode("utf-8")
            except UnicodeDecodeError:
                marked[i] = True
    return _Records(first_lines, last_lines, starts, ends, marked, open_line,
                    open_line is not None and not at[count])


def _counts_before(mask: np.ndarray) -> np.ndarray:
    """How many of ``mask``'s bytes are set before each position (and the end)."""
    counts = np.zeros(len(mask) + 1, dtype=np.int32)
    np.cumsum(mask, dtype=np.int32, out=counts[1:])
    return counts


def _record_problem(fields: list[str], data: bytes, expected: int, max_line_bytes: int,
                    utf8: bool) -> tuple[str, str] | None:
    """Why a record read by the ``csv`` module is rejected, as (kind, reason),
    as the one-line path would reject its line; None when it is not. ``utf8``:
    the whole block is known to be UTF-8."""
    if not fields:
        return "empty_line", "empty line"
    if len(data) > max_line_bytes:
        return "overlong_line", _overlong(max_line_bytes)
    if not utf8:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return "invalid_utf8", "line is not valid UTF-8"
    if len(fields) != expected:
        return "wrong_field_count", f"expected {expected} fields, found {len(fields)}"
    return None


def _read_raw(data: bytes, names: list[str], delimiter: str,
              invalid_row_handler: Callable[[pa_csv.InvalidRow], str],
              newlines_in_values: bool = False) -> pa.Table:
    """pyarrow's parse of ``data``, in one block, every value as raw bytes:
    typing happens in ``_type_batch``, where a bad value rejects its row
    instead of failing the whole block."""
    return pa_csv.read_csv(
        pa.BufferReader(data),
        read_options=pa_csv.ReadOptions(
            column_names=names, block_size=len(data) + 1, use_threads=False),
        parse_options=pa_csv.ParseOptions(
            delimiter=delimiter, invalid_row_handler=invalid_row_handler,
            newlines_in_values=newlines_in_values,
            # A blank line is a row with the wrong number of fields, not nothing.
            ignore_empty_lines=False),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.binary() for name in names},
            null_values=[], strings_can_be_null=False,
            quoted_strings_can_be_null=False, check_utf8=False))


def _line_blocks(stream: BinaryIO, block_bytes: int, max_line_bytes: int,
                 pending: bytes = b"") -> Iterator[bytes | _OverlongLine]:
    """``pending`` and the rest of ``stream`` in blocks of whole lines, about
    ``block_bytes`` each; a line longer than ``max_line_bytes`` comes as an
    ``_OverlongLine`` and is skipped without being held in memory."""
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
        if len(pending) > max_line_bytes:
            prefix = pending[:200]
            pending = _skip_line(stream, block_bytes)
            yield _OverlongLine(prefix)


def _skip_line(stream: BinaryIO, block_bytes: int) -> bytes:
    """Reads past the end of the current line; returns what follows it."""
    while True:
        data = stream.read(block_bytes)
        if not data:
            return b""
        end = data.find(b"\n")
        if end != -1:
            return data[end + 1:]


def _strip_leading_spaces(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Every value without the spaces after its delimiter. The lines are valid
    UTF-8 by now (``_screen_lines``), so the values cast to text safely."""
    arrays = [pc.cast(pc.utf8_ltrim(pc.cast(a, pa.string()), characters=" "), pa.binary())
              for a in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


def _text(line: bytes) -> str:
    return line.decode("utf-8", "backslashreplace")


def _few(names: list[str], shown: int = 5) -> str:
    if len(names) <= shown:
        return repr(names)
    return f"{names[:shown]!r} and {len(names) - shown:,} more"


def _describe(domain) -> str:
    if isinstance(domain, tuple):
        return f"[{domain[0]}, {domain[1]}]"
    return f"({len(domain)} values)"


def _outside(values: pa.Array, domain) -> np.ndarray:
    """Positions of present values outside ``domain``."""
    present = _to_numpy(pc.is_valid(values))
    if isinstance(domain, tuple):
        low, high = domain
        numbers = values.fill_null(0).to_numpy(zero_copy_only=False)
        outside = np.zeros(len(values), dtype=bool)
        if low is not None:
            outside |= numbers < low
        if high is not None:
            outside |= numbers > high
    else:
        outside = ~_to_numpy(pc.is_in(values, value_set=pa.array(sorted(domain),
                                                                  values.type)))
    return np.flatnonzero(outside & present)


def _to_numpy(mask: pa.Array) -> np.ndarray:
    return mask.to_numpy(zero_copy_only=False)


def _cast(values: pa.Array, arrow_type: pa.DataType, convert=None) -> pa.Array:
    """Raw bytes to ``arrow_type``: numbers are parsed from their UTF-8 text, and
    text must be valid UTF-8 (it is kept as bytes). ``convert``, when given,
    turns the raw values into what is parsed first (a column's value format)."""
    text = pc.cast(values, pa.string())  # fails on invalid UTF-8
    if convert is not None:
        values = convert(values)
        text = pc.cast(values, pa.string())
    if pa.types.is_large_binary(arrow_type):
        return pc.cast(values, arrow_type)
    return pc.cast(text, arrow_type)


def _uncastable(values: pa.Array, cast: Callable[[pa.Array], pa.Array]) -> list[int]:
    """Positions of non-null values that ``cast`` cannot convert.

    One vectorised cast settles a clean column; in a dirty one, each distinct
    value is probed once (a column of one bad value repeated costs one probe),
    by chunks, then value by value within the failing chunks.
    """
    try:
        cast(values)
        return []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    distinct = pc.unique(values.drop_null())
    bad = distinct.take(pa.array(_uncastable_distinct(distinct, cast), pa.int64()))
    return np.flatnonzero(_to_numpy(pc.is_in(values, value_set=bad))).tolist()


def _uncastable_distinct(values: pa.Array, cast: Callable[[pa.Array], pa.Array]
                         ) -> list[int]:
    bad = []
    for start in range(0, len(values), _PROBE_CHUNK):
        chunk = values.slice(start, _PROBE_CHUNK)
        try:
            cast(chunk)
            continue
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        for offset in range(len(chunk)):
            try:
                cast(chunk.slice(offset, 1))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                bad.append(start + offset)
    return bad
