"""Two costs of every Beam run (Beam 2.59) that buy nothing here.

**Signature inspection**, a fixed cost. Beam inspects the signature of every
DoFn method and user function again and again: when the pipeline is built,
when it is turned into its portable proto, and for every bundle the runner
processes. A profile of a 1,000-row run showed
144,000 calls to ``get_signature`` (``inspect.signature``) for about a
thousand transforms; memoizing it took about 1.5 s off that run. A signature
never changes for a given function, so the cache is keyed by the function (the
underlying one, for a bound method: binding only drops ``self``, the same way
for every instance).

**Sizing RecordBatches**, a cost per row. Beam estimates the size of a sample
of every PCollection's elements for its metrics, and TFDV's coder for Arrow
RecordBatches (which Beam uses for every PCollection typed ``RecordBatch``)
estimates a size by encoding the whole batch in Arrow's IPC format. Batches
hold tens of thousands of rows and few of them make a PCollection, so most are
sampled: a profile of the flights job at 1.3 million rows found 5% of its
time there. ``RecordBatchCoder`` encodes as TFDV's does and takes the size of
the batch's buffers instead.
"""

import types

import apache_beam as beam
import pyarrow as pa
from apache_beam.transforms import core, ptransform, util
from apache_beam.typehints import decorators
from tensorflow_data_validation import types as tfdv_types  # registers its coder first

__all__ = ["RecordBatchCoder", "install"]

_original = decorators.get_signature
_cache: dict = {}


def _get_signature(func):
    key = (func.__func__, True) if isinstance(func, types.MethodType) else (func, False)
    try:
        return _cache[key]
    except KeyError:
        signature = _cache[key] = _original(func)
        return signature
    except TypeError:  # an unhashable callable
        return _original(func)


class RecordBatchCoder(tfdv_types._ArrowRecordBatchCoder):
    """TFDV's coder for RecordBatches, with a size estimate that encodes nothing."""

    def estimate_size(self, value: pa.RecordBatch) -> int:
        return value.nbytes


def install() -> None:
    """Replaces ``get_signature`` wherever Beam imported it by name, and
    registers ``RecordBatchCoder`` for RecordBatches."""
    for module in (decorators, core, ptransform, util):
        module.get_signature = _get_signature
    beam.coders.registry.register_coder(pa.RecordBatch, RecordBatchCoder)
