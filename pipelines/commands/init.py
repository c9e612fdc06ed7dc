"""``init``: a dataset directory drafted from CSV files, with no code written.

    python -m pipelines init --train_input GLOB --dir DIR [--name NAME] [--label COL]
        [--key COL,...] [--delimiter D] [--null_values V,...] [--column_names A,B,...]
        [--encoding E] [--limit N]

writes what ``run --dataset DIR`` needs, each file a draft to read and curate:

- ``dataset.json``: the CSV dialect detected from the first file
  (``pipelines.decode.dialect``; the flags override it) and the split key;
- ``schema.pbtxt``: the schema ``infer-schema`` infers (TFDV), with soft domains
  only (a new value is an anomaly, never a rejection), the label outside the
  ``SERVING`` environment (serving data may lack it) and skew and drift
  comparators on every column, their thresholds set from the data as
  ``suggest-thresholds`` sets them: the largest value seen between random
  80/20 parts, times a margin; a number compared by the histogram that best
  sees it scaled by 1.3 (init says which numbers such a scale would still pass,
  and which comparators can flag nothing: unchecked);
- ``transforms.py``: the ``preprocessing_fn``, one line per column (the recipe
  below, built from ``transforms.recipes``), for a person to edit.

The recipe: numbers are z-scored, a missing value imputed and flagged; text
with at most ``VOCABULARY_MAX_VALUES`` values gets a vocabulary with an OOV
bucket, text with more is hashed; timestamps (text like ``2013-01-01 05:00``,
whole seconds since 1970 in a column whose name says time or date, or a column
of dates the dialect gave a format: ``31/01/2013``, ``2013-01-31T05:00+02:00``,
read as seconds since 1970 by the decoder) become
hour-of-day and weekday cycles and a scaled time, never hashes; a column with
one value becomes a flag of whether it is there. The label is
encoded: text, or a few whole numbers, as classes; a number with many values
stays a number (``train`` then fits a regression).

Two things a person would otherwise undo:

- A row key is not a feature: a column ``--key`` names, or one of whole
  numbers that increase strictly from row to row (``Id``, ``instant``), is read
  and kept in the schema (for the split key, predictions and deduplication)
  but is neither transformed, fed to the model, compared for skew nor part of a
  serving request. Without ``--key``, such a column keys the split.
- A word such as ``None`` marks a missing value only in a column whose other
  values are numbers; in a text column it is a category
  (``pipelines.decode.dialect``). ``--null_values`` sets the markers of every
  column instead.

``init`` prints both decisions, column by column.

Curating, then drafting again:

- ``init --overwrite`` drafts a directory that holds a dataset anew: all three
  files, the person's edits to them gone.
- ``init --from DIR --train_input GLOB`` re-derives ``DIR/schema.pbtxt`` after
  a person has edited ``DIR/dataset.json`` (``null_values``,
  ``column_null_values``, the delimiter...): the columns are read in the
  dialect it now describes and typed afresh, and each feature keeps the
  person's schema (comparators, annotations, environments, domains) where it
  still applies: a string domain loses the texts that are now missing values
  and gains those that are now values, a column that now has missing values
  becomes optional, a column whose type changed is drafted anew. ``init``
  lists every change; ``dataset.json`` and ``transforms.py`` are left as they are.
"""

import collections
import dataclasses
import math
import os
import re
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import datasets
from pipelines.commands.infer_schema import infer
from pipelines.commands.suggest_thresholds import Comparator, draft_comparators
from pipelines.decode import dialect, value_formats
from pipelines.decode.columns import SERVING, TRAINING, CsvFormat, added_by_pipeline
from pipelines.decode.csv_decoder import header_names
from pipelines.decode.files import match_files, open_input
from pipelines.errors import UserError
from pipelines.records import atomic_files

__all__ = ["Drafted", "Rederived", "init_dataset", "name_of", "rederive_schema"]

VOCABULARY_MAX_VALUES = 100
# The widest file init drafts: drafting costs a fraction of a second per column
# (measured: 100 columns of 2,000 rows, about 14 s; benchmarks/width.py), so a
# file of 100,000 columns would seem to hang; it is refused in one line instead.
MAX_DRAFT_COLUMNS = 1_000
LABEL_MAX_CLASSES = 20
MIN_HASH_BUCKETS, MAX_HASH_BUCKETS = 64, 8192
# Seconds since 1970 of 2000-01-01 and 2100-01-01: the range a timestamp column's
# values must lie in, with a name that says so.
EPOCH_RANGE = (946_684_800, 4_102_444_800)
# Fewer rows than this are too few to tell a row id from a sorted feature.
ROW_ID_MIN_ROWS = 20
_TIME_NAME = re.compile(r"time|date|(^|_)ts$|_at$", re.IGNORECASE)
_DATETIME_TEXT = re.compile(rb"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d*)?)?)?")
# Thresholds: as suggest-thresholds measures them (sizes, repeats), with a floor,
# so that a column whose halves never differ is not flagged for nothing. The
# margin is 2, not suggest-thresholds' 1.5: 1.5 x the largest of 10 values sits
# about 2.3 standard deviations above a 1,000-row span's noise, so a span of 15
# columns flags one for nothing about once in four (seen on census' sex); 2 x
# sits above 3, and a 1.3x scale of a number still stands above it
# (benchmarks/random_splits.py).
NOISE_SIZES, NOISE_REPEATS, MARGIN, MIN_THRESHOLD = (5000, 0), 10, 2.0, 0.01


@dataclasses.dataclass(frozen=True)
class Choice:
    """What the generated module does with one raw column, and why."""

    column: str
    kind: str  # number, vocabulary, hashed, timestamp(_text), presence, skipped, key, label_*
    why: str
    optional: bool = False  # has missing values: a number's get flagged
    values: int = 0  # distinct values seen
    buckets: int = 0
    classes: int = 0


@dataclasses.dataclass(frozen=True)
class Drafted:
    """A written dataset directory, and what was detected for it."""

    directory: str
    name: str
    detected: str
    rows: int
    rejected: int
    choices: list[Choice]
    thresholds: dict[str, Comparator]
    decisions: list[str] = dataclasses.field(default_factory=list)

    def describe(self) -> str:
        """What ``init`` prints: what it read, what it chose, what to do next."""
        lines = [f"Dataset {self.name!r} drafted in {self.directory}/ from {self.rows:,} rows "
                 f"({self.rejected:,} rejected).",
                 f"Read as detected (dataset.json): {self.detected}.", "Columns:"]
        width = max(len(c.column) for c in self.choices)
        for choice in self.choices:
            comparator = self.thresholds.get(choice.column)
            shown = f"   {comparator.describe()}" if comparator is not None else ""
            lines.append(f"  {choice.column:<{width}}  {choice.kind:<15} {choice.why}{shown}")
        if self.decisions:
            lines.append("Decided, to check:")
            lines += [f"  {decision}" for decision in self.decisions]
        return "\n".join(lines)


def init_dataset(train_input: str, directory: str, *, name: str | None = None,
                 label: str | None = None, key: Sequence[str] = (),
                 delimiter: str | None = None, null_values: Sequence[str] | None = None,
                 column_names: Sequence[str] | None = None, encoding: str | None = None,
                 limit: int | None = None, overwrite: bool = False) -> Drafted:
    """Detects, infers and writes the dataset directory; returns what it did."""
    if os.path.exists(os.path.join(directory, datasets.DATASET_FILE)) and not overwrite:
        raise UserError(f"{directory} already holds a dataset ({datasets.DATASET_FILE}); "
                        f"pass --overwrite to draft it anew, --from {directory} to re-derive "
                        f"its schema after editing {datasets.DATASET_FILE}, or another --dir")
    files = match_files(train_input)
    csv_format, names, ambiguous = _dialect(files[0], column_names, delimiter, null_values,
                                            encoding)
    for column in [*key, *([label] if label else [])]:
        if column not in names:
            raise UserError(f"{column!r} is not a column of {files[0]}; its columns: "
                            f"{', '.join(names)}")
    # Markers given are the user's, for every column; else a word like None is judged
    # by its column.
    inferred = infer(files, csv_format, names, limit, column_markers=null_values is None)
    if not inferred.typed.num_rows:
        raise UserError(f"{train_input} holds no row that decodes as {csv_format}")
    schema = inferred.schema
    row_ids = [n for n in names if n != label
               and _is_row_id(inferred.typed.column(n), tfdv.get_feature(schema, n))]
    csv_format = dataclasses.replace(
        csv_format, key_columns=tuple(key) or tuple(row_ids),
        column_null_values=inferred.column_null_values)
    value_format = dict(csv_format.column_formats)
    choices = [_choose(inferred.typed.column(n), tfdv.get_feature(schema, n), n == label,
                       _key_reason(n, key, row_ids) if n != label else None,
                       value_format.get(n))
               for n in names]
    _declare_environments(schema, label)
    # A column with one value or none has no distribution to compare, and its
    # few values may all land in eval: neither compared nor required to show up.
    constant = {c.column for c in choices if c.values <= 1}
    for feature in schema.feature:
        if feature.name in constant:
            feature.presence.ClearField("min_count")
    # A row key is new in every serving row: comparing it would flag drift for nothing.
    keys = {c.column for c in choices if c.kind == "key"}
    thresholds = _set_thresholds(schema, pa.Table.from_batches([inferred.typed]),
                                 constant | keys)
    name = name or name_of(directory)
    detected = dialect.Detected(csv_format, names).describe()
    header = _schema_header(f"Drafted by `python -m pipelines init` from {train_input!r}",
                            inferred, f"detected: {detected}")
    datasets.write_directory(directory, name, csv_format,
                             header + text_format.MessageToString(schema),
                             _module_source(train_input, choices, label))
    return Drafted(directory, name, detected, inferred.typed.num_rows, inferred.rejected,
                   choices, thresholds,
                   _decisions(choices, csv_format, inferred.typed, schema, ambiguous))


@dataclasses.dataclass(frozen=True)
class Rederived:
    """A dataset directory's schema derived again, and what changed in it."""

    directory: str
    rows: int
    rejected: int
    changes: list[str]

    def describe(self) -> str:
        """What ``init --from`` prints: one line per change."""
        schema_file = os.path.join(self.directory, datasets.SCHEMA_FILE)
        head = (f"Re-derived {schema_file} from {self.rows:,} rows ({self.rejected:,} "
                f"rejected), read as {datasets.DATASET_FILE} says:")
        kept = (f"{datasets.DATASET_FILE} and {datasets.TRANSFORMS_FILE} are as they were "
                f"(a column added or retyped may want its recipe changed there).")
        if not self.changes:
            return f"{head} nothing changed.\n{kept}"
        return "\n".join([head, *(f"  {change}" for change in self.changes), kept])


def rederive_schema(directory: str, train_input: str, limit: int | None = None) -> Rederived:
    """Re-derives ``directory``'s ``schema.pbtxt`` from ``train_input`` read as
    its ``dataset.json`` now says, keeping the schema's curation where it still
    applies (the module's docstring); returns the changes."""
    if not os.path.isfile(os.path.join(directory, datasets.DATASET_FILE)):
        raise UserError(f"{directory} holds no dataset ({datasets.DATASET_FILE}): draft one "
                        f"with init --dir {directory}")
    dataset = datasets.load_directory(directory)
    curated = dataset.schema()
    csv_format = dataset.csv_format
    files = match_files(train_input)
    with open_input(files[0]) as stream:
        names = (header_names(stream, csv_format) if csv_format.has_header
                 else list(csv_format.column_names))
    names = [n for n in names if n not in csv_format.ignored_columns]
    if not names:
        raise UserError(f"{directory}/{datasets.DATASET_FILE} names no columns and "
                        f"{files[0]} has no header line: set \"column_names\"")
    inferred = infer(files, csv_format, names, limit)
    if not inferred.typed.num_rows:
        raise UserError(f"{train_input} holds no row that decodes as {directory}/"
                        f"{datasets.DATASET_FILE} says")
    fresh = inferred.schema
    _declare_environments(fresh, None)
    counts = {n: pc.count_distinct(inferred.typed.column(n).flatten()).as_py() for n in names}
    constant = {n for n, count in counts.items() if count <= 1}
    for feature in fresh.feature:
        if feature.name in constant:
            feature.presence.ClearField("min_count")
    _set_thresholds(fresh, pa.Table.from_batches([inferred.typed]),
                    constant | set(csv_format.key_columns))
    schema, changes = _merged(curated, fresh, csv_format)
    header = _schema_header(
        f"Re-derived by `python -m pipelines init --from` from {train_input!r}", inferred,
        f"{datasets.DATASET_FILE} says: {dialect.Detected(csv_format, names).describe()}")
    atomic_files.write_text(os.path.join(directory, datasets.SCHEMA_FILE),
                            header + text_format.MessageToString(schema))
    return Rederived(directory, inferred.typed.num_rows, inferred.rejected, changes)


def _merged(curated: schema_pb2.Schema, fresh: schema_pb2.Schema, csv_format: CsvFormat
            ) -> tuple[schema_pb2.Schema, list[str]]:
    """The curated schema with the columns as ``fresh`` (inferred from the data
    as now read, comparators drafted) finds them, and a line per change."""
    merged = schema_pb2.Schema()
    merged.CopyFrom(curated)
    del merged.feature[:]
    del merged.string_domain[:]
    old = {f.name: f for f in curated.feature}
    old_domains = {d.name: d for d in curated.string_domain}
    fresh_domains = {d.name: d for d in fresh.string_domain}
    changes = []
    for new in fresh.feature:
        before = old.get(new.name)
        if before is None:
            changes.append(f"{new.name}: added, {_type(new)} (a column the schema lacked)")
            _add(merged, new, fresh_domains)
        elif before.type != new.type:
            changes.append(f"{new.name}: {_type(before)} -> {_type(new)}, drafted anew (its "
                           f"presence, domain and comparators)")
            _keep_curation(new, before)
            _add(merged, new, fresh_domains)
        else:
            changes += _update(merged, before, new, old_domains, fresh_domains,
                               csv_format.null_values_of(new.name))
    columns = {f.name for f in fresh.feature}
    for feature in curated.feature:
        if feature.name in columns:
            continue
        if added_by_pipeline(feature):  # a window or lookup feature: not a column
            _add(merged, feature, old_domains)
        else:
            changes.append(f"{feature.name}: removed (not a column of the file)")
    # A domain that several features name is kept once.
    named: dict[str, schema_pb2.StringDomain] = {}
    for domain in merged.string_domain:
        if domain.name not in named:
            named[domain.name] = schema_pb2.StringDomain()
            named[domain.name].CopyFrom(domain)
    del merged.string_domain[:]
    merged.string_domain.extend(named.values())
    return merged, changes


def _type(feature: schema_pb2.Feature) -> str:
    return schema_pb2.FeatureType.Name(feature.type)


def _add(schema: schema_pb2.Schema, feature: schema_pb2.Feature,
         domains: dict[str, schema_pb2.StringDomain]) -> None:
    """Appends ``feature`` and the string domain it names, if any."""
    schema.feature.add().CopyFrom(feature)
    if feature.HasField("domain") and feature.domain in domains:
        schema.string_domain.add().CopyFrom(domains[feature.domain])


def _keep_curation(new: schema_pb2.Feature, before: schema_pb2.Feature) -> None:
    """What a person decides whatever the column's type: its annotation and
    its environments."""
    new.annotation.CopyFrom(before.annotation)
    if not new.annotation.ListFields():
        new.ClearField("annotation")
    new.ClearField("in_environment")
    new.in_environment.extend(before.in_environment)
    new.ClearField("not_in_environment")
    new.not_in_environment.extend(before.not_in_environment)


def _update(schema: schema_pb2.Schema, before: schema_pb2.Feature, new: schema_pb2.Feature,
            old_domains: dict[str, schema_pb2.StringDomain],
            fresh_domains: dict[str, schema_pb2.StringDomain],
            markers: tuple[str, ...]) -> list[str]:
    """Adds the curated feature, changed where the data now contradicts it:
    a required column with missing values becomes optional, and a string
    domain drops the missing-value markers and takes the values seen."""
    feature = schema.feature.add()
    feature.CopyFrom(before)
    name, changes = new.name, []
    if _required(before) and not _required(new):
        feature.presence.CopyFrom(new.presence)
        feature.ClearField("shape")
        feature.value_count.CopyFrom(new.value_count)
        changes.append(f"{name}: optional now (it has missing values)")
    old_values = _domain_values(before, old_domains)
    if old_values is None:  # no domain curated: none is added
        return changes
    seen = _domain_values(new, fresh_domains) or []
    values = [v for v in old_values if v not in markers]
    values += [v for v in seen if v not in values]
    added = [v for v in values if v not in old_values]
    dropped = [v for v in old_values if v not in values]
    if added:
        changes.append(f"{name}: domain + {', '.join(map(repr, added))} (values now)")
    if dropped:
        changes.append(f"{name}: domain - {', '.join(map(repr, dropped))} (missing values now)")
    if feature.HasField("string_domain"):
        del feature.string_domain.value[:]
        feature.string_domain.value.extend(values)
    else:
        domain = schema.string_domain.add()
        domain.CopyFrom(old_domains[before.domain])
        del domain.value[:]
        domain.value.extend(values)
    return changes


def _required(feature: schema_pb2.Feature) -> bool:
    return feature.presence.min_fraction >= 1.0 or feature.HasField("shape")


def _domain_values(feature: schema_pb2.Feature,
                   domains: dict[str, schema_pb2.StringDomain]) -> list[str] | None:
    """The values of the string domain ``feature`` names or holds; None without one."""
    if feature.HasField("string_domain"):
        return list(feature.string_domain.value)
    if feature.HasField("domain") and feature.domain in domains:
        return list(domains[feature.domain].value)
    return None


def _schema_header(drafted: str, inferred, read_as: str) -> str:
    """The comment a drafted ``schema.pbtxt`` begins with: how it was drafted, and
    what to curate."""
    return (f"# {_comment(drafted)}\n"
            f"# ({inferred.typed.num_rows:,} rows, {inferred.rejected:,} rejected; read as "
            f"{_comment(read_as)}).\n"
            f"# Curate it: string domains are soft (a new value is an anomaly); tag a\n"
            f"# feature's annotation \"reject_out_of_domain\" to reject such rows instead.\n"
            f"# Skew/drift thresholds: {MARGIN} x the largest value between random 80/20\n"
            f"# parts of {', '.join(f'{s:,}' if s else 'all' for s in NOISE_SIZES)} rows "
            f"(at least {MIN_THRESHOLD}).\n")


def name_of(path: str) -> str:
    """A dataset name from a file or directory name (``adult.data`` -> ``adult``)."""
    return _identifier(os.path.basename(os.path.normpath(path)).split(".")[0])


def _dialect(path: str, column_names, delimiter, null_values, encoding
             ) -> tuple[CsvFormat, list[str], tuple[str, ...]]:
    detected = dialect.detect_file(path, column_names, delimiter=delimiter, encoding=encoding)
    csv_format, names = detected.csv_format, detected.names
    if null_values is not None:
        csv_format = dataclasses.replace(csv_format, null_values=tuple(null_values))
    if not names:
        raise UserError(f"{path} holds no line to read columns from")
    if len(names) > MAX_DRAFT_COLUMNS:
        raise UserError(f"{path} has {len(names):,} columns; init drafts at most "
                        f"{MAX_DRAFT_COLUMNS:,} (each costs seconds of drafting): write its "
                        f"dataset directory by hand (docs/datasets.md)")
    repeated = sorted(n for n, count in collections.Counter(names).items() if count > 1)
    if repeated:  # given twice in --column_names: which is the column?
        raise UserError(f"the columns of {path} name {', '.join(map(repr, repeated))} more "
                        f"than once; each column must be named once")
    return csv_format, names, detected.ambiguous


def _is_row_id(column: pa.LargeListArray, feature: schema_pb2.Feature) -> bool:
    """Whole numbers in every row, each larger than the one before (in file
    order): a row id (``Id``, ``instant``), not a measurement. A column named
    like a time is a time, whose recipe is the timestamp's."""
    if (feature.type != schema_pb2.INT or column.null_count or len(column) < ROW_ID_MIN_ROWS
            or _TIME_NAME.search(feature.name)):
        return False
    numbers = column.flatten().to_numpy(zero_copy_only=False)
    return bool(np.all(np.diff(numbers) > 0))


def _key_reason(column: str, key: Sequence[str], row_ids: list[str]) -> str | None:
    """Why ``column`` is a row key rather than a feature; None when it is a feature."""
    if column in key:
        return "a row key (--key), kept out of the features"
    if column in row_ids:
        keyed = "" if key else "; it keys the split"
        return f"a row key (unique and increasing), kept out of the features{keyed}"
    return None


def _decisions(choices: list[Choice], csv_format: CsvFormat, typed: pa.RecordBatch,
               schema: schema_pb2.Schema, ambiguous: Sequence[str] = ()) -> list[str]:
    """The choices a person may disagree with, one line each: row keys, the
    words that are missing values in one column and categories in another,
    and the dates that read day-first as well as month-first."""
    lines = [f"{c.column}: {c.why}" for c in choices if c.kind == "key"]
    lines += [f"{column}: dates that read day-first and month-first, left as text; name its "
              f"format in dataset.json's column_formats (e.g. \"%d/%m/%Y\")"
              for column in ambiguous]
    for column, markers in csv_format.column_null_values:
        lines += [f"{m} in {column}: a missing value (the column's other values are numbers)"
                  for m in markers]
    for feature in schema.feature:
        if feature.type == schema_pb2.BYTES:
            values = pc.unique(typed.column(feature.name).flatten())
            lines += [f"{m} in {feature.name}: a category, not a missing value (the column "
                      f"is text)" for m in dialect.word_markers_in(values)
                      if m not in csv_format.null_values]
    return lines


def _choose(column: pa.LargeListArray, feature: schema_pb2.Feature, is_label: bool,
            key_reason: str | None = None, value_format: str | None = None) -> Choice:
    """The recipe for one column, from its type and values (none for a row key)."""
    values = column.flatten()
    present = len(values)
    distinct = pc.count_distinct(values).as_py() if present else 0
    missing = len(column) - present
    facts = (f"{distinct:,} value{'s' if distinct != 1 else ''}"
             + (f", {missing:,} missing" if missing else ""))
    if is_label:
        choice = _choose_label(values, feature, facts, distinct)
    elif key_reason is not None:
        choice = Choice(feature.name, "key", key_reason)
    elif not present:
        return Choice(feature.name, "skipped", "no value in the rows read")
    else:
        choice = _choose_feature(values, feature, facts, distinct, value_format)
    return dataclasses.replace(choice, values=distinct)


def _choose_label(values: pa.Array, feature: schema_pb2.Feature, facts: str,
                  distinct: int) -> Choice:
    name = feature.name
    if not len(values):
        raise UserError(f"the label column {name!r} has no value in the rows read")
    if feature.type == schema_pb2.BYTES:
        return Choice(name, "label_classes", f"text label, {facts}")
    numbers = values.to_numpy(zero_copy_only=False)
    whole = feature.type == schema_pb2.INT
    if whole and distinct <= LABEL_MAX_CLASSES:
        if numbers.min() >= 0 and numbers.max() < LABEL_MAX_CLASSES:
            return Choice(name, "label_class_ids", f"whole-number classes, {facts}",
                          classes=int(numbers.max()) + 1)
        return Choice(name, "label_classes", f"whole-number classes, {facts}")
    return Choice(name, "label_number", f"a number, {facts}: regression")


def _choose_feature(values: pa.Array, feature: schema_pb2.Feature, facts: str,
                    distinct: int, value_format: str | None = None) -> Choice:
    name = feature.name
    if feature.type == schema_pb2.INT and value_format not in (None, value_formats.DECIMAL_COMMA):
        # The decoder turned its dates into seconds since 1970 (UTC).
        return Choice(name, "timestamp", f"{value_formats.describe(value_format)}, as "
                                         f"seconds since 1970, {facts}")
    if distinct == 1:
        # Its one value says nothing, whether it is there may; a scale fitted to
        # one value (or to none, if all land in eval) would blow up what differs.
        return Choice(name, "presence", f"{facts}: only whether it is there")
    if feature.type == schema_pb2.BYTES:
        if _share(values, lambda v: _DATETIME_TEXT.match(v) is not None) >= 0.95:
            return Choice(name, "timestamp_text", f"date/time text, {facts}")
        if distinct <= VOCABULARY_MAX_VALUES:
            return Choice(name, "vocabulary", f"text, {facts}")
        buckets = int(np.clip(2 ** math.ceil(math.log2(2 * distinct)), MIN_HASH_BUCKETS,
                              MAX_HASH_BUCKETS))
        return Choice(name, "hashed", f"text, {facts}", buckets=buckets)
    if feature.type == schema_pb2.INT and _TIME_NAME.search(name):
        numbers = values.to_numpy(zero_copy_only=False)
        if EPOCH_RANGE[0] <= numbers.min() and numbers.max() < EPOCH_RANGE[1]:
            return Choice(name, "timestamp", f"seconds since 1970, {facts}")
    return Choice(name, "number", f"{schema_pb2.FeatureType.Name(feature.type)}, {facts}",
                  optional=feature.presence.min_fraction < 1.0)


def _share(values: pa.Array, test) -> float:
    sample = values.slice(0, 10_000).to_pylist()
    return sum(test(v) for v in sample) / len(sample)


def _declare_environments(schema: schema_pb2.Schema, label: str | None) -> None:
    """Training and serving data; serving data may lack the label."""
    schema.default_environment.extend([TRAINING, SERVING])
    if label:
        tfdv.get_feature(schema, label).not_in_environment.append(SERVING)


def _set_thresholds(schema: schema_pb2.Schema, table: pa.Table, uncompared: set[str]
                    ) -> dict[str, Comparator]:
    """Skew and drift comparators on every column used, thresholds from the
    noise between random parts of ``table`` (the rows the schema was inferred
    from, typed as it says); a number compared by the histogram under which a
    1.3x scale of it stands furthest above its threshold
    (``suggest_thresholds.draft_comparators``)."""
    return draft_comparators(schema, table, uncompared, list(NOISE_SIZES), NOISE_REPEATS,
                             MARGIN, MIN_THRESHOLD)


def _identifier(name: str) -> str:
    """A column name as a Python- and TensorFlow-friendly output name."""
    cleaned = re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_").lower() or "column"
    return f"c_{cleaned}" if cleaned[0].isdigit() else cleaned


def _module_source(train_input: str, choices: list[Choice], label: str | None) -> str:
    """The generated ``transforms.py``: constants, then one block per column.

    Data never becomes code: every text that comes from the user (the input
    path, the column names) is written as a Python literal by ``repr``, which
    reads back as the same string whatever it holds (quotes, backslashes, NUL,
    line breaks), and nowhere else: the docstrings are fixed text, and a comment
    shows a column only as that literal, whose escapes keep it on one line.
    """
    used = [c for c in choices
            if c.kind not in ("skipped", "key") and not c.kind.startswith("label_")]
    label_key = _identifier(label) if label is not None else None
    has_label = " and the label" if label is not None else ""
    lines = [
        '"""The TFT ``preprocessing_fn`` of the dataset in this directory, drafted by',
        "`python -m pipelines init` from the files ``DRAFTED_FROM`` names.",
        "",
        "Every choice is a line to edit: the recipe of each column (see",
        "``transforms.recipes``) and the constants below. The raw features arrive as",
        "the schema says: a dense ``[batch, 1]`` tensor for a column present in every",
        "row, a sparse one for a column with missing values.",
        '"""',
        "",
        "from transforms import recipes",
        "",
        '__all__ = ["LABEL_INPUTS", "LABEL_KEY", "SERVING_INPUTS", "preprocessing_fn"]',
        "",
        "# The --train_input init read.",
        f"DRAFTED_FROM = {train_input!r}",
        "# The label: an output of preprocessing_fn, computed from the raw column of the",
        "# same name; None when the dataset has none (train needs one).",
        f"LABEL_KEY = {label_key!r}",
        "# The raw columns a serving request carries: the model's inputs come from these.",
        f"SERVING_INPUTS = {_tuple([c.column for c in used])}",
        "# Raw columns only the label needs (absent from serving data; mark them",
        '# not_in_environment: "SERVING" in schema.pbtxt as the label is).',
        "LABEL_INPUTS = ()",
        "",
        "",
        "def preprocessing_fn(inputs: dict) -> dict:",
        f'    """Raw columns -> model-ready features{has_label}."""',
        "    outputs = {}",
    ]
    taken = set()
    for choice in choices:
        lines += ["", f"    # {_comment(f'{choice.column!r}: {choice.why}')}"]
        lines += [f"    {line}" for line in _recipe_lines(choice, taken, label_key)]
    lines += ["    return outputs", ""]
    return "\n".join(lines)


def _comment(text: str) -> str:
    """``text`` fit for a comment: a character that is not printable (a line
    break, NUL) written as its escape, so the comment cannot end early; the
    column names in it come as ``repr`` literals already."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _recipe_lines(choice: Choice, taken: set[str], label_key: str | None) -> list[str]:
    raw = f"inputs[{choice.column!r}]"

    def output(suffix: str) -> str:
        key = f"{_identifier(choice.column)}{suffix}"
        while key in taken or key == label_key:
            key += "_"
        taken.add(key)
        return key

    kind = choice.kind
    if kind == "skipped":
        return ["# (not used: no values to learn from)"]
    if kind == "key":
        return ["# (not transformed: the schema keeps it; a serving request need not carry it)"]
    if kind == "presence":
        return [f"outputs[{output('_missing')!r}] = recipes.missing({raw})"]
    if kind == "number":
        z = output("_z")
        lines = [f"outputs[{z!r}] = recipes.z_score_imputed({raw}, name={z!r})"]
        if choice.optional:
            lines.append(f"outputs[{output('_missing')!r}] = recipes.missing({raw})")
        return lines
    if kind == "vocabulary":
        ids = output("_id")
        return [f"outputs[{ids!r}] = recipes.vocabulary({raw}, name={ids!r}, oov_buckets=1)"]
    if kind == "hashed":
        return [f"outputs[{output('_hash')!r}] = recipes.hashed({raw}, "
                f"buckets={choice.buckets})"]
    if kind in ("timestamp", "timestamp_text"):
        prefix = output("")
        text = ", text=True" if kind == "timestamp_text" else ""
        return [f"outputs.update(recipes.timestamp_features({raw}, name={prefix!r}{text}))"]
    if kind == "label_classes":
        return [f"outputs[LABEL_KEY] = recipes.label_vocabulary({raw}, name=LABEL_KEY)"]
    if kind == "label_class_ids":
        return [f"outputs[LABEL_KEY] = recipes.integer_class({raw}, classes={choice.classes})"]
    if kind == "label_number":
        return [f"outputs[LABEL_KEY] = recipes.number({raw})"]
    raise ValueError(kind)


def _tuple(names: list[str]) -> str:
    if not names:
        return "()"
    text = "(" + ", ".join(repr(n) for n in names) + ("," if len(names) == 1 else "") + ")"
    if len(text) <= 80:
        return text
    return "(\n" + "".join(f"    {n!r},\n" for n in names) + ")"
