"""How one column writes its values when it is not as pyarrow reads them: dates
in a national order, ISO 8601 times with a zone, decimal commas.

A dataset names a column's format in ``dataset.json``'s ``column_formats``
(``{column: format}``, ``CsvFormat.column_formats``); the dialect detection
writes the formats it is sure of (``detect``). The decoder converts each value
of such a column to the text pyarrow reads (``converter``) before typing it, so
the schema sees what the values mean:

- a date, with or without a time (``%d/%m/%Y``, ``%m-%d-%Y %H:%M``, ...; the
  separator ``-``, ``/`` or ``.``): whole seconds since 1970-01-01, read as UTC,
  an INT column that ``init`` drafts as a timestamp;
- ``iso8601``: ``2013-01-01T05:00:00+02:00``, ``...Z``, fractional seconds
  allowed and dropped: whole seconds since 1970 in UTC, the zone applied;
- ``decimal_comma``: ``12,5`` is 12.5, a FLOAT column. A value with a ``.`` is
  refused rather than guessed (``1.234,5`` writes thousands the German way,
  ``1.5`` is another format).

A value its column's format does not read (a date written another way in
serving data, ``2013-01-02`` in a ``%d/%m/%Y`` column) rejects its row as
``unparsable`` with the format in the reason: never a missing value, never
hashed text. Only the date directives below are accepted in a format, so a
``dataset.json`` cannot ask pyarrow for anything else.

A serving request's value is converted the same way, one at a time
(``convert``): ``serve`` reads ``"02/03/2013"`` as the CSV's ``02/03/2013``.

Detection needs every present value of the sample to read one way. A date
whose first two numbers are never above 12 could be day-first or month-first:
it is reported (``Detected.ambiguous``) and left as text, not guessed.
"""

import re

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["DECIMAL_COMMA", "ISO8601", "check", "convert", "converter", "describe", "detect"]

ISO8601 = "iso8601"
DECIMAL_COMMA = "decimal_comma"
# A date format: day, month and year in either order of day and month, one
# separator, and optionally a time of hours and minutes (and seconds).
_DATE_FORMAT = re.compile(r"^%([dm])([-/.])%(?!\1)[dm]\2%Y( %H:%M(:%S)?)?$")
_DATE_VALUE = re.compile(r"^(\d{1,2})([-/.])(\d{1,2})\2(\d{4})( \d{1,2}:\d{2}(:\d{2})?)?$")
_ISO_VALUE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$")
_DECIMAL_COMMA_VALUE = re.compile(r"^[+-]?\d+(,\d+)?$")


def check(column: str, value_format: str) -> None:
    """Raises ValueError for a format this module does not read."""
    if value_format in (ISO8601, DECIMAL_COMMA) or _DATE_FORMAT.match(value_format):
        return
    raise ValueError(f"column_formats: {column!r} has format {value_format!r}; a format is "
                     f"{ISO8601!r}, {DECIMAL_COMMA!r} or a date such as '%d/%m/%Y' or "
                     f"'%m-%d-%Y %H:%M:%S'")


def describe(value_format: str) -> str:
    """The format as a reason names it."""
    if value_format == ISO8601:
        return "an ISO 8601 time with a zone"
    if value_format == DECIMAL_COMMA:
        return "a number with a decimal comma"
    return f"a date {value_format}"


def converter(value_format: str):
    """A function of raw (binary) values to the text pyarrow types: seconds
    since 1970 for a time, a decimal point for a decimal comma. It raises
    ``pa.ArrowInvalid`` when any present value does not read as the format
    (the decoder then finds which)."""
    if value_format == DECIMAL_COMMA:
        return _decimal_comma
    if value_format == ISO8601:
        return _iso8601
    return lambda values: _seconds_text(pc.cast(
        pc.strptime(pc.cast(values, pa.string()), format=value_format, unit="s"), pa.int64()))


def convert(value_format: str, value: str) -> str:
    """One value, as ``converter`` converts a column of them: the text pyarrow
    types. For a serving request's value, which must read as the CSV's would.

    Raises:
      ValueError: the value does not read as the format (``pa.ArrowInvalid``).
    """
    converted = converter(value_format)(pa.array([value.encode("utf-8")], pa.binary()))
    return converted[0].as_py().decode("utf-8")


def _decimal_comma(values: pa.Array) -> pa.Array:
    text = pc.cast(values, pa.string())
    if pc.any(pc.match_substring(text, ".")).as_py():
        raise pa.ArrowInvalid("a decimal-comma value holds a '.'")
    return pc.cast(pc.replace_substring(text, ",", "."), pa.binary())


def _iso8601(values: pa.Array) -> pa.Array:
    text = pc.cast(values, pa.string())
    # Arrow's ISO 8601 parser reads "2013-01-01 05:00" too; the format asks for a zone.
    if pc.any(pc.invert(pc.match_substring_regex(text, _ISO_VALUE.pattern))).as_py():
        raise pa.ArrowInvalid("not an ISO 8601 time with a zone")
    times = pc.cast(text, pa.timestamp("ns", tz="UTC"))
    # Floored, not truncated: a fraction before 1970 still belongs to its second.
    seconds = pc.cast(pc.floor_temporal(times, unit="second"), pa.timestamp("s", tz="UTC"))
    return _seconds_text(pc.cast(seconds, pa.int64()))


def _seconds_text(seconds: pa.Array) -> pa.Array:
    return pc.cast(pc.cast(seconds, pa.string()), pa.binary())


def detect(values: list[str], delimiter: str) -> tuple[str | None, bool]:
    """The format every one of a column's present ``values`` reads as, and
    whether they are dates that read both day-first and month-first (then no
    format: ambiguous). ``(None, False)`` when the column needs none."""
    if not values:
        return None, False
    if all(_ISO_VALUE.match(v) for v in values):
        return ISO8601, False
    if delimiter != "," and all(_DECIMAL_COMMA_VALUE.match(v) for v in values) and any(
            "," in v for v in values):
        return DECIMAL_COMMA, False
    dates = [_DATE_VALUE.match(v) for v in values]
    if not all(dates):
        return None, False
    separators = {d.group(2) for d in dates}
    times = {_time_format(d.group(5)) for d in dates}
    if len(separators) > 1 or len(times) > 1:
        return None, False
    first = max(int(d.group(1)) for d in dates)
    second = max(int(d.group(3)) for d in dates)
    if first > 31 or second > 31 or (first > 12 and second > 12):
        return None, False
    if first <= 12 and second <= 12:
        return None, True
    separator, time = separators.pop(), times.pop()
    order = "%d{0}%m{0}%Y" if first > 12 else "%m{0}%d{0}%Y"
    return order.format(separator) + time, False


def _time_format(time: str | None) -> str:
    if not time:
        return ""
    return " %H:%M:%S" if time.count(":") == 2 else " %H:%M"
