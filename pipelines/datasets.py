"""The datasets the pipeline knows, and dataset directories.

A dataset ties together how its CSV is written, its curated schema, its
``preprocessing_fn`` and its default inputs. ``--dataset`` takes:

- a registered name (``flights``: ``schemas/flights.pbtxt``, ``transforms/flights.py``);
- ``package.module:attribute``, a ``Dataset`` object in a module the user wrote;
- a dataset directory: ``dataset.json`` (its name and CSV format),
  ``schema.pbtxt`` and ``transforms.py`` (the ``preprocessing_fn`` module). Its
  ``transforms.py`` is code and runs, as a module named with ``module:attribute``
  would.

Nothing else is read or imported. Every run keeps a copy of its dataset as a
directory (``OUTPUT_DIR/dataset/``, ``Dataset.save``), and the commands that
read a run load that copy, never a lookup by name.
"""

import dataclasses
import hashlib
import importlib
import json
import os
import re
import sys
import types
from collections.abc import Callable, Sequence

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

import schemas
from pipelines import module_file, nycflights
from pipelines.dataset_module import DatasetModule
from pipelines.decode.columns import CsvFormat, columns_from_schema
from pipelines.decode.csv_decoder import CsvDecoder
from pipelines.decode.lookups import Lookup
from pipelines.decode.prepare import Preparation
from pipelines.decode.windows import Windows
from pipelines.errors import UserError
from pipelines.records import atomic_files

__all__ = [
    "DATASET_FILE", "Dataset", "UnknownDatasetError", "dataset_flag", "dataset_names",
    "get_dataset", "load_directory", "select_features", "write_directory",
]

# The files of a dataset directory.
DATASET_FILE, SCHEMA_FILE, TRANSFORMS_FILE = "dataset.json", "schema.pbtxt", "transforms.py"


class UnknownDatasetError(UserError):
    """``--dataset`` names no registered dataset."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Everything the pipeline needs to know about one dataset.

    Attributes:
      name: the dataset's name (a registered one's is also its schema's file name).
      csv_format: how its files are written, and the split key columns.
      transform_module: the importable module of the dataset's TFT
        ``preprocessing_fn``, and of the optional names that describe it (the
        label, the serving inputs, window features, lookups: see
        ``pipelines.dataset_module``). Empty for a dataset directory, whose
        module is its ``transforms.py``.
      default_inputs: returns the (train, serving) inputs used when no flag names them.
      directory: the dataset directory it was loaded from, if any.
      keep, drop: feature selection: the outputs of the ``preprocessing_fn``
        kept (the label always is), or those dropped; in ``dataset.json``,
        ``"features": {"keep": [...]}`` or ``{"drop": [...]}``.
        ``rank-features`` reports what to consider dropping; nothing is
        dropped unless named here.
    """

    name: str
    csv_format: CsvFormat
    transform_module: str = ""
    default_inputs: Callable[[], tuple[str, str | None]] | None = None
    directory: str | None = None
    keep: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()

    def schema(self) -> schema_pb2.Schema:
        if self.directory is None:
            return schemas.load_schema(self.name)
        return schemas.parse_schema(_read(os.path.join(self.directory, SCHEMA_FILE)))

    @property
    def schema_file(self) -> str:
        """The curated schema's path, as messages and fixes name it."""
        if self.directory is None:
            return schemas.schema_file(self.name)
        return os.path.join(self.directory, SCHEMA_FILE)

    def csv_decoder(self, schema: schema_pb2.Schema | None = None) -> CsvDecoder:
        """The decoder of this dataset's CSV files, for ``schema`` (default: the
        curated one): the one way every stage and command decodes its rows."""
        return CsvDecoder(columns_from_schema(self.schema() if schema is None else schema),
                          self.csv_format)

    @property
    def transforms(self) -> types.ModuleType:
        """The transforms module itself; its names are read through ``module``."""
        if self.directory is None:
            return importlib.import_module(self.transform_module)
        return _module_from_file(os.path.join(self.directory, TRANSFORMS_FILE))

    @property
    def module(self) -> DatasetModule:
        """What the transforms module defines, checked once (``pipelines.dataset_module``)."""
        transforms = self.transforms
        if transforms.__name__ not in _contracts:
            _contracts[transforms.__name__] = DatasetModule.of(transforms)
        return _contracts[transforms.__name__]

    def windows(self, schema: schema_pb2.Schema | None = None) -> Windows | None:
        """The window features its transforms module declares (None: none),
        checked against ``schema`` (default: the curated one)."""
        return self.module.windows(self.schema() if schema is None else schema)

    def lookups(self, schema: schema_pb2.Schema | None = None) -> tuple[Lookup, ...]:
        """The lookup joins its transforms module declares, checked against ``schema``."""
        return self.module.lookups(self.schema() if schema is None else schema)

    def preparation(self, schema: schema_pb2.Schema | None = None,
                    drop_duplicates: bool = False) -> Preparation:
        """What happens to this dataset's rows before the split
        (``pipelines.decode.prepare``): its lookups and window features, and the
        training input's duplicates dropped when asked."""
        schema = self.schema() if schema is None else schema
        return Preparation(self.lookups(schema), self.windows(schema), drop_duplicates)

    def load_preprocessing_fn(self) -> Callable:
        module = self.module
        if not (self.keep or self.drop):
            return module.preprocessing_fn
        return select_features(module.preprocessing_fn, module.label_key, self.keep,
                               self.drop)

    def save(self, directory: str, schema: schema_pb2.Schema | None = None) -> None:
        """Writes this dataset as a dataset directory (local or remote), with
        ``schema`` (default: its own) and the source of its transforms module,
        which must import nothing but installed packages."""
        write_directory(directory, self.name, self.csv_format,
                        self.schema() if schema is None else schema,
                        _read(self.transforms.__file__),
                        {k: v for k, v in (("keep", self.keep), ("drop", self.drop)) if v})


def select_features(preprocessing_fn: Callable, label: str | None,
                    keep: Sequence[str] = (), drop: Sequence[str] = ()) -> Callable:
    """``preprocessing_fn`` returning only the outputs kept (or not dropped), and
    the label; naming an output it does not have is an error, not a no-op."""
    if keep and drop:
        raise UserError("feature selection takes \"keep\" or \"drop\", not both")

    def selected(inputs: dict) -> dict:
        outputs = preprocessing_fn(inputs)
        unknown = sorted(set(keep or drop) - set(outputs))
        if unknown:
            raise UserError(f"feature selection names {unknown}, which the preprocessing_fn "
                            f"does not output; its outputs: {', '.join(sorted(outputs))}")
        return {name: value for name, value in outputs.items()
                if name == label or (name in keep if keep else name not in drop)}

    return selected


def write_directory(directory: str, name: str, csv_format: CsvFormat,
                    schema: schema_pb2.Schema | str, transforms_source: str,
                    features: dict | None = None) -> None:
    """Writes a dataset directory: ``dataset.json`` (the name, the CSV format and
    any feature selection), ``schema.pbtxt`` (a schema, or its text) and
    ``transforms.py``."""
    document = {"name": name, "csv_format": csv_format.to_document()}
    if features:
        document["features"] = {k: list(v) for k, v in features.items()}
    # Each file whole (records.atomic_files), dataset.json last: a directory that
    # has it, which is what marks a dataset directory, has the other two.
    atomic_files.write_text(
        os.path.join(directory, SCHEMA_FILE),
        schema if isinstance(schema, str) else text_format.MessageToString(schema))
    atomic_files.write_text(os.path.join(directory, TRANSFORMS_FILE), transforms_source)
    atomic_files.write_text(os.path.join(directory, DATASET_FILE),
                            json.dumps(document, indent=2) + "\n")


def load_directory(directory: str) -> Dataset:
    """The dataset in ``directory`` (``dataset.json``, ``schema.pbtxt``, ``transforms.py``)."""
    try:
        document = json.loads(_read(os.path.join(directory, DATASET_FILE)))
        unknown = sorted(set(document) - {"name", "csv_format", "features"})
        if unknown:  # a misspelt key would otherwise be ignored without a word
            raise ValueError(f"unknown keys {unknown}; it takes \"name\", \"csv_format\" "
                             f"and \"features\" (docs/datasets.md)")
        csv_format = CsvFormat.from_document(document["csv_format"])
        features = {k: tuple(v) for k, v in document.get("features", {}).items()}
        if set(features) - {"keep", "drop"}:
            raise ValueError(f"\"features\" takes \"keep\" or \"drop\", got {sorted(features)}")
        return Dataset(name=document["name"], csv_format=csv_format, directory=directory,
                       **features)
    except (KeyError, TypeError, ValueError) as error:
        raise UnknownDatasetError(f"{os.path.join(directory, DATASET_FILE)} is not a dataset "
                                  f"description: {error}") from None


_modules: dict[str, types.ModuleType] = {}
# Each transforms module's contract, read once, by module name.
_contracts: dict[str, DatasetModule] = {}


def _module_from_file(path: str) -> types.ModuleType:
    """Runs a dataset directory's ``transforms.py`` once as a module of its own
    (a TFX module file too, ``pipelines.module_file``)."""
    if path not in _modules:
        name = f"tft_preprocessing_transforms_{hashlib.sha1(path.encode()).hexdigest()[:12]}"
        _modules[path] = module_file.load_module_file(path, name, _read(path))
    return _modules[path]


def _read(path: str) -> str:
    if "://" not in path:
        with open(path, encoding="utf-8") as f:
            return f.read()
    import tensorflow as tf  # only for a remote copy: reading a local one stays light

    with tf.io.gfile.GFile(path) as f:
        return f.read()


_REGISTRY = {
    "flights": Dataset(
        name="flights",
        # A flight is identified by its date, carrier, flight number and origin.
        csv_format=CsvFormat(
            null_values=("NA",),
            key_columns=("year", "month", "day", "carrier", "flight", "origin")),
        transform_module="transforms.flights",
        default_inputs=nycflights.default_inputs),
    # UCI census income as written (adult.data, adult.test): no header, ", ", "?";
    # no file ships with the package, so --train_input names it. No key columns:
    # a row's whole content keys its split.
    "census": Dataset(
        name="census",
        csv_format=CsvFormat(
            null_values=("?", ""), skip_initial_space=True, has_header=False,
            column_names=(
                "age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
                "occupation", "relationship", "race", "gender", "capital_gain",
                "capital_loss", "hours_per_week", "native_country", "income_bracket")),
        transform_module="transforms.census"),
}


def dataset_names() -> list[str]:
    return sorted(_REGISTRY)


def dataset_flag(directory: str) -> str:
    """``directory`` as ``--dataset`` takes it for that directory: a path that
    is also a registered dataset's name gets ``./`` (``get_dataset`` looks the
    registry up first)."""
    return os.path.join(".", directory) if directory in _REGISTRY else directory


_MODULE_ATTRIBUTE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def get_dataset(name: str) -> Dataset:
    """The registered dataset called ``name``, the ``module:attribute`` named, or
    the dataset directory at ``name``."""
    if name in _REGISTRY:
        if os.path.isfile(os.path.join(name, DATASET_FILE)):
            print(f"note: --dataset {name} is the registered dataset; for the dataset "
                  f"directory {name}/, pass {dataset_flag(name)}", file=sys.stderr)
        return _REGISTRY[name]
    if os.path.isfile(os.path.join(name, DATASET_FILE)):
        return load_directory(name)
    if not _MODULE_ATTRIBUTE.match(name):
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; registered datasets: {', '.join(dataset_names())}, "
            f"or name your own as package.module:attribute or a directory holding "
            f"{DATASET_FILE}")
    module_name, attribute = name.split(":")
    try:
        dataset = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise UnknownDatasetError(f"cannot load dataset {name!r}: {error}") from None
    if not isinstance(dataset, Dataset):
        raise UnknownDatasetError(f"{name} is a {type(dataset).__name__}, not a "
                                  f"pipelines.datasets.Dataset")
    return dataset
