"""The registry of datasets the pipeline knows by name.

A dataset ties together how its CSV is written, its curated schema
(``schemas/<name>.pbtxt``), its ``preprocessing_fn`` and its default inputs.
``--dataset`` names a registered dataset, or a ``Dataset`` object the user
defines in an importable module, as ``package.module:attribute``. Nothing else
is imported, and a value that looks like a path is never read or executed.
"""

import dataclasses
import importlib
import re
import types
from collections.abc import Callable

from tensorflow_metadata.proto.v0 import schema_pb2

import schemas
from pipelines import nycflights
from pipelines.decode.columns import CsvFormat, columns_from_schema
from pipelines.decode.csv_decoder import CsvDecoder
from pipelines.errors import UserError

__all__ = ["Dataset", "UnknownDatasetError", "get_dataset", "dataset_names"]


class UnknownDatasetError(UserError):
    """``--dataset`` names no registered dataset."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Everything the pipeline needs to know about one dataset.

    Attributes:
      name: the registry name, also the schema's file name.
      csv_format: delimiter, missing-value markers and the split key columns.
      transform_module: the module of the dataset's TFT ``preprocessing_fn``; it
        also names the label (``LABEL_KEY``), the raw features a serving request
        carries (``SERVING_INPUTS``) and those only the label needs
        (``LABEL_INPUTS``).
      default_inputs: returns the (train, serving) inputs used when no flag names them.
    """

    name: str
    csv_format: CsvFormat
    transform_module: str
    default_inputs: Callable[[], tuple[str, str | None]] | None = None

    def schema(self) -> schema_pb2.Schema:
        return schemas.load_schema(self.name)

    @property
    def schema_file(self) -> str:
        """The curated schema's path, as messages and fixes name it."""
        return schemas.schema_file(self.name)

    def csv_decoder(self, schema: schema_pb2.Schema | None = None) -> CsvDecoder:
        """The decoder of this dataset's CSV files, for ``schema`` (default: the
        curated one): the one way every stage and command decodes its rows."""
        return CsvDecoder(columns_from_schema(self.schema() if schema is None else schema),
                          self.csv_format)

    @property
    def transforms(self) -> types.ModuleType:
        return importlib.import_module(self.transform_module)

    def load_preprocessing_fn(self) -> Callable:
        return self.transforms.preprocessing_fn


_REGISTRY = {
    "flights": Dataset(
        name="flights",
        # A flight is identified by its date, carrier, flight number and origin.
        csv_format=CsvFormat(
            null_values=("NA",),
            key_columns=("year", "month", "day", "carrier", "flight", "origin")),
        transform_module="transforms.flights",
        default_inputs=nycflights.default_inputs),
}


def dataset_names() -> list[str]:
    return sorted(_REGISTRY)


_MODULE_ATTRIBUTE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def get_dataset(name: str) -> Dataset:
    """The registered dataset called ``name``, or the ``module:attribute`` named."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if not _MODULE_ATTRIBUTE.match(name):
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; registered datasets: {', '.join(dataset_names())}, "
            f"or name your own as package.module:attribute")
    module_name, attribute = name.split(":")
    try:
        dataset = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise UnknownDatasetError(f"cannot load dataset {name!r}: {error}") from None
    if not isinstance(dataset, Dataset):
        raise UnknownDatasetError(f"{name} is a {type(dataset).__name__}, not a "
                                  f"pipelines.datasets.Dataset")
    return dataset
