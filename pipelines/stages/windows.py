"""``WindowEvents`` and ``AddWindowFeatures``: trailing-window aggregates joined
to every row of one input, in batch (``pipelines.decode.windows`` defines them
and holds the one computation).

Batch: each batch's events are cut into chunks keyed by (feature, entity,
bucket) and merged per key (``WindowEvents``, one pass over the input); the
merged events are a side input of ``AddWindowFeatures``, which computes each
row's features from its keys' events and appends them as columns. Both reads
of a run use the events of the first, so they add the same features; on
Dataflow the side input is a dict that workers fetch as they need keys.
"""

import apache_beam as beam

from pipelines.decode.windows import (
    Windows,
    add_window_features,
    event_chunks,
    merge_events,
)

__all__ = ["AddWindowFeatures", "WindowEvents"]


class _MergeEvents(beam.CombineFn):
    def create_accumulator(self):
        return []

    def add_input(self, chunks, chunk):
        chunks.append(chunk)
        return chunks

    def merge_accumulators(self, accumulators):
        return [chunk for chunks in accumulators for chunk in chunks]

    def extract_output(self, chunks):
        return merge_events(chunks)


class WindowEvents(beam.PTransform):
    """Decoded batches of one input -> ``(key, Events)`` per (feature, entity, bucket)."""

    def __init__(self, windows: Windows):
        super().__init__()
        self._windows = windows

    def expand(self, batches):
        return (batches
                | "Chunks" >> beam.FlatMap(event_chunks_of, self._windows)
                | "Merge" >> beam.CombinePerKey(_MergeEvents()))


def event_chunks_of(batch, windows: Windows):
    return event_chunks(windows, batch)


class _AddFeatures(beam.DoFn):
    def __init__(self, windows: Windows):
        self._windows = windows

    def process(self, batch, events):
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
