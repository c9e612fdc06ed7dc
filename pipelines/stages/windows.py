"""``WindowEvents`` and ``AddWindowFeatures``: trailing-window aggregates joined
to every row of one input, in batch; ``StreamingWindowFeatures``: the same over
an unbounded source (``pipelines.decode.windows`` defines them and holds the
one computation both call).

Batch: each batch's events are cut into chunks keyed by (feature, entity,
bucket) and merged per key (``WindowEvents``, one pass over the input); the
merged events are a side input of ``AddWindowFeatures``, which computes each
row's features from its keys' events and appends them as columns. Both reads
of a run use the events of the first, so they add the same features; on
Dataflow the side input is a dict that workers fetch as they need keys.
"""

import typing
import uuid
from collections.abc import Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.coders import PickleCoder, VarIntCoder
from apache_beam.transforms import userstate
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.utils.timestamp import Timestamp

from pipelines.decode.columns import as_list_array
from pipelines.decode.windows import (
    NO_TIME,
    Windows,
    add_window_features,
    event_chunks,
    events_reach,
    merge_events,
)
from pipelines.stages import counters

__all__ = ["AddWindowFeatures", "StreamingWindowFeatures", "WindowEvents"]


def _merged(keyed_chunks: tuple[tuple, list]):
    key, chunks = keyed_chunks
    return key, merge_events(chunks)


class WindowEvents(beam.PTransform):
    """Decoded batches of one input -> ``(key, Events)`` per (feature, entity, bucket)."""

    def __init__(self, windows: Windows):
        super().__init__()
        self._windows = windows

    def expand(self, batches):
        return (batches
                | "Chunks" >> beam.FlatMap(event_chunks_of, self._windows)
                | "PerKey" >> beam.CombinePerKey(beam.combiners.ToListCombineFn())
                | "Merge" >> beam.Map(_merged))


def event_chunks_of(batch, windows: Windows):
    return event_chunks(windows, batch)


class _AddFeatures(beam.DoFn):
    def __init__(self, windows: Windows):
        self._windows = windows

    def process(self, batch: pa.RecordBatch, events) -> Iterator[pa.RecordBatch]:
        yield add_window_features(self._windows, batch, events.get)


class AddWindowFeatures(beam.PTransform):
    """Decoded batches -> the same with a column per window feature, computed
    from ``events`` (``WindowEvents`` of the same input's rows)."""

    def __init__(self, windows: Windows, events):
        super().__init__()
        self._windows = windows
        self._events = events

    def expand(self, batches):
        return batches | "Add" >> beam.ParDo(
            _AddFeatures(self._windows), events=beam.pvalue.AsDict(self._events))


# Streaming: the same features over an unbounded source.
#
# A row (a one-row RecordBatch, timestamped with its own time t) is keyed by
# the value of each entity column the features group by; per entity value a
# stateful DoFn holds the rows whose events may still count, and emits a row's
# features of that entity once the watermark passes t + allowed lateness +
# early_seconds (how long before its row's time an event can be: a flight
# departs at most that early), computed from the rows it holds by the batch
# functions. The parts of a row meet again by a row id. A row arriving when
# its entity's timers have already passed t + allowed lateness is late: it is
# in no other row's window (their features may be out already) and goes to the
# ``late`` output instead, counted (``rows_window_late``).

_LATE = "late"


def _entity_key(value) -> str:
    if value is None:
        return "-"
    return "b" + value.hex() if isinstance(value, bytes) else "v" + str(value)


def _keyed_by(element: tuple[str, pa.RecordBatch], entity: str):
    """``(row id, one-row batch)`` keyed by the row's value of ``entity``."""
    _, batch = element
    value = batch.column(entity)[0].as_py()
    return _entity_key(value[0] if value else None), element


# State and timers, and the parameters that hand them to a DoFn (module-level,
# as Beam's parameter defaults want them).
_ROWS = userstate.BagStateSpec("rows", PickleCoder())
_FIRED = userstate.ReadModifyWriteStateSpec("fired", PickleCoder())
# The earliest time a held row's features are due: what the timer is set to,
# kept so that a new row sets it without reading every row held back.
_DUE = userstate.ReadModifyWriteStateSpec("due", VarIntCoder())
_TIMER = userstate.TimerSpec("ready", TimeDomain.WATERMARK)
_PARTS = userstate.BagStateSpec("parts", PickleCoder())
_ROWS_PARAM = beam.DoFn.StateParam(_ROWS)
_FIRED_PARAM = beam.DoFn.StateParam(_FIRED)
_DUE_PARAM = beam.DoFn.StateParam(_DUE)
_TIMER_PARAM = beam.DoFn.TimerParam(_TIMER)
_PARTS_PARAM = beam.DoFn.StateParam(_PARTS)


class _EntityWindows(beam.DoFn):
    """One entity column's features, per entity value, as the watermark passes."""

    def __init__(self, windows: Windows, lateness: int, early: int):
        self._windows = windows
        self._wait = lateness + early
        self._lateness = lateness

    def process(self, element, rows=_ROWS_PARAM, fired=_FIRED_PARAM, due=_DUE_PARAM,
                timer=_TIMER_PARAM):
        _, (row_id, batch) = element
        t = int(self._windows.row_times(batch)[0])
        if t == NO_TIME:  # no time, no window: the defaults
            yield row_id, {f.name: f.default for f in self._windows.features}
            return
        fired_at = fired.read()
        if fired_at is not None and t + self._lateness < fired_at:
            yield row_id, _LATE
            return
        rows.add((row_id, batch, False))
        earliest = due.read()
        ready_at = t + self._wait
        if earliest is None or ready_at < earliest:
            due.write(ready_at)
            timer.set(Timestamp(ready_at))

    @userstate.on_timer(_TIMER)
    def ready(self, now=beam.DoFn.TimestampParam, rows=_ROWS_PARAM, fired=_FIRED_PARAM,
              due=_DUE_PARAM, timer=_TIMER_PARAM):
        held = list(rows.read())
        everything = pa.Table.from_batches([b for _, b, _ in held]).combine_chunks()
        everything = everything.to_batches()[0]
        merged: dict = {}
        for key, chunk in event_chunks(self._windows, everything):
            merged.setdefault(key, []).append(chunk)
        events = {key: merge_events(chunks) for key, chunks in merged.items()}
        seconds = now.micros // 1_000_000
        due_at = self._windows.row_times(everything).astype(np.int64) + self._wait
        ready = np.array([not done for _, _, done in held], dtype=bool) & (due_at <= seconds)
        if ready.any():
            added = add_window_features(self._windows, everything.filter(pa.array(ready)),
                                        events.get)
            ids = [row_id for (row_id, _, _), is_ready in zip(held, ready, strict=True)
                   if is_ready]
            for i, row_id in enumerate(ids):
                yield row_id, {n: added.column(n)[i].as_py()[0] for n in self._windows.names}
        # Keep what later rows may still need: rows not out yet, and rows whose
        # events reach past the earliest target still to come.
        horizon = seconds - self._wait
        until = events_reach(self._windows, everything)
        rows.clear()
        pending = []
        for (row_id, batch, done), is_ready, reach, at in zip(held, ready, until, due_at,
                                                               strict=True):
            done = done or is_ready
            if not done or reach > horizon:
                rows.add((row_id, batch, done))
            if not done:
                pending.append(int(at))
        fired.write(seconds)
        if pending:
            due.write(min(pending))
            timer.set(Timestamp(min(pending)))
        else:
            due.clear()


class _JoinParts(beam.DoFn):
    """A row's feature parts, one per entity column, joined back to the row."""

    def __init__(self, windows: Windows, parts: int):
        self._windows = windows
        self._parts = parts

    def process(self, element, parts=_PARTS_PARAM):
        row_id, part = element
        parts.add(part)
        found = list(parts.read())
        if len(found) < self._parts + 1:  # the row itself, and one part per entity
            return
        parts.clear()
        batch = next(p for p in found if isinstance(p, pa.RecordBatch))
        features = [p for p in found if not isinstance(p, pa.RecordBatch)]
        if _LATE in features:
            counters.count(counters.WINDOW_LATE, 1)
            yield beam.pvalue.TaggedOutput(_LATE, batch)
            return
        values = {name: value for part in features for name, value in part.items()}
        yield pa.RecordBatch.from_arrays(
            [*batch.columns, *(as_list_array(pa.array([values[f.name]], f.arrow_type))
                               for f in self._windows.features)],
            schema=self._windows.output_schema(batch.schema))


class StreamingWindowFeatures(beam.PTransform):
    """Unbounded one-row decoded batches, timestamped with each row's time ->
    ``{"rows": the rows with their window features, "late": late rows}``.

    ``allowed_lateness`` and ``early_seconds`` (default: the windows') in
    seconds (see above)."""

    def __init__(self, windows: Windows, allowed_lateness: int,
                 early_seconds: int | None = None):
        super().__init__()
        self._windows = windows
        self._lateness = allowed_lateness
        self._early = windows.early_seconds if early_seconds is None else early_seconds

    def expand(self, rows):
        identified = rows | "Identify" >> beam.Map(lambda batch: (uuid.uuid4().hex, batch))
        parts = [identified]
        entities = sorted({f.entity for f in self._windows.features})
        for entity in entities:
            subset = Windows(self._windows.time, tuple(
                f for f in self._windows.features if f.entity == entity))
            parts.append(
                identified
                | f"By{entity}" >> beam.Map(_keyed_by, entity).with_output_types(
                    tuple[str, tuple[str, pa.RecordBatch]])
                | f"Windows{entity}" >> beam.ParDo(
                    _EntityWindows(subset, self._lateness, self._early)))
        joined = (parts
                  | "Parts" >> beam.Flatten()
                  | "Join" >> beam.ParDo(_JoinParts(self._windows, len(entities)))
                  .with_input_types(tuple[str, typing.Any]).with_outputs(_LATE, main="rows"))
        return {"rows": joined.rows, "late": joined[_LATE]}
