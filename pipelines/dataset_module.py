"""The contract between the package and a dataset's transforms module, read once.

A dataset's transforms module (``transforms/flights.py``, a dataset directory's
``transforms.py``, a TFX user's module file) must define one name and may
define the others:

- ``preprocessing_fn(inputs) -> dict``: the TFT transformation (required).
- ``LABEL_KEY``: the output that is the label; without it the dataset has no
  label, and only the commands that need one (``train``, ``rank-features``,
  ``--oversample_minority``) refuse it, each in one line. A TFX module file
  names the label's raw column ``_LABEL_KEY`` instead, and its outputs with a
  feature-name helper (``_transformed_name``, or ``transformed_name`` as
  TFX's template names it): the label is then the helper's name for
  ``_LABEL_KEY`` (``tips`` -> ``tips_xf``), or ``_LABEL_KEY`` without one.
- ``SERVING_INPUTS``: the raw features a serving request carries (default: the
  schema's features in its ``SERVING`` environment, less the label's inputs).
- ``LABEL_INPUTS``: raw features only the label needs (default: the schema's
  features not in its ``SERVING`` environment).
- ``WIDE_ONLY``: outputs the wide & deep model feeds to its wide part only.
- ``WINDOW_FEATURES``, ``WINDOW_TIME``, ``WINDOW_EARLY_SECONDS``: trailing-window
  features (``pipelines.decode.windows``).
- ``LOOKUPS``: reference tables joined by key (``pipelines.decode.lookups``).

``DatasetModule.of`` checks every name it finds, and each mistake is a one-line
``UserError`` naming the module and the name; the checks that need the schema
(window and lookup declarations against its tags, serving inputs against its
features) are made by the methods that take it. No other module reads these
names from a transforms module.
"""

import dataclasses
import types
from collections.abc import Callable

from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines.decode.columns import SERVING
from pipelines.decode.lookups import Lookup, checked_lookups
from pipelines.decode.windows import WindowFeature, Windows, checked_windows
from pipelines.errors import UserError

__all__ = ["DatasetModule", "MissingLabelError"]


class MissingLabelError(UserError):
    """A command that needs a label was given a dataset without one."""


@dataclasses.dataclass(frozen=True)
class DatasetModule:
    """What a transforms module defines, checked.

    Attributes:
      name: the module's name, as messages give it.
      preprocessing_fn: the TFT ``preprocessing_fn``.
      label_key: the label output, or None.
      declared_serving_inputs: ``SERVING_INPUTS``, or None (the schema decides).
      declared_label_inputs: ``LABEL_INPUTS``, or None (the schema decides).
      wide_only: ``WIDE_ONLY``.
      window_features: ``WINDOW_FEATURES``, parsed.
      window_time: ``WINDOW_TIME``, the function of a batch's row times.
      window_early_seconds: ``WINDOW_EARLY_SECONDS``.
      lookups_declared: ``LOOKUPS``, parsed.
    """

    name: str
    preprocessing_fn: Callable
    label_key: str | None = None
    declared_serving_inputs: tuple[str, ...] | None = None
    declared_label_inputs: tuple[str, ...] | None = None
    wide_only: tuple[str, ...] = ()
    window_features: tuple[WindowFeature, ...] = ()
    window_time: Callable | None = None
    window_early_seconds: int = 0
    lookups_declared: tuple[Lookup, ...] = ()

    @classmethod
    def of(cls, module: types.ModuleType) -> "DatasetModule":
        """Reads and checks the names ``module`` defines.

        Raises:
          UserError: a name is missing or of the wrong kind.
        """
        name = module.__name__
        preprocessing_fn = getattr(module, "preprocessing_fn", None)
        if not callable(preprocessing_fn):
            raise UserError(f"{name} defines no preprocessing_fn(inputs) -> dict, the TFT "
                            f"transformation every dataset needs")
        label = getattr(module, "LABEL_KEY", None)
        if label is not None and not (isinstance(label, str) and label):
            raise UserError(f"{name}: LABEL_KEY must be the name of an output (a non-empty "
                            f"string) or None, got {label!r}")
        if label is None:
            label = _tfx_label(module)
        try:
            features = tuple(WindowFeature(**fields)
                             for fields in getattr(module, "WINDOW_FEATURES", ()))
            lookups = tuple(Lookup(**fields) for fields in getattr(module, "LOOKUPS", ()))
        except (TypeError, ValueError) as error:
            raise UserError(f"{name}: WINDOW_FEATURES/LOOKUPS: {error}") from None
        time = getattr(module, "WINDOW_TIME", None)
        if features and not callable(time):
            raise UserError(f"{name}: WINDOW_FEATURES needs WINDOW_TIME, a function of a "
                            f"batch that returns each row's time in seconds")
        early = getattr(module, "WINDOW_EARLY_SECONDS", 0)
        if not isinstance(early, int) or early < 0:
            raise UserError(f"{name}: WINDOW_EARLY_SECONDS must be a whole number of seconds "
                            f">= 0, got {early!r}")
        return cls(
            name=name, preprocessing_fn=preprocessing_fn, label_key=label or None,
            declared_serving_inputs=_names(module, "SERVING_INPUTS"),
            declared_label_inputs=_names(module, "LABEL_INPUTS"),
            wide_only=_names(module, "WIDE_ONLY") or (),
            window_features=features, window_time=time, window_early_seconds=early,
            lookups_declared=lookups)

    def require_label(self, needed_by: str) -> str:
        """The label output, or a one-line error saying ``needed_by`` needs one."""
        if self.label_key is None:
            raise MissingLabelError(
                f"{needed_by} needs a label, and {self.name} sets no LABEL_KEY: name the "
                f"label output there (or draft the dataset with init --label) and run again")
        return self.label_key

    def windows(self, schema: schema_pb2.Schema) -> Windows | None:
        """The window features, checked against ``schema``'s tagged features; None
        without any."""
        return checked_windows(self.name, self.window_features, self.window_time,
                               self.window_early_seconds, schema)

    def lookups(self, schema: schema_pb2.Schema) -> tuple[Lookup, ...]:
        """The lookup joins, checked against ``schema``'s tagged features."""
        return checked_lookups(self.name, self.lookups_declared, schema)

    def label_inputs(self, schema: schema_pb2.Schema) -> tuple[str, ...]:
        """The raw features only the label needs."""
        if self.declared_label_inputs is not None:
            return self._known(self.declared_label_inputs, "LABEL_INPUTS", schema)
        return tuple(f.name for f in schema.feature if SERVING in f.not_in_environment)

    def serving_inputs(self, schema: schema_pb2.Schema) -> tuple[str, ...]:
        """The raw features a serving request carries."""
        if self.declared_serving_inputs is not None:
            return self._known(self.declared_serving_inputs, "SERVING_INPUTS", schema)
        label_only = set(self.label_inputs(schema)) | {self.label_key}
        return tuple(f.name for f in schema.feature
                     if SERVING not in f.not_in_environment and f.name not in label_only)

    def _known(self, names: tuple[str, ...], attribute: str, schema: schema_pb2.Schema
               ) -> tuple[str, ...]:
        features = {f.name for f in schema.feature}
        unknown = [n for n in names if n not in features]
        if unknown:
            raise UserError(f"{self.name}: {attribute} names {unknown}, which the schema does "
                            f"not declare")
        return names


# The feature-name helpers of TFX's module files: raw name -> output name.
_TFX_NAME_HELPERS = ("_transformed_name", "transformed_name")


def _tfx_label(module: types.ModuleType) -> str | None:
    """The label output a TFX module file names: its feature-name helper's
    name for ``_LABEL_KEY`` (the raw column), or None without ``_LABEL_KEY``."""
    raw = getattr(module, "_LABEL_KEY", None)
    if raw is None:
        return None
    if not (isinstance(raw, str) and raw):
        raise UserError(f"{module.__name__}: _LABEL_KEY must be the name of the label's raw "
                        f"column (a non-empty string), got {raw!r}")
    helper = next((getattr(module, h) for h in _TFX_NAME_HELPERS
                   if callable(getattr(module, h, None))), None)
    if helper is None:
        return raw
    output = helper(raw)
    if not (isinstance(output, str) and output):
        raise UserError(f"{module.__name__}: {helper.__name__}({raw!r}) must name the label "
                        f"output (a non-empty string), got {output!r}")
    return output


def _names(module: types.ModuleType, attribute: str) -> tuple[str, ...] | None:
    """A tuple of names the module defines, or None when it defines none."""
    value = getattr(module, attribute, None)
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{module.__name__}: {attribute} must be a tuple of column names, "
                        f"got {value!r}")
    return tuple(value)
