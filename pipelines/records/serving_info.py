"""A serving model's info: ``M/serving/assets.extra/serving_info.json``, what
``serve``, ``predict`` and ``check-parity`` need to know of a model besides
its graph.

Written by ``pipelines.model.export_serving`` when it exports a model; read by
``serve`` (the signatures, the features a request must carry, the output key),
``predict`` (the output key) and all three for the names of the raw-feature
signatures' inputs. This module is the only one that reads or writes the file.

A SavedModel signature's inputs are Python keyword arguments: TensorFlow
renames a feature called ``1stFlrSF`` or ``home.dest`` and refuses ``class``.
So the raw-feature signatures (``predict_raw``, ``transform_raw``) take each
feature under an argument name the export chose, recorded here
(``signature_inputs``), and ``RawSignature`` calls them by the features' own
names: every entry point passes the CSV's names through it.
"""

import dataclasses
import os

import tensorflow as tf

from pipelines import layout
from pipelines.errors import UserError
from pipelines.records.json_files import read_json, write_json

__all__ = [
    "PREDICT_RAW", "SERVING_DEFAULT", "TRANSFORM_FEATURES", "TRANSFORM_RAW", "RawSignature",
    "ServingInfo",
]

# The signatures a serving model may have.
SERVING_DEFAULT, PREDICT_RAW, TRANSFORM_FEATURES, TRANSFORM_RAW = (
    "serving_default", "predict_raw", "transform_features", "transform_raw")


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
      signature_inputs: raw feature -> the name of its input in the
        raw-feature signatures; None (exports before it was recorded) when
        every input is named as its feature.
    """

    dataset: str
    signatures: list[str]
    required_features: list[str]
    optional_features: list[str]
    output: str | None
    signature_inputs: dict[str, str] | None = None

    @property
    def features(self) -> list[str]:
        """The raw features a request may carry, required ones first."""
        return [*self.required_features, *self.optional_features]

    def signature_input(self, feature: str) -> str:
        """The name under which the raw-feature signatures take ``feature``."""
        return (self.signature_inputs or {}).get(feature, feature)

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


class RawSignature:
    """A raw-feature signature (``predict_raw``, ``transform_raw``) of a loaded
    serving model, called with the features' own names.

    Attributes:
      name: the signature's name.
      inputs: raw feature -> the name of its input in the signature.
      specs: raw feature -> the spec of its input tensor.

    Raises:
      UserError: the signature does not take the features the info names (an
        export whose inputs TensorFlow renamed, before the names were recorded).
    """

    def __init__(self, loaded, name: str, info: ServingInfo, model_dir: str):
        # The loaded object owns the signature's variables: kept alive with it.
        self._loaded = loaded
        self._function = loaded.signatures[name]
        self.name = name
        self.inputs = {feature: info.signature_input(feature) for feature in info.features}
        by_input = self._function.structured_input_signature[1]
        if set(self.inputs.values()) != set(by_input):
            lacking = sorted(f for f, i in self.inputs.items() if i not in by_input)
            raise UserError(f"the {name} signature of {model_dir} does not take the features "
                            f"its serving_info.json names ({', '.join(lacking) or 'others'}); "
                            f"export it again (`python -m pipelines train` or export-serving)")
        self.specs = {feature: by_input[i] for feature, i in self.inputs.items()}

    def __call__(self, tensors: dict) -> dict:
        """``tensors``: one per raw feature, by the feature's name -> the outputs."""
        return self._function(**{self.inputs[feature]: value
                                 for feature, value in tensors.items()})
