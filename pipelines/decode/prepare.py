"""What happens to an input's decoded rows between reading and the split,
defined once: duplicates, lookups, window features, in that order.

``Preparation`` names the steps a dataset's rows go through (a dataset gives
its own: ``Dataset.preparation``). The Beam pipelines apply it with the
``PrepareInputs`` composite (``pipelines.pipeline.prepare``), which reads,
then applies these steps as stages; the commands that work without Beam
(``check-parity``, ``suggest-thresholds``) apply it to an input held in memory
with ``Preparation.prepare_table``, the same steps on the same rows:

1. **duplicates**: with ``drop_duplicates``, one row of every set of identical
   training rows is kept (serving rows are requests: each counts);
2. **lookups**: the columns of the dataset's reference tables, joined by key;
3. **windows**: the trailing-window features, computed over every row of the
   input (after the duplicates are dropped, so a repeat counts once).
"""

import dataclasses

import pyarrow as pa

from pipelines import layout
from pipelines.decode.fingerprints import first_of_each
from pipelines.decode.lookups import Lookup, add_lookups, output_fields
from pipelines.decode.windows import Windows, window_features_of_table

__all__ = ["STEPS", "Preparation"]

# The steps, in the order they apply (reading is the first).
STEPS = ("read", "duplicates", "lookups", "windows")


@dataclasses.dataclass(frozen=True)
class Preparation:
    """The steps an input's rows go through before the split.

    Attributes:
      lookups: the reference tables joined to every row.
      windows: the window features added to every row (None: none).
      drop_duplicates: keep one row of every set of identical training rows.
    """

    lookups: tuple[Lookup, ...] = ()
    windows: Windows | None = None
    drop_duplicates: bool = False

    def drops_duplicates_of(self, input_name: str) -> bool:
        """Whether the rows of ``input_name`` lose their repeats (training only)."""
        return self.drop_duplicates and input_name == layout.TRAIN

    def changes(self, input_name: str) -> bool:
        """Whether any step changes the rows of ``input_name``."""
        return bool(self.lookups or self.windows or self.drops_duplicates_of(input_name))

    def output_schema(self, decoded: pa.Schema) -> pa.Schema:
        """The Arrow schema of prepared batches, given the decoded one: the joined
        columns, then the window features, appended."""
        for field in output_fields(self.lookups):
            decoded = decoded.append(field)
        return self.windows.output_schema(decoded) if self.windows else decoded

    def prepare_table(self, table: pa.Table, input_name: str) -> pa.Table:
        """All of an input's decoded rows, prepared as the pipeline prepares them."""
        if not table.num_rows or not self.changes(input_name):
            return table
        batch = table.combine_chunks().to_batches()[0]
        if self.drops_duplicates_of(input_name):
            batch = batch.take(pa.array(first_of_each(batch)))
        if self.lookups:
            batch = add_lookups(self.lookups, batch)
        table = pa.Table.from_batches([batch])
        return window_features_of_table(self.windows, table) if self.windows else table
