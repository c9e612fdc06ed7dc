"""What a serving request's instances must be: the model's serving features,
typed, present and within their domains as the dataset's schema declares them,
and, optionally, the dataset's key columns the model does not take.

An instance that cannot be scored is refused, naming the instance and the
feature (``InvalidInstance``): a feature the model does not take (and that is
no key column, below), a required one missing, a value of the wrong type, a
number beyond what its tensor holds (an integer outside int64, a float that
is not finite or outside float32, a number as long as ``10**400``), a text
that is not Unicode (JSON's ``"\ud800"``, a lone surrogate, has no UTF-8), or
a value outside a *hard* domain (a feature tagged ``reject_out_of_domain``,
whose rows the pipeline rejects too). A value outside a *soft* domain (an
unseen carrier) is scored as training would have transformed it, and counted.

Instances arrive as JSON objects (``predict_raw``) or as serialized
``tf.Example``s (``serving_default``); both become the same rows of Python
values, by the features' own names (the CSV's), which is also what the request
log writes.

A feature given ``""`` is missing, as an empty CSV field is to the pipeline
(``dialect.NULL_MARKERS``): a 400 when the feature is required, never scored
(and then rejected from the request log); optional, it is scored as missing.

A column the dataset writes its own way (``dataset.json``'s
``column_formats``: a date such as ``%d/%m/%Y``, ``iso8601``,
``decimal_comma``) takes its value as the CSV writes it, a JSON string
(``"02/03/2013"``, ``"12,5"``), converted by the decoder's own converter
(``value_formats.convert``) and typed as the decoder types it: seconds since
1970 UTC for a time, a number for a decimal comma. A string that does not read
as the format is refused with a 400 naming the feature, the value and the
format, as the pipeline rejects such a CSV row (``unparsable``), never scored.
A JSON number is taken as already converted (seconds since 1970, a number):
it is what the model's tensor holds, what ``serving_default``'s
``tf.Example``s carry and what the request log writes, so those values are
not converted again (a ``tf.Example``'s text is never read as a format).

Values are quoted in messages by ``reprlib``, so a megabyte string or a deeply
nested list is named in a line.

A feature whose tensor cannot hold a missing value (an integer one: only an
optional number is a float, NaN when missing) is required whatever it is
declared: a missing value it cannot hold is refused with a 400 here, never
turned into a tensor.

The dataset's key columns (``CsvFormat.key_columns``; flights: year, month,
day, carrier, flight, origin) identify a row, and the request log is joined
row by row to the pipeline's own rows by them. A key column the model does
not take (flights' ``flight``) is accepted too, so that a logged row carries
its key: checked as an optional feature typed and bounded as its schema
feature says (a hard domain refused with a 400 like a model feature's), logged
(``names``), never fed to the model (``tensors`` takes the model's features
only). A request that leaves it out is scored as ever and logged with it
empty. Any other name is still an unknown feature.
"""

import collections
import dataclasses
import math
import reprlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines.decode import value_formats
from pipelines.decode.columns import columns_from_schema

__all__ = ["InvalidInstance", "RequestChecks", "Row"]

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT64_EXACT_INTEGERS = 2 ** 53

# One instance: feature -> int, float, str, or None for a missing value.
Row = dict

_quote = reprlib.Repr()
_quote.maxstring, _quote.maxother, _quote.maxlong, _quote.maxlevel = 60, 60, 60, 3


class InvalidInstance(ValueError):
    """An instance that cannot be scored; ``feature`` names the culprit (None
    when the instance as a whole is wrong)."""

    def __init__(self, instance: int, feature: str | None, message: str):
        super().__init__(f"instance {instance}: {message}")
        self.instance = instance
        self.feature = feature


# The type a key column the model does not take is checked as: never a tensor,
# so an INT is an int64 whatever its presence (no float64's 2**53 bound).
_KEY_DTYPES = {schema_pb2.INT: tf.int64, schema_pb2.FLOAT: tf.float32,
               schema_pb2.BYTES: tf.string}


@dataclasses.dataclass(frozen=True)
class _Feature:
    name: str
    dtype: tf.DType  # the predict_raw signature's; a key column's, ``_KEY_DTYPES``'
    required: bool
    integer: bool  # INT in the schema (an optional one is a float64 tensor: NaN is missing)
    domain: tuple | frozenset | None = None  # (min, max), or the allowed texts
    hard: bool = False
    # How the dataset writes it (``value_formats``), and the type the decoder
    # gives the converted text; None for a column pyarrow reads as it is.
    value_format: str | None = None
    arrow_type: pa.DataType | None = None
    # dtype == tf.string, once: DType's == costs half a microsecond, and every
    # value of every instance asks.
    text: bool = dataclasses.field(init=False)
    # An integer in a float tensor (an optional one: NaN is missing) is exact up
    # to 2**53 only; asked of every integer value, so computed once too.
    float_tensor: bool = dataclasses.field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "text", self.dtype == tf.string)
        object.__setattr__(self, "float_tensor", self.dtype.is_floating)


class RequestChecks:
    """The checks of one model's serving features.

    Args:
      specs: the ``predict_raw`` signature's input specs, by feature name
        (``serving_info.RawSignature.specs``).
      required: the features every instance must carry.
      schema: the dataset's schema, for the domains; None (a model exported
        before it carried its schema) checks types and presence only.
      column_formats: the dataset's ``CsvFormat.column_formats``, column ->
        format: the features whose strings are read as the CSV's values.
      key_columns: the dataset's ``CsvFormat.key_columns``: those the model
        does not take (``keys``) a request may carry, to be logged. One the
        schema does not declare as a column of the input (none without a
        schema) has nothing to be checked against, and is not taken.

    Attributes:
      features: the model's features, in the schema's order (by name without
        a schema): what ``tensors`` gives the model.
      keys: the key columns a request may carry beside them, in the key's
        order: checked and logged, never given to the model.
    """

    def __init__(self, specs: dict[str, tf.TensorSpec], required: set[str],
                 schema: schema_pb2.Schema | None,
                 column_formats: dict[str, str] | tuple = (),
                 key_columns: tuple[str, ...] = ()):
        formats = dict(column_formats)
        columns = {c.name: c for c in columns_from_schema(schema)} if schema else {}
        # In the schema's order (the request log's columns), else by name.
        order = {f.name: i for i, f in enumerate(schema.feature)} if schema else {}
        self.features = {}
        for name, spec in sorted(specs.items(), key=lambda item: (
                order.get(item[0], len(order)), item[0])):
            column = columns.get(name)
            integer = spec.dtype.is_integer or bool(column and column.type == schema_pb2.INT)
            value_format = formats.get(name) if column else None
            self.features[name] = _Feature(
                name, spec.dtype, name in required or not _holds_missing(spec.dtype), integer,
                column.domain if column else None, bool(column and column.hard_domain),
                value_format, column.arrow_type if value_format else None)
        self.keys = {}
        for name in key_columns:
            column = columns.get(name)
            if name in self.features or column is None:
                continue
            value_format = formats.get(name)
            self.keys[name] = _Feature(
                name, _KEY_DTYPES[column.type], False, column.type == schema_pb2.INT,
                column.domain, column.hard_domain, value_format,
                column.arrow_type if value_format else None)
        # What an instance may carry, checked in this order (the log's columns').
        self._accepted = {**self.features, **self.keys}
        self._may_carry = f"the model takes {sorted(self.features)}" + (
            f"; a request may also carry the key columns {list(self.keys)}, logged, not "
            f"scored" if self.keys else "")

    @property
    def names(self) -> list[str]:
        """What the request log writes of an instance: the model's features,
        then the key columns it does not take."""
        return list(self._accepted)

    def rows(self, instances: list) -> tuple[list[Row], collections.Counter]:
        """JSON instances -> checked rows, and the count of soft-domain
        violations by feature.

        Raises:
          InvalidInstance: the first instance that cannot be scored.
        """
        return self._rows(instances, read_formats=True)

    def _rows(self, instances: list, read_formats: bool
              ) -> tuple[list[Row], collections.Counter]:
        rows, outside = [], collections.Counter()
        for i, instance in enumerate(instances):
            if not isinstance(instance, dict):
                raise InvalidInstance(i, None, "is not an object of feature values")
            unknown = sorted(set(instance) - set(self._accepted))
            if unknown:
                raise InvalidInstance(i, unknown[0], f"has unknown features "
                                                     f"{_quote.repr(unknown)}; "
                                                     f"{self._may_carry}")
            row = {}
            for feature in self._accepted.values():
                value = instance.get(feature.name)
                if read_formats and feature.value_format and isinstance(value, str) and value:
                    value = _formatted(i, feature, value)
                row[feature.name] = value = self._value(i, feature, value)
                if value is not None and not _inside(value, feature.domain):
                    if feature.hard:
                        raise InvalidInstance(i, feature.name, f"{feature.name!r} = "
                                                               f"{_quote.repr(value)} is "
                                                               f"outside its domain")
                    outside[feature.name] += 1
            rows.append(row)
        return rows, outside

    def example_rows(self, serialized: list[bytes]) -> tuple[list[Row], collections.Counter]:
        """Serialized ``tf.Example``s -> checked rows, as ``rows``; features the
        model does not take are left out, as ``tf.io.parse_example`` does,
        but for the key columns (``keys``), taken for the log."""
        instances = []
        for i, data in enumerate(serialized):
            try:
                example = tf.train.Example.FromString(data)
            except DecodeError:
                raise InvalidInstance(i, None, "is not a serialized tf.Example") from None
            instance = {}
            for name, feature in example.features.feature.items():
                if name not in self._accepted:
                    continue  # parsing takes the model's features and leaves the rest
                kind = feature.WhichOneof("kind")
                values = list(getattr(feature, kind).value) if kind else []
                if len(values) > 1:
                    raise InvalidInstance(i, name, f"{name!r} has {len(values)} values; "
                                                   f"one is expected")
                value = values[0] if values else None
                instance[name] = value.decode("utf-8", "replace") if isinstance(
                    value, bytes) else value
            instances.append(instance)
        return self._rows(instances, read_formats=False)

    def tensors(self, rows: list[Row]) -> dict[str, tf.Tensor]:
        """Checked rows -> the ``predict_raw`` signature's inputs: a missing
        value is NaN (numbers) or ``""`` (text), as the signature takes it."""
        tensors = {}
        for name, feature in self.features.items():
            if feature.text:
                values = np.array([b"" if r[name] is None else r[name].encode("utf-8")
                                   for r in rows], dtype=object)
            else:
                values = np.array([math.nan if r[name] is None else r[name] for r in rows],
                                  dtype=feature.dtype.as_numpy_dtype)
            tensors[name] = tf.constant(values)
        return tensors

    @staticmethod
    def _value(i: int, feature: _Feature, value):
        name = feature.name
        if value == "":
            value = None  # an empty field is a missing value, to the pipeline as here
        if value is None:
            if feature.required:
                raise InvalidInstance(i, name, f"lacks the required feature {name!r}")
            return None
        if feature.text:
            if not isinstance(value, str):
                raise InvalidInstance(i, name, f"{name!r} must be a string, got "
                                               f"{_quote.repr(value)}")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidInstance(i, name, f"{name!r} is not Unicode text (it holds a "
                                               f"lone surrogate)") from None
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            written = (f" or a string of {value_formats.describe(feature.value_format)}"
                       if feature.value_format else "")
            raise InvalidInstance(i, name, f"{name!r} must be a number{written}, got "
                                           f"{_quote.repr(value)}")
        if feature.integer:
            if isinstance(value, float):
                if not value.is_integer():
                    raise InvalidInstance(i, name, f"{name!r} must be a whole number, "
                                                   f"got {_quote.repr(value)}")
                value = int(value)
            if not INT64_MIN <= value <= INT64_MAX:
                raise InvalidInstance(i, name, f"{name!r} = {_quote.repr(value)} is outside "
                                               f"int64")
            if feature.float_tensor and abs(value) > FLOAT64_EXACT_INTEGERS:
                raise InvalidInstance(i, name, f"{name!r} = {_quote.repr(value)} is beyond "
                                               f"2**53, the largest integer an optional "
                                               f"feature carries exactly")
            return value
        try:
            value = float(value)
        except OverflowError:  # an int beyond any float: 10**400
            value = math.inf
        if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
            raise InvalidInstance(i, name, f"{name!r} must be a finite float32, got {value!r}")
        return value


def _formatted(i: int, feature: _Feature, value: str):
    """A formatted feature's string -> its value as the CSV decoder reads the
    same text (converted, then typed as the column)."""
    try:
        text = value_formats.convert(feature.value_format, value)
        typed = pc.cast(pa.array([text], pa.string()), feature.arrow_type)[0].as_py()
    except (ValueError, pa.ArrowNotImplementedError):  # ArrowInvalid, a lone surrogate
        raise InvalidInstance(i, feature.name, f"{feature.name!r}: cannot read "
                                               f"{_quote.repr(value)} as "
                                               f"{value_formats.describe(feature.value_format)}"
                              ) from None
    return typed.decode("utf-8") if isinstance(typed, bytes) else typed


def _holds_missing(dtype: tf.DType) -> bool:
    """Whether a ``predict_raw`` input of ``dtype`` can say a value is missing
    (``tensors``: NaN, or ``""``)."""
    return dtype.is_floating or dtype == tf.string


def _inside(value, domain) -> bool:
    if domain is None:
        return True
    if isinstance(domain, frozenset):
        return value.encode("utf-8") in domain
    low, high = domain
    return (low is None or value >= low) and (high is None or value <= high)
