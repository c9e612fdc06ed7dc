"""``PrepareInputs``: the rows of every input, read and prepared for the split,
the one composite every pipeline starts with.

    read -> duplicates -> lookups -> windows

It applies a ``Preparation`` (``pipelines.decode.prepare``, which also applies
the same steps to rows held in memory) after a read step, as stages labelled
by what they do; ``stage_of`` tells the run summary which stage a step is.
Its variations are named options, not copies:

- ``read``: the source: CSV globs and BigQuery (``ReadRaw``), or Pub/Sub
  messages (``ReadMessages``); a counted read counts every row and writes the
  dead letters, an uncounted one is a second pass over rows already counted.
- ``count_duplicates``: count each input's repeats (``run``'s summary).
- ``reread_for_windows``: an uncounted read of the same inputs to take the
  window events from. Taken from the rows themselves, the events would be a
  side input of their own rows, which the DirectRunner then holds in memory;
  None for BigQuery rows, which are read once and held anyway.
- ``reuse``: the ``Prepared`` of a first pass over the same inputs, whose
  repeated rows and window events a second, uncounted pass uses (``run``
  reads its CSV inputs twice so that rows stream through the transform).
- ``streaming_lateness``: the windows are computed over an unbounded stream
  (``StreamingWindowFeatures``), with this allowed lateness in seconds.
"""

from typing import NamedTuple

import apache_beam as beam

from pipelines import layout
from pipelines.decode.prepare import Preparation
from pipelines.stages.duplicates import Deduplicate, RepeatedRows
from pipelines.stages.lookups import JoinLookups
from pipelines.stages.read import REJECTED
from pipelines.stages.windows import AddWindowFeatures, StreamingWindowFeatures, WindowEvents

__all__ = ["STEP_STAGES", "PrepareInputs", "Prepared", "stage_of"]

# The composite's steps, by label (less the input's name, ``LookupsTrain``),
# and the stage of the run summary each one's time counts in.
STEP_STAGES = {
    "Read": "read",
    "ReadForWindows": "read",
    "RepeatedRows": "duplicates",
    "Deduplicate": "duplicates",
    "DeduplicateForWindows": "duplicates",
    "Lookups": "lookups",
    "WindowEvents": "windows",
    "WindowFeatures": "windows",
}


def stage_of(step: str) -> str | None:
    """The stage of a step of the composite (its label, as ``LookupsTrain``)."""
    for name in layout.INPUTS:
        step = step.removesuffix(name.capitalize())
    return STEP_STAGES.get(step)


class Prepared(NamedTuple):
    """What ``PrepareInputs`` outputs.

    Attributes:
      rows: each input's prepared batches, by input name (``layout.INPUTS``).
      rejected: the read's dead-letter rows (a counted read), else None.
      repeated: the training input's repeated fingerprints, when its
        duplicates are dropped, else None.
      events: each input's window events (batch windows), by input name.
      late: the rows that arrived too late for their windows (streaming).
    """

    rows: dict
    rejected: beam.PCollection | None = None
    repeated: beam.PCollection | None = None
    events: dict | None = None
    late: beam.PCollection | None = None


def _each(rows: dict, step: str, transform) -> dict:
    """``transform(name)`` applied to every input's rows, labelled by step and input."""
    return {name: batches | f"{step}{name.capitalize()}" >> transform(name)
            for name, batches in rows.items()}


class PrepareInputs(beam.PTransform):
    """PBegin -> ``Prepared``: every input read, then its duplicates, lookups
    and window features (see the module's docstring for the options)."""

    def __init__(self, read: beam.PTransform, preparation: Preparation, *,
                 counted: bool = True, count_duplicates: bool = False,
                 reread_for_windows: beam.PTransform | None = None,
                 reuse: Prepared | None = None, streaming_lateness: int | None = None):
        super().__init__()
        if reuse is not None and counted:
            raise ValueError("a pass that reuses a first pass's results is not counted again")
        self._read = read
        self._preparation = preparation
        self._counted = counted
        self._count_duplicates = count_duplicates and counted
        self._reread = reread_for_windows
        self._reuse = reuse
        self._lateness = streaming_lateness

    def expand(self, pbegin):
        preparation = self._preparation
        rows = dict(pbegin | "Read" >> self._read)
        rejected = rows.pop(REJECTED, None)
        repeated = self._repeated(rows)
        if repeated is not None:
            rows[layout.TRAIN] = rows[layout.TRAIN] | "DeduplicateTrain" >> Deduplicate(
                repeated, counted=self._counted)
        if preparation.lookups:
            rows = _each(rows, "Lookups", lambda _: JoinLookups(preparation.lookups))
        windows = preparation.windows
        events, late = {}, None
        if windows and self._lateness is not None:
            added = _each(rows, "WindowFeatures",
                          lambda _: StreamingWindowFeatures(windows, self._lateness))
            rows = {name: outputs["rows"] for name, outputs in added.items()}
            late = (tuple(outputs["late"] for outputs in added.values())
                    | "AllLate" >> beam.Flatten())
        elif windows:
            events = (self._reuse.events if self._reuse is not None
                      else self._window_events(pbegin, rows, repeated))
            rows = _each(rows, "WindowFeatures",
                         lambda name: AddWindowFeatures(windows, events[name]))
        return Prepared(rows, rejected, repeated, events, late)

    def _repeated(self, rows: dict):
        """The training input's repeated fingerprints when its duplicates are
        dropped (a first pass finds them, counting every input's), else None."""
        if self._count_duplicates:
            found = _each(rows, "RepeatedRows", RepeatedRows)
            if self._preparation.drops_duplicates_of(layout.TRAIN) and layout.TRAIN in found:
                return found[layout.TRAIN]
            return None
        if not (self._preparation.drops_duplicates_of(layout.TRAIN) and layout.TRAIN in rows):
            return None
        if self._reuse is not None:
            return self._reuse.repeated
        return rows[layout.TRAIN] | "RepeatedRowsTrain" >> RepeatedRows(layout.TRAIN)

    def _window_events(self, pbegin, rows: dict, repeated) -> dict:
        """Each input's window events: from an uncounted read of the same inputs
        (less the same duplicates) when there is one, else from the rows."""
        source = rows
        if self._reread is not None:
            source = dict(pbegin | "ReadForWindows" >> self._reread)
            source.pop(REJECTED, None)
            if repeated is not None:
                source[layout.TRAIN] = (source[layout.TRAIN] | "DeduplicateForWindows"
                                        >> Deduplicate(repeated, counted=False))
        return _each(source, "WindowEvents",
                     lambda _: WindowEvents(self._preparation.windows))
