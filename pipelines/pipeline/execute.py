"""Running a built pipeline to the end, and accounting for every row it read."""

import dataclasses
from collections.abc import Callable, Sequence

import apache_beam as beam

from pipelines.records.run_record import Rows
from pipelines.stages import counters, progress

__all__ = ["Executed", "execute"]


@dataclasses.dataclass(frozen=True)
class Executed:
    """A finished pipeline: its result and its rows, accounted for."""

    result: beam.runners.runner.PipelineResult
    rows: Rows

    def counter(self, name: str) -> int:
        """The total of a counter of ``pipelines.stages.counters`` (a constant of it)."""
        return counters.total(self.result, name)

    def rejected_by_kind(self) -> dict[str, int]:
        return counters.rejected_by_kind(self.result)

    def duplicates_found(self) -> dict[str, int]:
        return counters.duplicates_found(self.result)

    def stage_seconds(self, stage_of: Callable[[str], str | None], stages: Sequence[str]
                      ) -> dict[str, float] | None:
        """Execution seconds per stage (``stage_of`` a step's label), in the
        order of ``stages``; None when the runner reports none."""
        return counters.stage_seconds(self.result, stage_of, stages)


def execute(pipeline: beam.Pipeline) -> Executed:
    """Runs ``pipeline`` to the end and checks that every row read is accounted
    for: read == train + eval + serving + rejected + duplicates dropped (the
    oversampled copies are extra records, counted apart).

    Raises:
      RuntimeError: the row accounting does not add up.
    """
    progress.start()
    try:
        result = pipeline.run()
        result.wait_until_finish()
    finally:
        progress.finish()
    rows = Rows(**counters.row_counts(result))
    if rows.read != rows.accounted:
        raise RuntimeError(f"row accounting failed: read {rows.read} != train + eval + "
                           f"serving + rejected + duplicates dropped = {rows.accounted}")
    return Executed(result, rows)
