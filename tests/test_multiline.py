"""Every RFC 4180 CSV: quoted values holding delimiters, doubled quotes and line
breaks decode as Python's ``csv`` module reads them; a record left open is one
rejection; the columns that write dates, zoned times or decimal commas their
own way are detected, drafted and rejected when a value is written another way."""

import csv
import io
import json
import os

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import datasets
from pipelines.commands.init import init_dataset
from pipelines.decode import dialect
from pipelines.decode.columns import Column, CsvFormat, RejectedRow
from pipelines.decode.csv_decoder import CsvDecoder

NAMES = ["a", "b", "c"]
# Values with what RFC 4180 quotes: the delimiter, quotes, and line breaks of
# both kinds.
VALUE = st.lists(st.sampled_from(list('ab ,;"\n') + ["\r\n", "é"]), max_size=8).map("".join)
# A row whose values are all empty is an empty line to the decoder; csv writes
# a one-value row of "" as a quoted "" line.
ROW = st.lists(VALUE, min_size=3, max_size=3).filter(lambda row: any(row))


def _decode(data: bytes, csv_format: CsvFormat, columns=None, block_bytes: int = 1 << 20):
    columns = columns or [Column(n, schema_pb2.BYTES, False) for n in NAMES]
    decoder = CsvDecoder(columns, csv_format, block_bytes=block_bytes)
    items = list(decoder.decode(io.BytesIO(data), "f.csv"))
    batches = [i for i in items if isinstance(i, pa.RecordBatch)]
    table = pa.Table.from_batches(batches, decoder.output_schema)
    return table, [i for i in items if isinstance(i, RejectedRow)]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ROW, max_size=25), line_end=st.sampled_from(["\n", "\r\n"]),
       delimiter=st.sampled_from([",", ";"]), block_bytes=st.sampled_from([8, 64, 1 << 20]))
def test_quoted_values_decode_as_pythons_csv_module_reads_them(rows, line_end, delimiter,
                                                               block_bytes):
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator=line_end)
    writer.writerow(NAMES)
    writer.writerows(rows)
    text = out.getvalue()
    # Python's csv module reading the file as open() gives it (universal newlines).
    expected = list(csv.reader(io.StringIO(text, newline=None), delimiter=delimiter))[1:]
    table, rejected = _decode(text.encode("utf-8"), CsvFormat(delimiter=delimiter,
                                                               null_values=()),
                              block_bytes=block_bytes)
    assert rejected == []
    assert table.num_rows == len(rows)
    decoded = [[table.column(n)[i].as_py()[0].decode("utf-8") for n in NAMES]
               for i in range(table.num_rows)]
    assert decoded == expected
    assert decoded == [[v.replace("\r\n", "\n") for v in row] for row in rows]


def test_a_record_left_open_is_one_rejection_and_keeps_every_other_row():
    data = (b'a,b,c\n1,"two ""quoted""\nlines",x\n'  # lines 2-3: one record
            b'2,"never closes,y\n'         # line 4: its quote never closes ...
            b"3,three,z\n"                 # ... so these lines are read on their own
            b"4,four,w\n")
    for block_bytes in (8, 1 << 20):
        table, rejected = _decode(data, CsvFormat(), block_bytes=block_bytes)
        assert table.column("a").to_pylist() == [[b"1"], [b"3"], [b"4"]]
        assert table.column("b").to_pylist() == [[b'two "quoted"\nlines'], [b"three"],
                                                 [b"four"]]
        assert [(r.line, r.kind, r.reason, r.text) for r in rejected] == [
            (4, "unbalanced_quotes",
             "unbalanced quotes: a quoted value opened on this line never closes",
             '2,"never closes,y')]
    # The last record, open when the file ends: every earlier row is kept.
    table, rejected = _decode(b'a,b,c\n1,x,y\n2,"open at the end,v\n', CsvFormat())
    assert table.column("a").to_pylist() == [[b"1"]]
    assert [(r.line, r.kind) for r in rejected] == [(3, "unbalanced_quotes")]


def test_a_bad_record_of_several_lines_is_named_by_the_line_it_starts_on():
    columns = [Column("a", schema_pb2.INT, True), Column("b", schema_pb2.BYTES, False),
               Column("c", schema_pb2.FLOAT, False)]
    data = b'a,b,c\n1,"x\ny",1.5\n2,"p\r\nq\nr",notanumber\n3,z,2\n'
    table, rejected = _decode(data, CsvFormat(), columns)
    assert table.column("a").to_pylist() == [[1], [3]]
    assert table.column("b").to_pylist() == [[b"x\ny"], [b"z"]]
    assert [(r.line, r.kind, r.reason, r.text) for r in rejected] == [
        (4, "unparsable", "c: cannot parse b'notanumber' as FLOAT",
         '2,"p\nq\nr",notanumber')]
    assert table.num_rows + len(rejected) == 3, "records in = rows out + rejected"


def test_a_stray_quote_costs_its_line_only():
    # A quote inside a value is a character (as Python's csv module reads it) ...
    table, rejected = _decode(b'a,b,c\n1,5\'11",x\n2,z,w\n', CsvFormat())
    assert table.column("b").to_pylist() == [[b'5\'11"'], [b"z"]]
    assert rejected == []
    # ... and one that opens a value running into the next line's quoted one
    # makes a record of too many fields: the stray line is rejected, and the
    # lines after it are read again.
    data = b'a,b,c\n1,"5\'11,x\n2,"ok, fine",y\n3,z,w\n'
    table, rejected = _decode(data, CsvFormat())
    assert table.column("a").to_pylist() == [[b"2"], [b"3"]]
    assert [(r.line, r.kind, r.text) for r in rejected] == [
        (2, "unbalanced_quotes", '1,"5\'11,x')]


# -- value formats ------------------------------------------------------------------------------

FORMATTED = (
    "when;us_time;at;amount;ambiguous\n"
    "31/01/2013;01-31-2013 05:30;2013-01-31T05:30:00+02:00;12,5;01.02.2013\n"
    "01/02/2013;02-01-2013 06:00;2013-02-01T06:00:00Z;-3;02.01.2013\n"
    "15/02/2013;02-15-2013 07:15;2013-02-15T07:15:00.5-05:00;0,25;03.01.2013\n"
)


def test_the_dialect_learns_dates_zoned_times_and_decimal_commas():
    detected = dialect.detect(FORMATTED.encode())
    assert detected.csv_format.delimiter == ";"
    assert dict(detected.csv_format.column_formats) == {
        "when": "%d/%m/%Y", "us_time": "%m-%d-%Y %H:%M", "at": "iso8601",
        "amount": "decimal_comma"}
    assert detected.ambiguous == ("ambiguous",)
    assert "ambiguous dates day-first or month-first" in detected.describe()
    # A decimal comma needs a delimiter that is not a comma.
    commas = dialect.detect(b'x,y\n"1,5",a\n"2,5",b\n')
    assert commas.csv_format.column_formats == ()


def test_formatted_columns_decode_to_seconds_and_numbers_or_are_rejected():
    columns = [Column("when", schema_pb2.INT, False), Column("at", schema_pb2.INT, False),
               Column("amount", schema_pb2.FLOAT, False)]
    csv_format = CsvFormat(delimiter=";", column_formats={
        "when": "%d/%m/%Y", "at": "iso8601", "amount": "decimal_comma"})
    data = (b"when;at;amount\n"
            b"31/01/2013;2013-01-31T05:30:00+02:00;12,5\n"
            b"2013-01-31;2013-01-31T05:30:00Z;1\n"       # a date written another way
            b"01/02/2013;2013-01-31 05:30;1\n"           # a time without its zone
            b"01/02/2013;2013-01-31T05:30:00Z;1.234,5\n"  # thousands, not a decimal comma
            b"01/02/2013;;\n")
    table, rejected = _decode(data, csv_format, columns)
    # 2013-01-31 00:00 UTC, and 05:30 at +02:00 (03:30 UTC), in seconds since 1970.
    assert table.column("when").to_pylist() == [[1359590400], [1359676800]]
    assert table.column("at").to_pylist() == [[1359590400 + 3 * 3600 + 1800], None]
    assert table.column("amount").to_pylist() == [[12.5], None]
    assert [(r.line, r.kind, r.reason) for r in rejected] == [
        (3, "unparsable", "when: cannot read b'2013-01-31' as a date %d/%m/%Y"),
        (4, "unparsable", "at: cannot read b'2013-01-31 05:30' as an ISO 8601 time with a "
                          "zone"),
        (5, "unparsable", "amount: cannot read b'1.234,5' as a number with a decimal comma")]


def test_a_format_dataset_json_names_must_be_one_the_decoder_reads():
    with pytest.raises(ValueError, match="'when' has format '%Y%j'"):
        CsvFormat(column_formats={"when": "%Y%j"})


def test_init_drafts_formatted_columns_as_timestamps_and_numbers(tmp_path):
    rows = [FORMATTED.splitlines()[0] + ";label"]
    for i in range(60):
        day = i % 28 + 1
        rows.append(f"{day:02d}/03/2013;03-{day:02d}-2013 {i % 24:02d}:00;"
                    f"2013-03-{day:02d}T{i % 24:02d}:00:00+01:00;{i},{i % 10};"
                    f"{i % 12 + 1:02d}.01.2013;{i % 2}")
    path = tmp_path / "formatted.csv"
    path.write_text("\n".join(rows) + "\n")
    drafted = init_dataset(str(path), str(tmp_path / "ds"), label="label")
    with open(os.path.join(drafted.directory, datasets.DATASET_FILE)) as f:
        csv_format = json.load(f)["csv_format"]
    assert csv_format["column_formats"] == {
        "when": "%d/%m/%Y", "us_time": "%m-%d-%Y %H:%M", "at": "iso8601",
        "amount": "decimal_comma"}
    kinds = {c.column: c.kind for c in drafted.choices}
    assert kinds == {"when": "timestamp", "us_time": "timestamp", "at": "timestamp",
                     "amount": "number", "ambiguous": "vocabulary", "label": "label_class_ids"}
    assert any(d.startswith("ambiguous: dates that read day-first and month-first")
               for d in drafted.decisions)
    # The drafted dataset reads a serving date written another way as a rejection.
    dataset = datasets.load_directory(drafted.directory)
    decoder = dataset.csv_decoder().for_serving()
    serving = (rows[0] + "\n" + rows[1] + "\n"
               + rows[2].replace("02/03/2013", "2013-03-02") + "\n").encode()
    items = list(decoder.decode(io.BytesIO(serving), "serving.csv"))
    rejected = [i for i in items if isinstance(i, RejectedRow)]
    assert sum(i.num_rows for i in items if isinstance(i, pa.RecordBatch)) == 1
    assert [(r.line, r.kind, r.reason) for r in rejected] == [
        (3, "unparsable", "when: cannot read b'2013-03-02' as a date %d/%m/%Y")]
