"""How a CSV file is written (its dialect), detected from a sample of it.

What ``infer-schema`` (and the dataset it drafts) uses to read a file nobody
described: the encoding (UTF-8 unless the bytes are not, then cp1252, else
Latin-1), the delimiter, spaces after it, whether the first line is a header,
the missing-value markers in use, and the column names (the header's, the ones
given, or ``column_1`` to ``column_N``). Line endings and a byte-order mark need
no detection: the decoder reads them all. What was detected is a guess to
correct, so it is printed with what uses it.

Missing-value markers come in two kinds. The conventional ones (``?``, ``NA``,
``N/A``, the empty field: ``NULL_MARKERS``) mark a missing value in every
column. A word (``None``, ``null``, ``NaN``, ``-``: ``WORD_MARKERS``) may as
well be a category (a house without a veneer has ``MasVnrType`` ``None``), so
it marks a missing value only in a column whose other values are numbers
(``numeric_column_markers``, applied to every row read, not to the sample),
and is one of that column's own markers (``CsvFormat.column_null_values``).

A column whose every sampled value is a day-first or month-first date (with
``-``, ``/`` or ``.``), an ISO 8601 time with ``T`` and a zone, or, when the
delimiter is not a comma, a number with a decimal comma, gets that format in
``CsvFormat.column_formats`` (``pipelines.decode.value_formats``, which the
decoder applies); dates that read both ways are reported (``Detected.ambiguous``)
and left as text. The sample is read as Python's ``csv`` module reads it, so a
quoted value may span lines.
"""

import csv
import dataclasses
import re
from collections import Counter
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.decode import value_formats
from pipelines.decode.columns import CsvFormat
from pipelines.decode.files import open_input

__all__ = ["NULL_MARKERS", "SAMPLE_BYTES", "WORD_MARKERS", "Detected", "detect", "detect_file",
           "numeric_column_markers", "word_markers_in"]

SAMPLE_BYTES = 1 << 20
_DELIMITERS = (",", ";", "\t", "|")
# Markers of a missing value in every column, looked for as whole fields; an
# empty field always is one.
NULL_MARKERS = ("?", "NA", "N/A", "n/a")
# Markers of a missing value only in a column whose other values are numbers:
# in a text column they are as likely a category.
WORD_MARKERS = ("None", "none", "NONE", "null", "Null", "NULL", "NaN", "nan", "NAN", "-", "--")
_SAMPLE_LINES = 1000
_LINE_END = re.compile(r"\r*\n|\r")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclasses.dataclass(frozen=True)
class Detected:
    """A file's dialect, and the names of its columns in file order;
    ``ambiguous`` names the columns of dates that read day-first as well as
    month-first (left as text: ``value_formats``)."""

    csv_format: CsvFormat
    names: list[str]
    ambiguous: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line a person can check, e.g. in a generated file's header."""
        f = self.csv_format
        own = "".join(f" and {_texts(texts)} in {column}" for column, texts in
                      f.column_null_values)
        formats = "".join(f", {column} written as {value_formats.describe(value_format)}"
                          for column, value_format in f.column_formats)
        ambiguous = "".join(f", {column} dates day-first or month-first (read as text; set "
                            f"its column_formats)" for column in self.ambiguous)
        return (f"encoding {f.encoding}, delimiter {f.delimiter!r}"
                f"{', spaces after it' if f.skip_initial_space else ''}, "
                f"{'a header line' if f.has_header else 'no header line'}, missing values "
                f"{_texts(f.null_values)}{own}{formats}{ambiguous}, {len(self.names)} columns")


def detect_file(path: str, column_names: Sequence[str] | None = None, *,
                delimiter: str | None = None, encoding: str | None = None) -> Detected:
    """The dialect of the file at ``path`` (local or remote), from its first MiB."""
    with open_input(path) as stream:
        return detect(stream.read(SAMPLE_BYTES), column_names, delimiter=delimiter,
                      encoding=encoding)


def detect(sample: bytes, column_names: Sequence[str] | None = None, *,
           delimiter: str | None = None, encoding: str | None = None) -> Detected:
    """The dialect of a file that starts with ``sample``.

    ``column_names``, when given, are the columns in file order; the first line
    is a header when it names them, and data otherwise. A ``delimiter`` or
    ``encoding`` given is used instead of detected.
    """
    encoding = encoding or _encoding(sample)
    text = sample.decode(encoding, errors="replace").removeprefix("\ufeff")
    lines = _LINE_END.split(text)
    if len(sample) >= SAMPLE_BYTES:
        lines = lines[:-1]  # the sample may end inside a line
    lines = [line for line in lines if line.strip()][:_SAMPLE_LINES]
    if not lines:
        return Detected(CsvFormat(encoding=encoding), list(column_names or []))
    delimiter = delimiter or _delimiter(lines)
    rows = list(csv.reader(lines, delimiter=delimiter))
    skip_initial_space = _spaces_after_delimiter(rows)
    if skip_initial_space:
        rows = list(csv.reader(lines, delimiter=delimiter, skipinitialspace=True))
    if column_names:
        names = list(column_names)
        has_header = rows[0] == names
    else:
        has_header = _looks_like_header(rows)
        names = rows[0] if has_header else [f"column_{i + 1}" for i in range(len(rows[0]))]
    data = rows[1:] if has_header else rows
    present = {value for row in data for value in row}
    nulls = tuple(m for m in NULL_MARKERS if m in present) + ("",)
    formats, ambiguous = _value_formats(data, names, nulls, delimiter)
    csv_format = CsvFormat(
        delimiter=delimiter, null_values=nulls, skip_initial_space=skip_initial_space,
        has_header=has_header, column_names=() if has_header else tuple(names),
        encoding=encoding, column_formats=formats)
    return Detected(csv_format, names, ambiguous)


def _value_formats(rows: list[list[str]], names: list[str], nulls: tuple[str, ...],
                   delimiter: str) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """The columns whose sampled values all read as one of ``value_formats``'
    formats, with it, and the columns of ambiguous dates."""
    formats, ambiguous = [], []
    for i, name in enumerate(names):
        values = [row[i].strip() for row in rows
                  if i < len(row) and row[i] not in nulls and row[i].strip()
                  and row[i].strip() not in WORD_MARKERS]
        value_format, unsure = value_formats.detect(values, delimiter)
        if value_format is not None:
            formats.append((name, value_format))
        elif unsure:
            ambiguous.append(name)
    return tuple(formats), tuple(ambiguous)


def _encoding(sample: bytes) -> str:
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as error:
        if error.reason == "unexpected end of data":
            return "utf-8"  # the sample ends inside a character
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"  # decodes any byte


def _delimiter(lines: list[str]) -> str:
    """The candidate that splits the most lines into the same number (>1) of fields."""
    best, best_score = ",", (0.0, 0)
    for candidate in _DELIMITERS:
        counts = Counter(len(row) for row in csv.reader(lines, delimiter=candidate))
        fields, lines_with_it = counts.most_common(1)[0]
        if fields < 2:
            continue
        score = (lines_with_it / len(lines), fields)
        if score > best_score:
            best, best_score = candidate, score
    return best


def _spaces_after_delimiter(rows: list[list[str]]) -> bool:
    """Most values after a delimiter start with a space (``a, b, c``)."""
    later = [value for row in rows for value in row[1:] if value]
    return bool(later) and sum(v.startswith(" ") for v in later) > 0.9 * len(later)


def _looks_like_header(rows: list[list[str]]) -> bool:
    """A header names columns: no empty or repeated name, and in a column whose
    values are numbers its name is not one; in a file of text columns only, the
    names do not occur again as values."""
    first, data = rows[0], rows[1:]
    if not data or any(not name.strip() for name in first) or len(set(first)) < len(first):
        return False
    numeric_columns = 0
    for i, name in enumerate(first):
        values = [row[i] for row in data if i < len(row) and row[i] != ""]
        if values and sum(bool(_NUMBER.match(v.strip())) for v in values) >= 0.9 * len(values):
            numeric_columns += 1
            if _NUMBER.match(name.strip()):
                return False
    if numeric_columns:
        return True
    return all(name not in {row[i] for row in data if i < len(row)}
               for i, name in enumerate(first))


def numeric_column_markers(values: pa.Array) -> tuple[str, ...]:
    """The ``WORD_MARKERS`` that mark a missing value in a column of raw
    (binary) values: those it holds, when all its other values parse as
    numbers, as the schema's types are inferred; none otherwise, in a column of
    text (where they are categories) or of nothing else."""
    distinct = pc.unique(values.drop_null())
    markers = word_markers_in(distinct)
    others = distinct.filter(pc.invert(pc.is_in(distinct, value_set=_markers_as(distinct))))
    if not markers or not len(others):
        return ()
    try:
        pc.cast(pc.cast(others, pa.string()), pa.float32())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return ()
    return markers


def word_markers_in(values: pa.Array) -> tuple[str, ...]:
    """The ``WORD_MARKERS`` among raw (binary) ``values``, in their order."""
    found = set(values.filter(pc.is_in(values, value_set=_markers_as(values))).to_pylist())
    return tuple(m for m in WORD_MARKERS if m.encode() in found)


def _markers_as(values: pa.Array) -> pa.Array:
    return pa.array([m.encode() for m in WORD_MARKERS], values.type)


def _texts(texts: Sequence[str]) -> str:
    return ", ".join(repr(t) for t in texts)
