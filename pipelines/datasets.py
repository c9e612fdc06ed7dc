"""The registry of datasets the pipeline knows by name.

A dataset ties together how its CSV is written, its curated schema
(``schemas/<name>.pbtxt``), its ``preprocessing_fn`` and its default inputs.
Only registered datasets are loaded; ``--dataset`` never imports arbitrary code.
"""

import dataclasses
import importlib
import types
from collections.abc import Callable

from tensorflow_metadata.proto.v0 import schema_pb2

import schemas
from pipelines import nycflights
from pipelines.csv_arrow import CsvFormat
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


def get_dataset(name: str) -> Dataset:
    """The registered dataset called ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; registered datasets: "
            f"{', '.join(dataset_names())}") from None
