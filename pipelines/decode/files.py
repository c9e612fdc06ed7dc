"""Input files: matching globs, opening (and decompressing) them, decoding them.

Paths may be local or remote (``gs://``): they go through Beam's file-system
layer (``FileSystems``), the one the workers use, which is the only piece of
Beam this package's decoding touches. No pipeline is built here: the ``ReadRaw``
stage (``pipelines.stages.read``) and the commands that read a sample on the
launching machine (``infer-schema``, ``suggest-thresholds``, ``check-parity``)
decode files with the same functions.

A local input must be a regular file: a directory, FIFO (which would block the
read until something writes to it), socket or device is refused with one line
before anything opens it. A damaged compressed file reads as far as it can be
decompressed, to its last whole line, and then ends: ``decode_files`` counts the
rest as one ``corrupt_file`` rejection, and every other reader (the dialect's
sample, a header) sees the file end there; one that cannot be decompressed at
all is a one-line error.
"""

import bz2
import contextlib
import dataclasses
import gzip
import lzma
import os
import stat
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

import numpy as np
import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines.decode.columns import RejectedRow
from pipelines.decode.csv_decoder import CsvDecoder
from pipelines.errors import InputNotFoundError, UserError

__all__ = [
    "Decoded", "decode_files", "decoded_table", "match_files", "open_input", "total_bytes",
]

# What reading a damaged compressed stream raises (gzip, zlib, bz2, lzma).
_CORRUPT_STREAM = (EOFError, OSError, zlib.error, lzma.LZMAError)


def match_files(pattern: str) -> list[str]:
    """The files matching ``pattern``, sorted.

    Raises:
      InputNotFoundError: nothing matches.
      UserError: a local match is not a regular file (a directory, FIFO, ...).
    """
    matches = FileSystems.match([pattern])[0].metadata_list
    if not matches:
        raise InputNotFoundError(f"no input file matches {pattern}")
    paths = sorted(m.path for m in matches)
    for path in paths:
        _check_regular_file(path)
    return paths


# What a local path that is not a regular file is, by its stat mode.
_NOT_A_FILE = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
               (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"))


def _check_regular_file(path: str) -> None:
    """Refuses a local path that is not a regular file, before it is opened:
    opening a FIFO blocks until a writer comes, a device may never end."""
    if "://" in path:
        return
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror}") from None
    if not stat.S_ISREG(mode):
        kind = next((what for test, what in _NOT_A_FILE if test(mode)), "not a regular file")
        raise UserError(f"{path} is {kind}, not a file: pass CSV files "
                        f"(a directory's as DIR/*.csv)")


def total_bytes(pattern: str) -> int:
    """The size of the files matching ``pattern`` (as stored, compressed or not)."""
    return sum(m.size_in_bytes for m in FileSystems.match([pattern])[0].metadata_list)


@contextlib.contextmanager
def open_input(path: str, on_read: Callable[[int], None] | None = None
               ) -> Iterator[BinaryIO]:
    """The decompressed bytes of ``path`` (local or remote).

    ``.gz``, ``.bz2`` and ``.xz`` go through Python's own decompressors, which
    check the stream's end and checksum: Beam's reader returns a truncated gzip
    file as if it had simply ended. ``on_read`` is told how many bytes of the
    file as stored each read consumed (for progress).

    A damaged compressed file ends at its last whole line before the damage
    (``damage`` of the stream says what it was); one whose first bytes already
    cannot be decompressed raises a UserError.
    """
    _check_regular_file(path)
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        if on_read is not None:
            raw = _Counting(raw, on_read)
        if path.endswith(".gz"):
            yield _Salvaging(gzip.GzipFile(fileobj=raw), path)
        elif path.endswith(".bz2"):
            yield _Salvaging(bz2.BZ2File(raw), path)
        elif path.endswith(".xz"):
            yield _Salvaging(lzma.LZMAFile(raw), path)
        else:
            yield raw


class _Counting:
    """A stream that reports how many bytes each read returned."""

    def __init__(self, stream: BinaryIO, on_read: Callable[[int], None]):
        self._stream = stream
        self._on_read = on_read

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._on_read(len(data))
        return data

    def readable(self) -> bool:
        return True

    def __getattr__(self, name):  # what the decompressors ask of a file object
        return getattr(self._stream, name)


class _Salvaging:
    """Reads a decompressing stream in small steps, so that when it turns out to
    be damaged everything before the damage is still returned, up to its last
    line break: the line the damage cuts belongs to the unreadable rest (unless
    it is longer than a read). Then the stream ends, and ``damage`` holds the
    error.

    Raises (from ``read``):
      UserError: the very first bytes cannot be decompressed (not a gzip file).
    """

    _STEP = 1 << 16

    def __init__(self, stream: BinaryIO, path: str):
        self._stream = stream
        self._path = path
        self._started = False
        self._ended = False
        self._tail = b""  # read past the last line break returned, held back
        self.damage: Exception | None = None

    def read(self, size: int = -1) -> bytes:
        if self.damage is not None:
            return b""
        data = self._tail + self._decompressed(size)
        self._tail = b""
        if self._ended:
            return data
        cut = data.rfind(b"\n") + 1
        if self.damage is not None:
            return data[:cut]
        if cut:
            data, self._tail = data[:cut], data[cut:]
        return data

    def _decompressed(self, size: int) -> bytes:
        pieces, wanted = [], size if size >= 0 else float("inf")
        while wanted > 0 and not self._ended:
            try:
                # read1: one step of decompression; read() would lose what it
                # decompressed before the damage.
                piece = self._stream.read1(int(min(self._STEP, wanted)))
            except _CORRUPT_STREAM as error:
                if not self._started:
                    raise UserError(f"{self._path} cannot be decompressed: "
                                    f"{type(error).__name__}: {error}") from None
                self.damage = error
                break
            self._started = True
            self._ended = not piece
            pieces.append(piece)
            wanted -= len(piece)
        return b"".join(pieces)


def decode_files(decoder: CsvDecoder, paths: list[str] | tuple[str, ...],
                 limit: int | None = None, on_read: Callable[[int], None] | None = None
                 ) -> Iterator[pa.RecordBatch | RejectedRow]:
    """Decodes files in order; ``limit`` counts data lines, decoded or rejected,
    across all of them ("the first N rows of the input"); ``on_read`` as for
    ``open_input``."""
    remaining = limit
    for path in paths:
        if remaining == 0:
            return
        with open_input(path, on_read) as stream:
            for item in decoder.decode(stream, path, remaining):
                if remaining is not None:
                    remaining -= 1 if isinstance(item, RejectedRow) else item.num_rows
                yield item
            damage = getattr(stream, "damage", None)
            if damage is not None and remaining != 0:
                # A truncated or damaged compressed file: what could be read is
                # kept; the unreadable rest is one rejected "row".
                yield RejectedRow(path, None, "corrupt_file",
                                  f"the rest of the file is unreadable: "
                                  f"{type(damage).__name__}: {damage}", "")


@dataclasses.dataclass(frozen=True)
class Decoded:
    """Decoded rows gathered in memory, and how many rows were rejected."""

    table: pa.Table
    rejected: int


def decoded_table(decoder: CsvDecoder, paths: list[str] | tuple[str, ...],
                  limit: int | None = None, *,
                  keep: Callable[[pa.RecordBatch], np.ndarray] | None = None,
                  max_rows: int | None = None,
                  prepare: Callable[[pa.Table], pa.Table] | None = None) -> Decoded:
    """Decodes files into one in-memory table, for commands that work on a sample.

    Args:
      decoder: the dataset's decoder.
      paths: the files, decoded in order.
      limit: decode only the first ``limit`` data lines, as ``decode_files``.
      keep: a row mask per batch (e.g. the rows of one split); others are dropped.
      max_rows: stop once this many rows are kept.
      prepare: applied to all the decoded rows before ``keep`` and ``max_rows``
        (e.g. adding the window features, which depend on every row).
    """
    if prepare is not None:
        whole = decoded_table(decoder, paths, limit)
        table = prepare(whole.table)
        if keep is not None and table.num_rows:
            batch = table.combine_chunks().to_batches()[0]
            table = pa.Table.from_batches([batch.filter(pa.array(keep(batch)))])
        if max_rows is not None:
            table = table.slice(0, max_rows)
        return Decoded(table, whole.rejected)
    batches, rows, rejected = [], 0, 0
    for item in decode_files(decoder, paths, limit):
        if isinstance(item, RejectedRow):
            rejected += 1
            continue
        if keep is not None:
            item = item.filter(pa.array(keep(item)))
        if max_rows is not None:
            item = item.slice(0, max_rows - rows)
        batches.append(item)
        rows += item.num_rows
        if rows == max_rows:
            break
    return Decoded(pa.Table.from_batches(batches, decoder.output_schema), rejected)
