"""Request logs (``serve --log_dir``) read back as serving data.

A request log is CSV with a header: the serving features a model received,
then the dataset's key columns the model does not take (empty where a request
left one out), then ``logged_prediction`` and ``logged_at`` (``LOG_COLUMNS``),
by which it is recognised. It holds only what requests carry: a feature the
pipeline derives (a window aggregate, a joined weather column) is a column of
the log as the request supplied it, and a column requests never carry (a
flight's arrival) is not there. So a log is checked against the schema's
features it names (``logged_schema``), decoded as written (``log_decoder``),
and nothing is derived from its rows again.

A feature the schema requires (a shape, and presence in every row) is read
from a log as optional. ``serve`` refuses an instance that lacks one the model
requires (a 400, never logged), so for the model's features nothing changes;
but a key column the model does not take (flights' ``flight``, required in the
schema) is empty in every row whose request left it out. Such a row is serving
data all the same, not a rejection, and a log whose requests never carried the
key is no anomaly.
"""

from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines.decode.columns import (
    ADDED_FEATURE_TAGS,
    CsvFormat,
    columns_from_schema,
)
from pipelines.decode.csv_decoder import CsvDecoder, header_names
from pipelines.decode.files import match_files, open_input
from pipelines.errors import UserError

__all__ = [
    "LOG_COLUMNS", "LOG_FORMAT", "PREDICTION_COLUMN", "TIME_COLUMN", "is_request_log",
    "log_decoder", "logged_schema", "request_log_header",
]

PREDICTION_COLUMN = "logged_prediction"
TIME_COLUMN = "logged_at"
LOG_COLUMNS = (PREDICTION_COLUMN, TIME_COLUMN)
# How the log is written: comma-separated, a header, a missing value empty.
LOG_FORMAT = CsvFormat(delimiter=",", null_values=("",), has_header=True,
                       ignored_columns=LOG_COLUMNS)


def is_request_log(header: list[str]) -> bool:
    """Whether a CSV header is a request log's: it ends with ``LOG_COLUMNS``."""
    return tuple(header[-len(LOG_COLUMNS):]) == LOG_COLUMNS


def logged_schema(schema: schema_pb2.Schema, header: list[str]) -> schema_pb2.Schema:
    """The schema of the features a log's ``header`` names, each a column of
    the log (the tags that make a feature derived are dropped) and none
    required (the module's docstring says why).

    Raises:
      UserError: the header names a feature the schema does not have.
    """
    logged = [n for n in header if n not in LOG_COLUMNS]
    known = {f.name for f in schema.feature}
    unknown = [n for n in logged if n not in known]
    if unknown:
        raise UserError(f"the request log names features the run's schema does not have: "
                        f"{', '.join(unknown)}; was it logged by a model of another dataset?")
    result = schema_pb2.Schema()
    result.CopyFrom(schema)
    del result.feature[:]
    for feature in schema.feature:
        if feature.name in logged:
            kept = result.feature.add()
            kept.CopyFrom(feature)
            tags = [t for t in kept.annotation.tag if t not in ADDED_FEATURE_TAGS]
            del kept.annotation.tag[:]
            kept.annotation.tag.extend(tags)
            if kept.presence.min_fraction >= 1.0 and kept.HasField("shape"):
                _as_optional(kept)  # what columns_from_schema makes a required column
    return result


def _as_optional(feature: schema_pb2.Feature) -> None:
    """A required feature made optional, as ``init`` declares a column with
    missing values: no presence bound, one value where present."""
    feature.ClearField("presence")
    feature.ClearField("shape")
    feature.value_count.min, feature.value_count.max = 1, 1


def log_decoder(schema: schema_pb2.Schema) -> CsvDecoder:
    """The decoder of request logs of ``logged_schema``'s features."""
    return CsvDecoder(columns_from_schema(schema), LOG_FORMAT)


def request_log_header(pattern: str) -> list[str] | None:
    """The header of the request logs ``pattern`` matches (``serve --log_dir``),
    or None for other CSV files; every file must be one or the other.

    Remote inputs are not read before the pipeline runs (building a Dataflow
    job needs no cloud access): copy logs to local disk to validate them.

    Raises:
      UserError: some files are request logs and others are not.
    """
    if "://" in pattern:
        return None
    paths = match_files(pattern)
    headers = []
    for path in paths:
        with open_input(path) as stream:
            headers.append(header_names(stream, LOG_FORMAT))
    logs = [is_request_log(h) for h in headers]
    if not any(logs):
        return None
    if not all(logs) or any(h != headers[0] for h in headers):
        raise UserError(f"{pattern} mixes request logs with other files (or logs of "
                        f"different features); read them apart")
    return headers[0]
