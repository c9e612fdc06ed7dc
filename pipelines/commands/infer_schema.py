"""``infer-schema``: a starting point for a new dataset's curated schema.

    python -m pipelines infer-schema --input GLOB [--dataset NAME] [--column_names A,B,...]
        [--limit N]

The files are decoded with the dataset's CSV format or, without ``--dataset``,
with the dialect detected from the first file (``pipelines.decode.dialect``:
encoding, delimiter, spaces after it, header or not, missing-value markers),
every column as raw bytes. A column is then typed from its values: INT if every
present value parses as a 64-bit integer, FLOAT if as a number, BYTES otherwise;
with a detected dialect, a word such as ``None`` or ``-`` is a missing value in a
column whose other values are numbers, and a value in a column of text
(``dialect.numeric_column_markers``).
TFDV computes statistics of the typed columns and infers presence, shapes and
string domains. The result is a draft to curate (which domains to keep,
thresholds for the skew and drift comparators), not a schema to use unread.
"""

import dataclasses
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from pipelines import datasets
from pipelines.decode import dialect
from pipelines.decode.columns import Column, CsvFormat, as_list_array
from pipelines.decode.csv_decoder import CsvDecoder, header_names
from pipelines.decode.files import decoded_table, match_files, open_input
from pipelines.decode.row_keys import ROW_KEY

__all__ = ["Inferred", "infer", "infer_schema_text"]

_CANDIDATE_TYPES = ((schema_pb2.INT, pa.int64()), (schema_pb2.FLOAT, pa.float32()))


@dataclasses.dataclass(frozen=True)
class Inferred:
    """A schema inferred from files, and what it was inferred from."""

    schema: schema_pb2.Schema
    statistics: statistics_pb2.DatasetFeatureStatisticsList
    typed: pa.RecordBatch  # every column, typed as the schema says
    rejected: int
    # The markers found to be missing values in one column only (as
    # ``CsvFormat.column_null_values``), when asked to look for them.
    column_null_values: tuple[tuple[str, tuple[str, ...]], ...] = ()


def infer(files: list[str], csv_format: CsvFormat, names: list[str],
          limit: int | None = None, column_markers: bool = False) -> Inferred:
    """Decodes ``files`` (every column as raw bytes), types each column and has
    TFDV infer the schema from the statistics of the typed columns. With
    ``column_markers``, a column whose values are numbers but for words such as
    ``None`` reads those words as missing values (``Inferred.column_null_values``)."""
    csv_format = dataclasses.replace(csv_format, key_columns=())
    decoder = CsvDecoder([Column(n, schema_pb2.BYTES, False) for n in names], csv_format)
    decoded = decoded_table(decoder, files, limit)
    table = decoded.table.drop([ROW_KEY])
    columns, own_markers = [], []
    for name in names:
        column = table.column(name).combine_chunks()
        markers = dialect.numeric_column_markers(column.flatten()) if column_markers else ()
        if markers:
            own_markers.append((name, markers))
            values = pc.list_element(column, 0)
            column = as_list_array(pc.if_else(
                pc.is_in(values, value_set=pa.array([m.encode() for m in markers], values.type)),
                None, values))
        columns.append(_typed(column))
    typed = pa.RecordBatch.from_arrays(columns, names=names)
    statistics = stats_impl.generate_statistics_in_memory(typed, tfdv.StatsOptions())
    schema = tfdv.infer_schema(statistics, infer_feature_shape=True)
    return Inferred(schema, statistics, typed, decoded.rejected, tuple(own_markers))


def infer_schema_text(pattern: str, dataset_name: str | None = None, limit: int | None = None,
                      column_names: Sequence[str] | None = None) -> str:
    """The inferred schema in text format, headed by how it was inferred."""
    files = match_files(pattern)
    if dataset_name is None:
        detected = dialect.detect_file(files[0], column_names)
        csv_format, names = detected.csv_format, detected.names
    else:
        dataset = datasets.get_dataset(dataset_name)
        csv_format = dataset.csv_format
        if column_names:
            csv_format = dataclasses.replace(csv_format, column_names=tuple(column_names))
        with open_input(files[0]) as stream:
            names = (header_names(stream, csv_format) if csv_format.has_header else
                     list(csv_format.column_names) or [f.name for f in dataset.schema().feature])
        read_as = f"# Read with dataset {dataset_name!r}'s CSV format.\n"
    inferred = infer(files, csv_format, names, limit, column_markers=dataset_name is None)
    if dataset_name is None:
        read = dataclasses.replace(csv_format, column_null_values=inferred.column_null_values)
        read_as = f"# Read as detected: {dialect.Detected(read, names).describe()}.\n"
    header = (f"# Inferred by `python -m pipelines infer-schema` from {pattern}\n"
              f"# ({inferred.typed.num_rows:,} rows decoded, {inferred.rejected:,} rejected). "
              f"Curate it:\n"
              f"# keep or drop string domains, check presence of optional columns,\n"
              f"# add skew_comparator and drift_comparator thresholds.\n")
    return header + read_as + text_format.MessageToString(inferred.schema)


def _typed(column: pa.LargeListArray) -> pa.LargeListArray:
    """The raw bytes column re-typed as the narrowest type all its values parse as."""
    values = column.flatten()
    for _, arrow_type in _CANDIDATE_TYPES:
        try:
            values = pc.cast(pc.cast(values, pa.string()), arrow_type)
            break
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return pa.LargeListArray.from_arrays(
        column.offsets, values, mask=column.is_null())
