"""TFT's means and variances accumulated in float64, whatever the float type of
what they analyze (TFT 1.16).

``tft.scale_to_z_score``, ``tft.mean`` and ``tft.var`` of a float32 tensor
compute each batch's count, mean and variance in float32 inside the graph and
merge them in float32 (``analyzers._mean_and_var``): the constants then depend
on how the rows were batched, and lose up to several float32 ulps against the
exact values (15 ulps for taxi's ``trip_miles`` variance, ``benchmarks/RESULTS.md``).
This package's own recipes cast to float64 before the analyzer
(``transforms.recipes``); a user's preprocessing_fn, a TFX module file among
them, calls TFT directly. ``install`` makes ``analyzers._mean_and_var`` ask TFT
itself for a float64 analysis of a float32 or float16 input, and round the mean
and variance to the type TFT would have returned, once: the same dtypes and
graph outputs as before, each constant within one ulp of the exact value, for
every batching. Integers too: TFT casts them to float32 before the analysis,
which cannot hold an 11-digit census tract; in float64 they are exact (below
2**53), and the outputs are still float32, TFT's documented type for them.
Float64 inputs are analyzed as TFT analyzes them.

``install`` replaces the function in ``tensorflow_transform.analyzers`` (where
``tft.mean``, ``tft.var`` and ``mappers.scale_to_z_score`` look it up when the
preprocessing_fn is traced), once per process, next to ``beam_speedups``
(``pipelines.process``). ``original`` undoes it for a block (the tests' "TFT's
own way").
"""

import contextlib
import sys

import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform import analyzers

__all__ = ["WRITTEN_FOR", "install", "original"]

# The TFT release this was written for: it replaces a private function.
WRITTEN_FOR = "1.16.0"
_ORIGINAL = analyzers._mean_and_var
_NARROW_FLOATS = (tf.float16, tf.float32)
_installed = [False]


def _mean_and_var_in_float64(x, reduce_instance_dims: bool = True, output_dtype=None):
    """``analyzers._mean_and_var``, analyzed in float64 when TFT would analyze
    in float32 or float16, rounded to that type once."""
    wanted = output_dtype or analyzers._FLOAT_OUTPUT_DTYPE_MAP.get(x.dtype)
    if wanted not in _NARROW_FLOATS:
        return _ORIGINAL(x, reduce_instance_dims, output_dtype)
    mean, variance = _ORIGINAL(x, reduce_instance_dims, tf.float64)
    return tf.cast(mean, wanted), tf.cast(variance, wanted)


def install() -> bool:
    """Replaces ``analyzers._mean_and_var`` with ``_mean_and_var_in_float64``,
    once per process. With a TFT release other than ``WRITTEN_FOR`` nothing is
    replaced and one warning line says so; returns whether it is installed."""
    if _installed[0]:
        return True
    if tft.__version__ != WRITTEN_FOR:
        print(f"warning: TFT {tft.__version__} is not {WRITTEN_FOR}, the release "
              f"pipelines.tft_precision was written for: means and variances of float32 "
              f"inputs are accumulated in float32", file=sys.stderr, flush=True)
        return False
    analyzers._mean_and_var = _mean_and_var_in_float64
    _installed[0] = True
    return True


@contextlib.contextmanager
def original():
    """TFT's own ``_mean_and_var`` within the block (for a comparison with TFT
    as it ships), restored after."""
    replaced = analyzers._mean_and_var
    analyzers._mean_and_var = _ORIGINAL
    try:
        yield
    finally:
        analyzers._mean_and_var = replaced
