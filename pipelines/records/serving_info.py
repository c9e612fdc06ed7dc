"""A serving model's info: ``M/serving/assets.extra/serving_info.json``, what
``serve`` and ``predict`` need to know of a model besides its graph.

Written by ``pipelines.model.export_serving`` when it exports a model; read by
``serve`` (the signatures, the features a request must carry, the output key)
and ``predict`` (the output key). This module is the only one that reads or
writes the file.
"""

import dataclasses
import os

import tensorflow as tf

from pipelines import layout
from pipelines.errors import UserError
from pipelines.records.json_files import read_json, write_json

__all__ = ["PREDICT_RAW", "SERVING_DEFAULT", "TRANSFORM_FEATURES", "ServingInfo"]

# The signatures a serving model may have.
SERVING_DEFAULT, PREDICT_RAW, TRANSFORM_FEATURES = (
    "serving_default", "predict_raw", "transform_features")


@dataclasses.dataclass(frozen=True)
class ServingInfo:
    """Attributes:
      dataset: the name of the dataset the model was trained on.
      signatures: the model's signatures (``transform_features`` only for a
        transform-only export).
      required_features: the raw features every request carries.
      optional_features: the raw features a request may leave out (missing).
      output: the key of the model's output (``probability``,
        ``probabilities`` or ``prediction``); None for a transform-only export.
    """

    dataset: str
    signatures: list[str]
    required_features: list[str]
    optional_features: list[str]
    output: str | None

    @property
    def has_model(self) -> bool:
        """Whether the export holds a model, not only the transformation."""
        return self.output is not None and PREDICT_RAW in self.signatures

    def write(self, model_dir: str) -> None:
        path = layout.serving_info_file(model_dir)
        tf.io.gfile.makedirs(os.path.dirname(path))
        write_json(path, dataclasses.asdict(self))

    @classmethod
    def read(cls, model_dir: str) -> "ServingInfo":
        """The info of the serving model at ``model_dir``.

        Raises:
          UserError: ``model_dir`` is not a serving model.
        """
        path = layout.serving_info_file(model_dir)
        if not tf.io.gfile.exists(path):
            raise UserError(f"{model_dir} is not a serving model (no {path}); pass the "
                            f"serving directory `train` wrote (M/serving)")
        document = read_json(path)
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in document.items() if k in known})
        except TypeError as error:
            raise UserError(f"{path} is not a serving model's info: {error}") from None

    def require_model(self, model_dir: str, command: str) -> None:
        """Raises a one-line ``UserError`` for a transform-only export."""
        if not self.has_model:
            raise UserError(f"{model_dir} is a transform-only export; {command} needs a model "
                            f"exported by `python -m pipelines train` (M/serving)")
