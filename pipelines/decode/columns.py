"""The raw columns a schema declares, and the Arrow layout rows are decoded into.

Every decoded row becomes one element of a RecordBatch whose columns are
``large_list``s of length one (a null list when the value is missing), followed
by the ``row_key`` column: the canonical TFXIO layout that TFDV's statistics
and TFT's TensorAdapter consume without any per-row Python. CSV files
(``csv_decoder``) and BigQuery rows (``bigquery``) both decode into it, and
rows that cannot be decoded become ``RejectedRow``s.
"""

import dataclasses
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines.decode import value_formats
from pipelines.decode.row_keys import ROW_KEY

__all__ = [
    "ADDED_FEATURE_TAGS",
    "HARD_DOMAIN_TAG",
    "LOOKUP_FEATURE_TAG",
    "SERVING",
    "WINDOW_FEATURE_TAG",
    "TRAINING",
    "Column",
    "CsvFormat",
    "RejectedRow",
    "arrow_schema",
    "added_by_pipeline",
    "as_list_array",
    "columns_from_schema",
    "present_with_no_values",
]

HARD_DOMAIN_TAG = "reject_out_of_domain"
# A feature the pipeline computes from the other rows (``pipelines.decode.windows``):
# in the schema, for TFDV and TFT, but not a column of the input.
WINDOW_FEATURE_TAG = "window_feature"
# A feature joined from a reference table (``pipelines.decode.lookups``): also
# in the schema, not a column of the input.
LOOKUP_FEATURE_TAG = "lookup_feature"
# The tags of the features the pipeline adds to an input's columns.
ADDED_FEATURE_TAGS = frozenset({WINDOW_FEATURE_TAG, LOOKUP_FEATURE_TAG})
# TFDV's environments: a feature ``not_in_environment: "SERVING"`` (the label,
# and what only the label needs) may be absent from serving data.
TRAINING, SERVING = "TRAINING", "SERVING"

_ARROW_TYPES = {
    schema_pb2.INT: pa.int64(),
    schema_pb2.FLOAT: pa.float32(),
    schema_pb2.BYTES: pa.large_binary(),
}

@dataclasses.dataclass(frozen=True)
class CsvFormat:
    """How a dataset's CSV files are written (the dialect).

    Attributes:
      delimiter: the one character between fields.
      null_values: the texts that mark a missing value.
      key_columns: the columns that identify a row (its split key).
      skip_initial_space: ignore spaces after a delimiter (``a, b``, as the UCI
        census files are written).
      has_header: whether the first line names the columns.
      column_names: the columns in file order when there is no header (default:
        the schema's order).
      encoding: the files' text encoding; they are decoded as UTF-8 after it.
      ignored_columns: header columns read and left out (a request log's
        prediction and time).
      column_null_values: more texts that mark a missing value, in the named
        columns only, as ``(column, texts)`` pairs (``{column: [texts]}`` in
        ``dataset.json``): ``None`` is a missing number in a column of numbers
        and a category in a column of text.
      column_formats: how the named columns write their values, when not as
        pyarrow reads them (``pipelines.decode.value_formats``: a date such as
        ``%d/%m/%Y``, ``iso8601``, ``decimal_comma``), as ``(column, format)``
        pairs (``{column: format}`` in ``dataset.json``).
    """

    delimiter: str = ","
    null_values: tuple[str, ...] = ("",)
    key_columns: tuple[str, ...] = ()
    skip_initial_space: bool = False
    has_header: bool = True
    column_names: tuple[str, ...] = ()
    encoding: str = "utf-8"
    ignored_columns: tuple[str, ...] = ()
    column_null_values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    column_formats: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):
        # Given as a mapping (dataset.json) or as pairs of lists, kept as pairs of
        # tuples: the format stays immutable and comparable.
        pairs = self.column_null_values
        if isinstance(pairs, dict):
            pairs = pairs.items()
        pairs = tuple(pairs)
        if any(isinstance(texts, str) for _, texts in pairs):
            raise TypeError("column_null_values takes a list of texts for each column")
        object.__setattr__(self, "column_null_values",
                           tuple((column, tuple(texts)) for column, texts in pairs))
        formats = self.column_formats
        formats = tuple(formats.items() if isinstance(formats, dict) else formats)
        for column, value_format in formats:
            value_formats.check(column, value_format)
        object.__setattr__(self, "column_formats", tuple(tuple(pair) for pair in formats))

    def null_values_of(self, column: str) -> tuple[str, ...]:
        """The texts that mark a missing value in ``column``."""
        extra = dict(self.column_null_values).get(column, ())
        return self.null_values + tuple(t for t in extra if t not in self.null_values)

    def to_document(self) -> dict:
        """The format as ``dataset.json`` writes it."""
        document = dataclasses.asdict(self)
        document["column_null_values"] = {c: list(t) for c, t in self.column_null_values}
        document["column_formats"] = dict(self.column_formats)
        return document

    @classmethod
    def from_document(cls, document: dict) -> "CsvFormat":
        """The format ``dataset.json`` wrote (``to_document``); a name it does
        not know is a TypeError."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in document.items()})


@dataclasses.dataclass(frozen=True)
class Column:
    """A raw column as the schema declares it.

    ``domain`` is (min, max) for numbers or the allowed values for text, when
    the schema declares one; ``hard_domain`` makes a value outside it a
    rejection instead of an anomaly. ``in_serving`` is False for a column
    serving data may lack (not in the schema's ``SERVING`` environment).
    ``empty_is_present``: a missing value is the feature present with no
    values, as TFX reads it: not a rejection, and TFDV's statistics count it
    present (``present_with_no_values``; ``columns_from_schema`` says when).
    """

    name: str
    type: int  # schema_pb2.FeatureType
    required: bool
    domain: tuple | frozenset | None = None
    hard_domain: bool = False
    in_serving: bool = True
    empty_is_present: bool = False

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.type]


@dataclasses.dataclass(frozen=True)
class RejectedRow:
    """A row that could not be decoded, kept for the dead-letter output."""

    source: str
    line: int | None
    kind: str
    reason: str
    text: str

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)


def added_by_pipeline(feature: schema_pb2.Feature) -> bool:
    """Whether the pipeline adds ``feature`` (a window or lookup feature)
    rather than reading it from an input."""
    return not ADDED_FEATURE_TAGS.isdisjoint(feature.annotation.tag)


def columns_from_schema(schema: schema_pb2.Schema) -> list[Column]:
    """The schema's features read from an input, as columns (not the window
    and lookup features the pipeline adds).

    A feature with a shape and ``presence.min_fraction`` 1 is required: a row
    without its value is rejected. One without a shape is variable-length (TFT
    reads it as a sparse tensor) and is read as TFX reads it: when its
    ``min_fraction`` is 1 (as SchemaGen writes it for a CSV column with empty
    fields, which CsvExampleGen keeps as features with no values), an empty
    field is the feature present with no values: the row is kept, and
    presence counts it, as it counts every row of the file.
    """
    string_domains = {d.name: frozenset(v.encode() for v in d.value)
                      for d in schema.string_domain}
    columns = []
    for feature in schema.feature:
        if added_by_pipeline(feature):
            continue
        domain = None
        if feature.HasField("int_domain"):
            bounds = feature.int_domain
            domain = (bounds.min if bounds.HasField("min") else None,
                      bounds.max if bounds.HasField("max") else None)
        elif feature.HasField("domain"):
            domain = string_domains.get(feature.domain)
        elif feature.HasField("string_domain"):
            domain = frozenset(v.encode() for v in feature.string_domain.value)
        always_present = feature.presence.min_fraction >= 1.0
        variable_length = not feature.HasField("shape")
        columns.append(Column(feature.name, feature.type, always_present and not variable_length,
                              domain, HARD_DOMAIN_TAG in feature.annotation.tag,
                              in_serving=SERVING not in feature.not_in_environment,
                              empty_is_present=always_present and variable_length))
    return columns


def arrow_schema(columns: list[Column]) -> pa.Schema:
    """The Arrow schema of decoded batches: the columns, then ``row_key``."""
    fields = [pa.field(c.name, pa.large_list(c.arrow_type)) for c in columns]
    return pa.schema(fields + [pa.field(ROW_KEY, pa.large_list(pa.int64()))])


def as_list_array(values: pa.Array) -> pa.LargeListArray:
    """Wraps each value in a list of one; a null value becomes a null list."""
    if values.null_count == 0:
        offsets = pa.array(np.arange(len(values) + 1, dtype=np.int64))
        return pa.LargeListArray.from_arrays(offsets, values)
    present = pc.is_valid(values).to_numpy(zero_copy_only=False)
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(present, out=offsets[1:])
    return pa.LargeListArray.from_arrays(
        pa.array(offsets), values.drop_null(), mask=pa.array(~present))


def present_with_no_values(batch: pa.RecordBatch, names: list[str]) -> pa.RecordBatch:
    """``batch`` with the missing values of the columns ``names`` as empty
    lists: features present with no values, as the ``tf.Example`` that TFX's
    CsvExampleGen writes of an empty field holds them (``Column.empty_is_present``)."""
    arrays = [column.fill_null(pa.scalar([], column.type)) if name in names else column
              for name, column in zip(batch.schema.names, batch.columns, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)
