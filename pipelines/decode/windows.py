"""Trailing-window aggregates, point-in-time correct: features of a row computed
from the *other* rows of its entity whose values were known in a window that
ends at the row's own time.

A ``WindowFeature`` says what to aggregate (``count``, ``sum``, ``mean``,
``min``, ``max``), over which ``entity`` column, how far back (``seconds``) and
when a row's value became known: at the row's own time, or ``known_after`` a
column of minutes later (a flight's departure delay is known when it actually
departs, ``dep_delay`` minutes after its scheduled time). A row's *event* is its
value at that time; the feature of a row at time ``T`` aggregates the events of
its entity in ``[T - seconds, T)``, never the row's own event, and is
``default`` when there is none. No value from ``T`` on can reach it: the
features cannot leak the future into training.

The computation is one code path, whatever drives it. Events are gathered by
(feature, entity, bucket), a bucket being a span of ``bucket_seconds`` (at least
the window) of target times: an event goes to the (at most two) buckets of the
targets it can reach. ``event_chunks`` cuts a batch's events into such keyed
chunks, ``merge_events`` merges a key's chunks, and ``add_window_features``
computes every row's features from the merged events of its keys. The Beam
stages (``pipelines.stages.windows``: batch, with the merged events as a side
input; streaming, per entity as the watermark passes) and the commands that
read raw rows in memory (``window_features_of_table``) call these same
functions.
"""

import dataclasses
from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines.decode.columns import WINDOW_FEATURE_TAG
from pipelines.errors import UserError

__all__ = [
    "AGGREGATES", "DAY", "NO_TIME", "WEEK", "Events", "WindowFeature", "Windows",
    "add_window_features", "aggregate", "compact_times", "compact_values", "event_chunks",
    "checked_windows", "events_reach", "merge_events", "window_features_of_table",
]

AGGREGATES = ("count", "sum", "mean", "min", "max")
DAY = 86_400
WEEK = 7 * DAY
# Row times are whole seconds; a missing time (NO_TIME) or entity gives no
# event and the default feature.
NO_TIME = np.iinfo(np.int64).min


@dataclasses.dataclass(frozen=True)
class WindowFeature:
    """One trailing-window feature.

    Attributes:
      name: the column it becomes.
      entity: the column whose equal values form a group (``origin``).
      aggregate: one of ``AGGREGATES``; ``count`` counts rows, the others
        aggregate ``value``.
      seconds: the window's length; it ends at the row's time (excluded).
      value: the column aggregated (not for ``count``).
      known_after: a column of minutes after the row's time at which its value
        is known (the event's time); none: known at the row's time.
      default: the feature when the window holds no event.
    """

    name: str
    entity: str
    aggregate: str
    seconds: int
    value: str | None = None
    known_after: str | None = None
    default: float = 0.0

    def __post_init__(self):
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"{self.name}: aggregate must be one of {AGGREGATES}")
        if (self.value is None) != (self.aggregate == "count"):
            raise ValueError(f"{self.name}: count takes no value; the others need one")
        if self.seconds <= 0:
            raise ValueError(f"{self.name}: the window must be positive")

    @property
    def arrow_type(self) -> pa.DataType:
        return pa.int64() if self.aggregate == "count" else pa.float32()

    @property
    def bucket_seconds(self) -> int:
        """Targets are grouped by spans this long: a week, or the window if
        longer, so an event reaches at most two of them. (Shorter spans make
        more, smaller keys: more Beam elements and lookups for the same rows.)"""
        return max(WEEK, self.seconds)


@dataclasses.dataclass(frozen=True)
class Windows:
    """A dataset's window features and how to read a row's time.

    ``time`` maps a RecordBatch of decoded rows to each row's time in whole
    seconds since the epoch, an int64 Arrow array, null where unknown; it must
    be a module-level function, so that workers can import it.
    """

    time: Callable[[pa.RecordBatch], pa.Array]
    features: tuple[WindowFeature, ...]
    # How long before its row's time a row's event can be (a flight departs at
    # most so early): how long streaming waits beyond the allowed lateness.
    early_seconds: int = 0

    def row_times(self, batch: pa.RecordBatch) -> np.ndarray:
        """``time`` as int64 seconds, ``NO_TIME`` where unknown."""
        times = pc.fill_null(pc.cast(self.time(batch), pa.int64()), NO_TIME)
        return np.asarray(times.to_numpy(zero_copy_only=False), dtype=np.int64)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def inputs(self) -> set[str]:
        """The columns the features are computed from (besides the time's)."""
        return {c for f in self.features for c in (f.entity, f.value, f.known_after) if c}

    def output_schema(self, decoded: pa.Schema) -> pa.Schema:
        """The schema of decoded batches once the features are added."""
        for feature in self.features:
            decoded = decoded.append(pa.field(feature.name, pa.large_list(feature.arrow_type)))
        return decoded


@dataclasses.dataclass(frozen=True)
class Events:
    """One key's events, sorted by (time, value): their times in seconds, held
    as offsets from ``origin`` (int32 when they fit), and their values (None
    for a count, whose every value is 1; float32 when that holds them exactly).

    Kept small because a batch job holds every key's events at once (the side
    input the rows' features are computed from): 4 bytes an event for a count,
    8 for the others (12 for values float32 cannot hold), against 24 with int64
    times, float64 values and the running sums kept; the sums (``sums``) are
    computed when a row asks for them.
    """

    origin: int
    offsets: np.ndarray
    values: np.ndarray | None

    @classmethod
    def of(cls, times: np.ndarray, values: np.ndarray | None) -> "Events":
        order = np.lexsort((times,) if values is None else (values, times))
        origin, offsets = compact_times(times[order])
        return cls(origin, offsets, None if values is None else compact_values(values[order]))

    @property
    def times(self) -> np.ndarray:
        return self.offsets.astype(np.int64) + self.origin

    @property
    def sums(self) -> np.ndarray:
        """The running sums of the values (in float64), one longer, from 0."""
        return np.concatenate([[0.0], np.cumsum(self.values, dtype=np.float64)])


def compact_values(values: np.ndarray) -> np.ndarray:
    """float64 values as float32 when that changes none of them (whole numbers
    below 2**24, as minutes of delay are), else as they are."""
    narrow = values.astype(np.float32)
    return narrow if np.array_equal(narrow, values) else values


def compact_times(times: np.ndarray) -> tuple[int, np.ndarray]:
    """int64 times as (the earliest, offsets from it): int32 offsets when the
    times span less than 68 years, as any window's events do."""
    if not len(times):
        return 0, times.astype(np.int32)
    origin = int(times.min())
    offsets = times - origin
    if offsets.max() <= np.iinfo(np.int32).max:
        offsets = offsets.astype(np.int32)
    return origin, offsets


def _scalars(batch, name: str) -> pa.Array:
    column = batch.column(name)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        return pc.list_element(column, 0)
    return column


def _entities(batch, name: str) -> tuple[np.ndarray, list]:
    """An entity column as codes (-1 where missing) into its distinct values
    (text as ``bytes``)."""
    encoded = pc.dictionary_encode(_scalars(batch, name))
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    return codes.astype(np.int64), encoded.dictionary.to_pylist()


def _numbers(batch, name: str) -> np.ndarray:
    return _scalars(batch, name).to_numpy(zero_copy_only=False).astype(np.float64)


def _event_times(feature: WindowFeature, batch, times: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which rows have an event, and the events' times and values."""
    has = times != NO_TIME
    event_times = times.copy()
    if feature.known_after:
        after = _numbers(batch, feature.known_after)
        has &= ~np.isnan(after)
        event_times[has] += np.round(after[has] * 60).astype(np.int64)
    values = np.ones(len(times)) if feature.value is None else _numbers(batch, feature.value)
    has &= ~np.isnan(values)
    return has, event_times, values


def _groups(codes: np.ndarray, values: list, buckets: np.ndarray
            ) -> Iterator[tuple[tuple, np.ndarray]]:
    """The row positions of each distinct ``(entity, bucket)``, given the
    rows' entity codes into ``values`` and their buckets."""
    if not len(codes):
        return
    low = int(buckets.min())
    span = int(buckets.max()) - low + 1
    combined = codes * span + (buckets - low)
    order = np.argsort(combined, kind="stable")
    distinct, starts = np.unique(combined[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    for key, start, end in zip(distinct.tolist(), starts.tolist(), ends.tolist(), strict=True):
        code, bucket = divmod(key, span)
        yield (values[code], bucket + low), order[start:end]


def event_chunks(windows: Windows, batch) -> Iterator[tuple[tuple, tuple]]:
    """A batch's events by key ``(feature name, entity, bucket)``: each event
    goes to the buckets of the target times it reaches, ``(time, time + seconds]``.
    A chunk is ``(origin, offsets, values)`` as ``Events`` holds them (values
    None for a count), unsorted."""
    times = windows.row_times(batch)
    for feature in windows.features:
        has, event_times, values = _event_times(feature, batch, times)
        codes, entities = _entities(batch, feature.entity)
        has &= codes >= 0
        codes, event_times, values = codes[has], event_times[has], values[has]
        size = feature.bucket_seconds
        first = (event_times + 1) // size
        last = (event_times + feature.seconds) // size
        for buckets, reach in ((first, np.ones(len(first), dtype=bool)), (last, last != first)):
            reached_times, reached_values = event_times[reach], values[reach]
            for key, rows in _groups(codes[reach], entities, buckets[reach]):
                yield (feature.name, *key), (
                    *compact_times(reached_times[rows]),
                    None if feature.aggregate == "count"
                    else compact_values(reached_values[rows]))


def events_reach(windows: Windows, batch) -> np.ndarray:
    """The latest target time each row's events can count for (its latest
    event's time plus that feature's window; ``NO_TIME`` without events): what
    a streaming computation must keep a row for."""
    times = windows.row_times(batch)
    reach = np.full(batch.num_rows, NO_TIME, dtype=np.int64)
    for feature in windows.features:
        has, event_times, _ = _event_times(feature, batch, times)
        reach = np.where(has, np.maximum(reach, event_times + feature.seconds), reach)
    return reach


def merge_events(chunks) -> Events:
    """One key's event chunks (``event_chunks``), merged and sorted."""
    chunks = list(chunks)
    times = np.concatenate([offsets.astype(np.int64) + origin for origin, offsets, _ in chunks])
    values = None if chunks[0][2] is None else np.concatenate([v for _, _, v in chunks])
    return Events.of(times, values)


def _reduce(ufunc, values: np.ndarray, lo: np.ndarray, hi: np.ndarray, identity: float
            ) -> np.ndarray:
    """``ufunc`` over ``values[lo:hi]`` for each pair; ``identity`` when empty."""
    if not len(lo):
        return np.empty(0)
    padded = np.append(values, identity)
    bounds = np.empty(2 * len(lo), dtype=np.int64)
    bounds[0::2], bounds[1::2] = lo, hi
    reduced = ufunc.reduceat(padded, bounds)[0::2]
    return np.where(lo < hi, reduced, identity)


def aggregate(feature: WindowFeature, events: Events, targets: np.ndarray,
              own: np.ndarray, own_times: np.ndarray, own_values: np.ndarray) -> np.ndarray:
    """The feature at each target time, from ``events`` in ``[T - seconds, T)``
    less the row's own event where it has one (``own``) in that window."""
    times = events.times
    lo = np.searchsorted(times, targets - feature.seconds, side="left")
    hi = np.searchsorted(times, targets, side="left")
    inside = own & (own_times >= targets - feature.seconds) & (own_times < targets)
    count = hi - lo - inside
    if feature.aggregate == "count":
        return count.astype(np.float64)
    sums = events.sums
    total = sums[hi] - sums[lo] - np.where(inside, own_values, 0.0)
    if feature.aggregate == "sum":
        result = total
    elif feature.aggregate == "mean":
        result = total / np.maximum(count, 1)
    else:
        ufunc, identity = ((np.minimum, np.inf) if feature.aggregate == "min"
                           else (np.maximum, -np.inf))
        # Leave the own event out: the window is split around its position
        # (the first event equal to it in time and value).
        values = np.asarray(events.values, dtype=np.float64)  # no copy when float64
        keyed = np.rec.fromarrays([times, values])
        at = np.searchsorted(keyed, np.rec.fromarrays([own_times, own_values]))
        at = np.where(inside, at, hi)
        result = ufunc(_reduce(ufunc, values, lo, at, identity),
                       _reduce(ufunc, values, np.where(inside, at + 1, hi), hi, identity))
    return np.where(count > 0, result, feature.default)


def add_window_features(windows: Windows, batch: pa.RecordBatch,
                        events_of: Callable[[tuple], Events | None]) -> pa.RecordBatch:
    """``batch`` with a column per feature, computed from the merged events of
    each row's key (``events_of(key)``, None for a key without events)."""
    times = windows.row_times(batch)
    arrays = list(batch.columns)
    names = list(batch.schema.names)
    for feature in windows.features:
        result = np.full(batch.num_rows, feature.default, dtype=np.float64)
        has, own_times, own_values = _event_times(feature, batch, times)
        codes, entities = _entities(batch, feature.entity)
        known = (times != NO_TIME) & (codes >= 0)
        positions = np.flatnonzero(known)
        for key, rows in _groups(codes[known], entities, times[known] // feature.bucket_seconds):
            events = events_of((feature.name, *key))
            if events is not None:
                rows = positions[rows]
                result[rows] = aggregate(feature, events, times[rows], has[rows],
                                         own_times[rows], own_values[rows])
        values = pa.array(result.astype(feature.arrow_type.to_pandas_dtype()))
        offsets = pa.array(np.arange(batch.num_rows + 1, dtype=np.int64))
        arrays.append(pa.LargeListArray.from_arrays(offsets, values))
        names.append(feature.name)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def window_features_of_table(windows: Windows, table: pa.Table) -> pa.Table:
    """Every row of an in-memory table with its window features, computed from
    all of its rows, as the pipeline computes them over one input."""
    batch = table.combine_chunks().to_batches()[0] if table.num_rows else None
    if batch is None:
        return table
    merged: dict[tuple, list] = {}
    for key, chunk in event_chunks(windows, batch):
        merged.setdefault(key, []).append(chunk)
    events = {key: merge_events(chunks) for key, chunks in merged.items()}
    return pa.Table.from_batches([add_window_features(windows, batch, events.get)])


def checked_windows(owner: str, features: tuple[WindowFeature, ...], time, early_seconds: int,
                    schema: schema_pb2.Schema) -> Windows | None:
    """The window features ``owner`` (a transforms module) declares, checked
    against the schema, which must declare each as a required feature tagged
    ``window_feature``, of type INT for a count and FLOAT otherwise; None when
    neither declares any (``pipelines.dataset_module`` reads the declarations).

    Raises:
      UserError: the declarations and the schema disagree.
    """
    tagged = {f.name: f for f in schema.feature if WINDOW_FEATURE_TAG in f.annotation.tag}
    if not features and not tagged:
        return None
    names = [f.name for f in features]
    if set(names) != set(tagged):
        raise UserError(f"{owner} declares the window features {sorted(names)}, "
                        f"the schema tags {sorted(tagged)} '{WINDOW_FEATURE_TAG}'")
    for feature in features:
        expected = schema_pb2.INT if feature.aggregate == "count" else schema_pb2.FLOAT
        if tagged[feature.name].type != expected:
            raise UserError(f"the schema's {feature.name} must be "
                            f"{schema_pb2.FeatureType.Name(expected)} ({feature.aggregate})")
    return Windows(time, features, int(early_seconds))

