"""Costs of every Beam run (Beam 2.59) that buy nothing here.

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

**State and timer specs**, a fixed cost. Whether a DoFn keeps state is asked
of it again each time a runner wraps it, and each answer walks ``dir()`` of
the DoFn and every method's signature: 5,100 walks for 1,100 DoFns in a
1,000-row run, 0.5 s. A DoFn's methods do not change once it exists, so the
answer is kept per DoFn object (weakly: it goes with the DoFn).

**Bundle descriptors**, memory that grows with the square of the pipeline. The
DirectRunner describes each fused stage to its worker with a descriptor that
holds every PCollection, coder and windowing strategy *of the whole pipeline*,
not of the stage, and the worker keeps its own copy of each: 401 stages of
0.5 MB for the 39-feature benchmark dataset (``benchmarks/scale.py``), 1.1 GB of
its 2.1 GB peak on 20,000 rows (1.2 GB with this change). ``_stage_descriptor``
builds the descriptor with the components the stage's transforms refer to:
their PCollections, those PCollections' windowing strategies, and the coders
named by either or by the transforms' payloads (gRPC ports, ParDo state, timers
and restrictions, combine accumulators), with their component coders. A
transform whose payload it does not know keeps every coder in its stage's
descriptor.

**Protocol checks**, a fixed cost, and Python 3.11's rather than Beam's.
TensorFlow asks ``isinstance(x, CustomNestProtocol)`` (a runtime-checkable
``typing.Protocol``) for nearly every structure it packs while tracing and
saving the ``transform_fn``; Python 3.11 finds the protocol's members anew by
walking its classes on every such check (0.45 s of a 1,000-row run). Python
3.12 computes them once, when the protocol is defined; ``install`` keeps them
per protocol class the same way.

**Option views**, a fixed cost. ``Pipeline.apply`` asks for
``options.view_as(TypeOptions)`` once or twice for every transform applied, and
each view builds an ``argparse`` parser and parses the flags again: 0.6 s of a
1,000-row run's ~1,200 transforms. A view holds nothing of its own (its
values live in a dict shared with the options it came from), so one view per
options object and class serves every call while the flags stay the same.

**The pickler**, a fixed cost. Beam pickles every DoFn and function of the
pipeline into its portable proto and unpickles them to run it; cloudpickle does
both faster than dill, Beam 2.59's default (0.6 s of a 1,000-row run).
``new_pipeline`` uses it unless the flags name a pickler.

**bz2 at level 9**, a fixed cost. Beam compresses every pickled function with
bz2 at its highest level (``internal/*_pickler.py``), which a run pays about
4,000 times (0.5 s of a 1,000-row run, and 0.2 s more to decompress) to make
its pipeline proto small: that matters to a job sent to a service, not to a
pipeline run in this process. For a pipeline run here, ``new_pipeline``
switches the picklers to zlib at level 1 (a fortieth of the time); whatever
runs elsewhere (Dataflow) keeps bz2, which is all its workers can read.
Decompression tells the two apart by the format's own header, so either is
read back.

The program installs all of this once (``install``, from ``pipelines.process``),
and only on the Beam release it was written for (``WRITTEN_FOR``): on another,
Beam runs as it is, and one warning line says so.
"""

import bz2
import sys
import types
import typing
import weakref
import zlib

import apache_beam as beam
import pyarrow as pa
from apache_beam.internal import cloudpickle_pickler, dill_pickler
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_fn_api_pb2, beam_runner_api_pb2
from apache_beam.runners.portability.fn_api_runner import execution
from apache_beam.transforms import core, ptransform, userstate, util
from apache_beam.typehints import decorators
from tensorflow_data_validation import types as tfdv_types  # registers its coder first

__all__ = [
    "WRITTEN_FOR", "RecordBatchCoder", "install", "new_pipeline", "runs_in_this_process",
]

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


_original_dofn_specs = userstate.get_dofn_specs
_dofn_specs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _get_dofn_specs(dofn):
    try:
        return _dofn_specs[dofn]
    except KeyError:
        specs = _original_dofn_specs(dofn)
    except TypeError:  # unhashable
        return _original_dofn_specs(dofn)
    try:
        _dofn_specs[dofn] = specs
    except TypeError:  # no weak references to it
        pass
    return specs


_original_protocol_attrs = getattr(typing, "_get_protocol_attrs", None)
_protocol_attrs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _get_protocol_attrs(cls) -> set:
    try:
        return _protocol_attrs[cls]
    except KeyError:
        attrs = _protocol_attrs[cls] = frozenset(_original_protocol_attrs(cls))
        return attrs


def _payload_types() -> dict:
    """Transform URN -> the message its payload is, for the transforms that a
    DirectRunner stage holds."""
    pardo_like = [common_urns.primitives.PAR_DO.urn] + [
        member.urn for member in vars(common_urns.sdf_components).values()
        if hasattr(member, "urn")]
    combine = [member.urn for member in vars(common_urns.combine_components).values()
               if hasattr(member, "urn")]
    grpc = ["beam:runner:source:v1", "beam:runner:sink:v1"]
    return ({urn: beam_runner_api_pb2.ParDoPayload for urn in pardo_like}
            | {urn: beam_runner_api_pb2.CombinePayload for urn in combine}
            | {urn: beam_fn_api_pb2.RemoteGrpcPort for urn in grpc}
            | {common_urns.primitives.ASSIGN_WINDOWS.urn: beam_runner_api_pb2.WindowIntoPayload})


_PAYLOAD_TYPES = _payload_types()


def _coder_ids(message, found: set) -> None:
    """Every ``*coder_id`` field anywhere in ``message``."""
    for field, value in message.ListFields():
        if field.type == field.TYPE_MESSAGE:
            if field.label == field.LABEL_REPEATED:
                items = value.values() if hasattr(value, "values") else value
                for item in items:
                    if hasattr(item, "ListFields"):
                        _coder_ids(item, found)
            else:
                _coder_ids(value, found)
        elif field.name.endswith("coder_id") and value:
            found.add(value)


def _stage_descriptor(self) -> beam_fn_api_pb2.ProcessBundleDescriptor:
    """``BundleContextManager._build_process_bundle_descriptor`` (Beam 2.59)
    with only the components the stage refers to."""
    components = self.execution_context.pipeline_components
    transforms = {transform.unique_name: transform for transform in self.stage.transforms}
    pcollections = {pcoll_id for transform in transforms.values()
                    for pcoll_id in (*transform.inputs.values(), *transform.outputs.values())}
    pcollections = {pcoll_id: components.pcollections[pcoll_id] for pcoll_id in pcollections
                    if pcoll_id in components.pcollections}
    strategies = {pcoll.windowing_strategy_id for pcoll in pcollections.values()}
    strategies = {strategy_id: components.windowing_strategies[strategy_id]
                  for strategy_id in strategies if strategy_id in components.windowing_strategies}
    coders = {pcoll.coder_id for pcoll in pcollections.values()}
    coders |= {strategy.window_coder_id for strategy in strategies.values()}
    every_coder = False
    for transform in transforms.values():
        payload_type = _PAYLOAD_TYPES.get(transform.spec.urn)
        if payload_type is not None:
            _coder_ids(payload_type.FromString(transform.spec.payload), coders)
        elif transform.spec.payload:
            every_coder = True
    if every_coder:
        coders = dict(components.coders.items())
    else:
        pending, coders = list(coders), {}
        while pending:
            coder_id = pending.pop()
            if coder_id in coders or coder_id not in components.coders:
                continue
            coders[coder_id] = components.coders[coder_id]
            pending.extend(coders[coder_id].component_coder_ids)
    return beam_fn_api_pb2.ProcessBundleDescriptor(
        id=self.bundle_uid,
        transforms=transforms,
        pcollections=pcollections,
        coders=coders,
        windowing_strategies=strategies,
        environments=dict(components.environments.items()),
        state_api_service_descriptor=self.state_api_service_descriptor(),
        timer_api_service_descriptor=self.data_api_service_descriptor())


# The runners that run a pipeline in this process, by the names Beam accepts.
_LOCAL_RUNNERS = ("DirectRunner", "direct", "SwitchingDirectRunner", "BundleBasedDirectRunner")
_original_view_as = PipelineOptions.view_as
_views: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _view_as(self, cls):
    views = _views.setdefault(self, {})
    flags = tuple(self._flags or ())
    cached = views.get(cls)
    if cached is not None and cached[0] == flags and cached[1]._all_options is self._all_options:
        return cached[1]
    view = _original_view_as(self, cls)
    views[cls] = (flags, view)
    return view


class _PicklerCompression:
    """Stands in for the ``bz2`` module in Beam's picklers: zlib level 1 while
    ``local`` is set, bz2 as Beam writes it otherwise; reads either."""

    local = False

    @classmethod
    def compress(cls, data: bytes, compresslevel: int = 9) -> bytes:
        if cls.local:
            return zlib.compress(data, 1)
        return bz2.compress(data, compresslevel=compresslevel)

    @staticmethod
    def decompress(data: bytes) -> bytes:
        return bz2.decompress(data) if data[:3] == b"BZh" else zlib.decompress(data)


class RecordBatchCoder(tfdv_types._ArrowRecordBatchCoder):
    """TFDV's coder for RecordBatches, with a size estimate that encodes nothing."""

    def estimate_size(self, value: pa.RecordBatch) -> int:
        return value.nbytes


# The Beam release these patches were written for and checked against: they
# replace private functions, which another release may have changed.
WRITTEN_FOR = "2.59.0"
_installed = [False]


def install() -> bool:
    """Replaces ``get_signature`` wherever Beam imported it by name, caches
    DoFn specs, option views and the members of protocols, builds each stage's
    descriptor with its own components, compresses pickles as ``new_pipeline``
    chooses, and registers ``RecordBatchCoder`` for RecordBatches; once per
    process (the program calls it as it imports the stack, ``pipelines.process``).

    Returns whether they are installed: with a Beam release other than
    ``WRITTEN_FOR``, nothing is patched (plain Beam runs, slower) and one
    warning line says so.
    """
    if _installed[0]:
        return True
    if beam.__version__ != WRITTEN_FOR:
        print(f"warning: Apache Beam {beam.__version__} is not {WRITTEN_FOR}, the release "
              f"pipelines.beam_speedups was written for: running plain Beam",
              file=sys.stderr, flush=True)
        return False
    for module in (decorators, core, ptransform, util):
        module.get_signature = _get_signature
    PipelineOptions.view_as = _view_as
    userstate.get_dofn_specs = _get_dofn_specs
    if _original_protocol_attrs is not None and not hasattr(typing.Protocol,
                                                              "__protocol_attrs__"):
        typing._get_protocol_attrs = _get_protocol_attrs  # Python 3.11 only
    execution.BundleContextManager._build_process_bundle_descriptor = _stage_descriptor
    for module in (cloudpickle_pickler, dill_pickler):
        module.bz2 = _PicklerCompression
    beam.coders.registry.register_coder(pa.RecordBatch, RecordBatchCoder)
    _installed[0] = True
    return True


def new_pipeline(beam_args: list[str]) -> beam.Pipeline:
    """A pipeline with Beam's options for ``beam_args``, pickled with
    cloudpickle unless they name a pickler, and, when ``install`` has run,
    compressed with zlib if it runs in this process (the DirectRunner, but for
    its ``multi_processing`` mode)."""
    if not any(arg.split("=")[0] == "--pickle_library" for arg in beam_args):
        beam_args = [*beam_args, "--pickle_library=cloudpickle"]
    options = PipelineOptions(beam_args)
    _PicklerCompression.local = runs_in_this_process(options)
    return beam.Pipeline(options=options)


def runs_in_this_process(options: PipelineOptions) -> bool:
    """Whether the pipeline's functions are unpickled in this process only:
    the DirectRunner's, but for its ``multi_processing`` mode, which starts
    worker processes (they read with Beam's own bz2)."""
    runner = options.view_as(StandardOptions).runner
    return ((runner is None or runner in _LOCAL_RUNNERS)
            and options.view_as(DirectOptions).direct_running_mode != "multi_processing")
