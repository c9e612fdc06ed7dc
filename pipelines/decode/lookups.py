"""Lookup joins: columns of a reference table joined to each row by key, such as
the weather at a flight's origin in its scheduled hour.

A dataset declares them in its transforms module (``LOOKUPS``, dicts of
``Lookup``'s fields, read by ``pipelines.dataset_module``): the table
(``package:path`` inside an installed package, read through
``importlib.resources``, or a file path), the row's columns that
key it and the table's columns they match, and the table columns joined (as
FLOAT). The schema declares each joined column as an optional FLOAT feature
tagged ``lookup_feature``: a row whose key the table lacks gets missing
values, never a guess. The key is the row's own (for weather, its scheduled
hour), so nothing later than the row's time is joined: the table must hold
what was known at that key, as an hourly observation is.

The table is small (it is held in memory by every worker, loaded once per
process); each batch is joined by Arrow's hash lookup (``index_in``).
"""

import dataclasses
import functools
import importlib.resources
import importlib.util

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines.decode.columns import LOOKUP_FEATURE_TAG, as_list_array
from pipelines.errors import UserError

__all__ = ["Lookup", "add_lookups", "checked_lookups", "output_fields"]

_SEPARATOR = "\x1f"


@dataclasses.dataclass(frozen=True)
class Lookup:
    """One joined table.

    Attributes:
      name: what messages call it (``weather``).
      source: ``package:path`` in an installed package, or a CSV file's path.
      keys: the row's columns that key it, in order.
      table_keys: the table's columns they match (default: the same names).
      columns: the table's columns joined, under the same names.
      null_values: the texts that mark a missing value in the table.
    """

    name: str
    source: str
    keys: tuple[str, ...]
    columns: tuple[str, ...]
    table_keys: tuple[str, ...] = ()
    null_values: tuple[str, ...] = ("NA", "")

    def __post_init__(self):
        object.__setattr__(self, "keys", tuple(self.keys))
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "table_keys", tuple(self.table_keys or self.keys))
        if len(self.table_keys) != len(self.keys):
            raise ValueError(f"{self.name}: keys and table_keys differ in length")


def _open(source: str):
    package, _, path = source.partition(":")
    if not path or "/" in package or package.startswith("."):
        return open(source, "rb")
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise UserError(f"lookup table {source}: no installed package {package!r}")
    # Located, never executed: a data package's __init__ may load every table.
    located = importlib.util.module_from_spec(spec)
    return (importlib.resources.files(located) / path).open("rb")


@functools.lru_cache(maxsize=8)
def _table(lookup: Lookup) -> tuple[pa.Array, dict[str, np.ndarray]]:
    """The table's key texts (in row order), and its joined columns (NaN: missing)."""
    names = list(lookup.table_keys) + list(lookup.columns)
    with _open(lookup.source) as f:
        table = pa_csv.read_csv(f, convert_options=pa_csv.ConvertOptions(
            include_columns=names, null_values=list(lookup.null_values),
            strings_can_be_null=True,
            column_types={**{k: pa.string() for k in lookup.table_keys},
                          **{c: pa.float64() for c in lookup.columns}}))
    keys = pc.binary_join_element_wise(*(table.column(k) for k in lookup.table_keys),
                                       _SEPARATOR).combine_chunks()
    if keys.null_count or len(pc.unique(keys)) != len(keys):
        raise UserError(f"lookup table {lookup.source}: its keys "
                        f"{', '.join(lookup.table_keys)} must be present and unique")
    values = {c: table.column(c).to_numpy().astype(np.float64) for c in lookup.columns}
    return keys, values


def _key_texts(batch: pa.RecordBatch, lookup: Lookup) -> pa.Array:
    texts = []
    for name in lookup.keys:
        values = batch.column(name)
        if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
            values = pc.list_element(values, 0)
        texts.append(pc.cast(values, pa.string()))
    return pc.binary_join_element_wise(*texts, _SEPARATOR)


def add_lookups(lookups: tuple[Lookup, ...], batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with every lookup's columns (FLOAT lists of one, null where
    the table lacks the row's key or the value)."""
    arrays, names = list(batch.columns), list(batch.schema.names)
    for lookup in lookups:
        keys, values = _table(lookup)
        # A hash lookup in Arrow's C++: the table row of each row's key, or null.
        found = pc.fill_null(pc.index_in(_key_texts(batch, lookup), value_set=keys), -1)
        found = found.to_numpy(zero_copy_only=False).astype(np.int64)
        for column in lookup.columns:
            joined = np.where(found >= 0, values[column][found], np.nan)
            arrays.append(as_list_array(pa.array(joined.astype(np.float32),
                                                 mask=np.isnan(joined))))
            names.append(column)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def output_fields(lookups: tuple[Lookup, ...]) -> list[pa.Field]:
    return [pa.field(c, pa.large_list(pa.float32())) for lookup in lookups for c in lookup.columns]


def checked_lookups(owner: str, lookups: tuple[Lookup, ...], schema: schema_pb2.Schema
                    ) -> tuple[Lookup, ...]:
    """The lookup joins ``owner`` (a transforms module) declares, checked against
    the schema's features tagged ``lookup_feature``, each an optional FLOAT
    (``pipelines.dataset_module`` reads the declarations).

    Raises:
      UserError: the declarations and the schema disagree.
    """
    tagged = {f.name: f for f in schema.feature if LOOKUP_FEATURE_TAG in f.annotation.tag}
    joined = [c for lookup in lookups for c in lookup.columns]
    if set(joined) != set(tagged):
        raise UserError(f"{owner} joins {sorted(joined)}, the schema tags "
                        f"{sorted(tagged)} '{LOOKUP_FEATURE_TAG}'")
    for name, feature in tagged.items():
        if feature.type != schema_pb2.FLOAT:
            raise UserError(f"the schema's {name} must be FLOAT (a joined column)")
    return lookups
