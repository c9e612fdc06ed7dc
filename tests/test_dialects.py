"""Real-world CSV dialects decode to the same rows: line endings (``\\n``,
``\\r\\n``, a lone ``\\r``, ``\\r\\r\\n``), a UTF-8 byte-order mark, spaces after
the delimiter, no header, other missing-value markers and a cp1252 encoding."""

import csv
import io
import os

import numpy as np
import pytest
from google.protobuf import text_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import datasets, nycflights
from pipelines.decode import dialect, row_keys
from pipelines.decode.columns import Column, CsvFormat, RejectedRow
from pipelines.decode.csv_decoder import CsvDecoder
from tests.conftest import PROJECT_ROOT, run_cli

CENSUS = os.path.join(PROJECT_ROOT, "..", "shared", "data", "census", "adult.data")
CENSUS_COLUMNS = [
    ("age", schema_pb2.INT), ("workclass", schema_pb2.BYTES), ("fnlwgt", schema_pb2.INT),
    ("education", schema_pb2.BYTES), ("education-num", schema_pb2.INT),
    ("marital-status", schema_pb2.BYTES), ("occupation", schema_pb2.BYTES),
    ("relationship", schema_pb2.BYTES), ("race", schema_pb2.BYTES), ("sex", schema_pb2.BYTES),
    ("capital-gain", schema_pb2.INT), ("capital-loss", schema_pb2.INT),
    ("hours-per-week", schema_pb2.INT), ("native-country", schema_pb2.BYTES),
    ("label", schema_pb2.BYTES),
]
# The UCI file as written: no header, ", " between fields, "?" for a missing value.
CENSUS_FORMAT = CsvFormat(delimiter=",", null_values=("?",), skip_initial_space=True,
                          has_header=False)

ENDINGS = {"LF": b"\n", "CRLF": b"\r\n", "CR": b"\r", "CRCRLF": b"\r\r\n"}


def _decode(decoder: CsvDecoder, data: bytes) -> tuple[list[dict], list[RejectedRow]]:
    rows, rejected = [], []
    for item in decoder.decode(io.BytesIO(data), "test.csv"):
        if isinstance(item, RejectedRow):
            rejected.append(item)
        else:
            rows += item.to_pylist()
    return rows, rejected


def _variants(lf_text: bytes) -> dict[str, bytes]:
    """The same file with every line ending, with and without a byte-order mark."""
    variants = {}
    for name, ending in ENDINGS.items():
        body = lf_text.replace(b"\n", ending)
        variants[name] = body
        variants[f"BOM+{name}"] = b"\xef\xbb\xbf" + body
    return variants


@pytest.fixture(scope="module")
def census_text() -> bytes:
    if not os.path.exists(CENSUS):
        pytest.skip(f"{CENSUS} is absent: the census tests read ../shared/data/ "
                    f"(see ../shared/data/README.md)")
    with open(CENSUS, "rb") as f:
        return f.read()


def test_census_decodes_as_pythons_csv_module_reads_it(census_text):
    decoder = CsvDecoder([Column(n, t, required=False) for n, t in CENSUS_COLUMNS],
                         CENSUS_FORMAT)
    rows, rejected = _decode(decoder, census_text)
    # The reference: the csv module with skipinitialspace, "?" as missing.
    expected = []
    for fields in csv.reader(io.StringIO(census_text.decode("utf-8")), skipinitialspace=True):
        if not fields:
            continue
        expected.append({
            name: None if value == "?" else
            [int(value)] if kind == schema_pb2.INT else [value.encode()]
            for (name, kind), value in zip(CENSUS_COLUMNS, fields, strict=True)})
    assert len(rows) == len(expected) == 32_561
    assert [{k: r[k] for k, _ in CENSUS_COLUMNS} for r in rows] == expected
    assert {r.kind for r in rejected} <= {"empty_line"}  # the file ends with a blank line
    assert rows[0]["workclass"] == [b"State-gov"] and rows[0]["label"] == [b"<=50K"]
    assert sum(r["workclass"] is None for r in rows) == 1_836


@pytest.mark.parametrize("variant", sorted(_variants(b"")))
def test_census_line_endings_and_bom_decode_the_same_rows(census_text, variant):
    decoder = CsvDecoder([Column(n, t, required=False) for n, t in CENSUS_COLUMNS],
                         CENSUS_FORMAT)
    head = b"".join(census_text.splitlines(keepends=True)[:3000])
    reference, _ = _decode(decoder, head)
    rows, rejected = _decode(decoder, _variants(head)[variant])
    assert rows == reference
    assert not rejected


@pytest.mark.parametrize("variant", sorted(_variants(b"")))
def test_flights_line_endings_and_bom_decode_the_same_rows(variant):
    with open(nycflights.default_inputs()[0], "rb") as f:
        head = b"".join(f.readline() for _ in range(2001))  # the header and 2,000 rows
    decoder = datasets.get_dataset("flights").csv_decoder()
    reference, _ = _decode(decoder, head)
    rows, rejected = _decode(decoder, _variants(head)[variant])
    assert len(reference) == 2000
    assert rows == reference  # row_key included: the split is the same too
    assert not rejected


def test_a_cp1252_file_decodes_its_accented_values():
    columns = [Column("id", schema_pb2.INT, True), Column("city", schema_pb2.BYTES, False)]
    decoder = CsvDecoder(columns, CsvFormat(encoding="cp1252"))
    text = "id,city\r\n1,Málaga\r\n2,Zürich €\r\n3,\r\n".encode("cp1252")
    rows, rejected = _decode(decoder, text + b"4,\x81x\r\n")  # 0x81: no cp1252 character
    assert [(r["id"], r["city"]) for r in rows] == [
        ([1], ["Málaga".encode()]), ([2], ["Zürich €".encode()]), ([3], None)]
    # A byte the encoding does not define rejects its line; nothing is replaced silently.
    assert [(r.line, r.kind) for r in rejected] == [(5, "invalid_utf8")]


def test_a_lone_cr_file_keeps_its_blank_lines_as_lines():
    columns = [Column("id", schema_pb2.INT, True)]
    rows, rejected = _decode(CsvDecoder(columns, CsvFormat()), b"id\r1\r\r2\r")
    assert [r["id"] for r in rows] == [[1], [2]]
    assert [(r.line, r.kind) for r in rejected] == [(3, "empty_line")]


_TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                         " -éèüöñçßÆØ€", min_size=1, max_size=12).filter(
    lambda t: not t.startswith(" ") and t not in ("NA", "?"))
_ROWS = st.lists(st.tuples(
    st.integers(-10**12, 10**12),
    st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False, width=32)),
    st.one_of(st.none(), _TEXT)), min_size=1, max_size=30)
_COLUMNS = [Column("id", schema_pb2.INT, True), Column("score", schema_pb2.FLOAT, False),
            Column("name", schema_pb2.BYTES, False)]


def _write(rows, *, delimiter=",", space="", missing="", ending="\n", header=True,
           bom=False, encoding="utf-8") -> bytes:
    lines = ["id,score,name".replace(",", delimiter + space)] if header else []
    for identifier, score, name in rows:
        fields = [str(identifier), missing if score is None else repr(score),
                  missing if name is None else name]
        lines.append((delimiter + space).join(fields))
    data = ending.join(lines) + ending
    return (b"\xef\xbb\xbf" if bom else b"") + data.encode(encoding)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=_ROWS)
def test_the_same_rows_in_every_dialect_decode_to_the_same_values(rows):
    reference, rejected = _decode(CsvDecoder(_COLUMNS, CsvFormat()), _write(rows))
    assert not rejected
    assert [r["id"] for r in reference] == [[i] for i, _, _ in rows]
    dialects = [
        (CsvFormat(), dict(ending="\r\n")),
        (CsvFormat(), dict(ending="\r")),
        (CsvFormat(), dict(ending="\r\r\n", bom=True)),
        (CsvFormat(delimiter=";"), dict(delimiter=";")),
        (CsvFormat(delimiter="\t", null_values=("NA",)), dict(delimiter="\t", missing="NA")),
        (CsvFormat(null_values=("?",), skip_initial_space=True), dict(space=" ", missing="?")),
        (CsvFormat(has_header=False), dict(header=False)),
        (CsvFormat(has_header=False, column_names=("id", "score", "name"),
                   skip_initial_space=True, null_values=("?",)),
         dict(header=False, space=" ", missing="?", ending="\r\n")),
        (CsvFormat(encoding="cp1252"), dict(encoding="cp1252", ending="\r\n")),
    ]
    for csv_format, written in dialects:
        decoded, rejected = _decode(CsvDecoder(_COLUMNS, csv_format), _write(rows, **written))
        assert not rejected, (csv_format, rejected[:3])
        assert decoded == reference, csv_format


def test_census_without_key_columns_splits_80_20(census_text):
    decoder = CsvDecoder([Column(n, t, required=False) for n, t in CENSUS_COLUMNS],
                         CENSUS_FORMAT)
    keys = [k for b in decoder.decode(io.BytesIO(census_text), "adult.data")
            if not isinstance(b, RejectedRow) for k in b.column("row_key").flatten().to_pylist()]
    share = row_keys.eval_mask(np.array(keys), 20).mean()
    assert len(keys) == 32_561 and abs(share - 0.2) < 0.02, share


TAXI = os.path.join(PROJECT_ROOT, "..", "shared", "data", "chicago_taxi", "data.csv")
CENSUS_NAMES = [name for name, _ in CENSUS_COLUMNS]


def test_the_census_dialect_is_detected(census_text):
    detected = dialect.detect(census_text[:200_000])
    assert detected.csv_format == CsvFormat(
        delimiter=",", null_values=("?", ""), skip_initial_space=True, has_header=False,
        column_names=tuple(f"column_{i}" for i in range(1, 16)), encoding="utf-8")
    named = dialect.detect(census_text[:200_000], CENSUS_NAMES)
    assert named.names == CENSUS_NAMES
    assert named.csv_format.column_names == tuple(CENSUS_NAMES)
    assert not named.csv_format.has_header


def test_the_taxi_and_flights_dialects_are_detected():
    if not os.path.exists(TAXI):
        pytest.skip(f"{TAXI} is absent (see ../shared/data/README.md)")
    taxi = dialect.detect_file(TAXI)
    assert taxi.csv_format == CsvFormat(null_values=("",))
    assert taxi.names[:3] == ["pickup_community_area", "fare", "trip_start_month"]
    flights = dialect.detect_file(nycflights.default_inputs()[0])
    # time_hour is written 2013-01-01T10:00:00Z: ISO 8601 with a zone.
    assert flights.csv_format == CsvFormat(null_values=("NA", ""),
                                           column_formats={"time_hour": "iso8601"})
    assert len(flights.names) == 19


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_delimiters_encodings_and_a_bom_are_detected(delimiter):
    text = delimiter.join(["city", "population", "area"]) + "\r\n" + "".join(
        delimiter.join([f"Zürich {i}", str(1000 + i), f"{i}.5"]) + "\r\n" for i in range(50))
    for encoding, data in (("utf-8", b"\xef\xbb\xbf" + text.encode()),
                           ("cp1252", text.encode("cp1252"))):
        detected = dialect.detect(data)
        assert detected.csv_format == CsvFormat(delimiter=delimiter, encoding=encoding)
        assert detected.names == ["city", "population", "area"]
        columns = [Column(n, schema_pb2.BYTES, False) for n in detected.names]
        rows, rejected = _decode(CsvDecoder(columns, detected.csv_format), data)
        assert rows[0]["city"] == ["Zürich 0".encode()] and not rejected


def test_infer_schema_reads_the_census_file_as_written(census_text):
    result = run_cli("infer-schema", "--input", CENSUS, "--column_names", ",".join(CENSUS_NAMES))
    assert result.returncode == 0, result.stderr[-3000:]
    schema = text_format.Parse(result.stdout, schema_pb2.Schema())
    types = {f.name: f.type for f in schema.feature}
    assert types == dict(CENSUS_COLUMNS)
    workclass = next(d for d in schema.string_domain if d.name == "workclass")
    assert "Private" in workclass.value and "?" not in workclass.value
    assert not any(v.startswith(" ") for d in schema.string_domain for v in d.value)
    # "?" marks a missing value: workclass is optional, age is not.
    features = {f.name: f for f in schema.feature}
    assert features["workclass"].presence.min_fraction < 1
    assert features["age"].presence.min_fraction == 1
    assert "no header line, missing values '?', ''" in result.stdout
