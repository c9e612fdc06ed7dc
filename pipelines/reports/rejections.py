"""The rows a run or a span rejected, said in one line: how many, of which kinds,
and one of them of the main kind as the dead-letter files hold it (``ReadRaw``
writes them as JSON lines under ``rejected/``)."""

import dataclasses
import json
import os

import tensorflow as tf

from pipelines import layout

__all__ = ["Rejections", "load"]

# Lines of the dead-letter files read, at most, to find an example of the main
# kind: a file of millions of rejected rows is not read to say what they are.
_SCANNED_LINES = 10_000


@dataclasses.dataclass(frozen=True)
class Rejections:
    """Rejected rows by kind (``pipelines.decode.csv_decoder``'s kinds), and an
    example of the most common kind: its ``source``, ``line`` and ``reason``."""

    by_kind: dict[str, int]
    example: dict | None
    directory: str

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

    @property
    def main_kind(self) -> str | None:
        return max(self.by_kind, key=self.by_kind.get) if self.by_kind else None

    def describe(self, read: int) -> str:
        """``"3 of 2,000 rows rejected (0.15%): unparsable 3, e.g. F line 7: why;
        they are in DIR/"``; ``"no rows rejected"`` when there are none."""
        if not self.total:
            return "no rows rejected"
        kinds = ", ".join(f"{kind} {count:,}" for kind, count in
                          sorted(self.by_kind.items(), key=lambda item: -item[1]))
        share = f" ({self.total / read:.2%})" if read else ""
        example = ""
        if self.example is not None:
            where = os.path.basename(str(self.example.get("source", "")))
            if self.example.get("line") is not None:
                where += f" line {self.example['line']}"
            example = f", e.g. {where}: {self.example.get('reason', '')}"
        return (f"{self.total:,} of {read:,} rows rejected{share}: {kinds}{example}; "
                f"they are in {self.directory}/")


def load(root: str, by_kind: dict[str, int]) -> Rejections:
    """The rejections of the run or span under ``root``, counted by kind as its
    pipeline's counters say (``by_kind``), with an example read from its files."""
    directory = layout.rejected_dir(root)
    found = Rejections(dict(by_kind), None, directory)
    main = found.main_kind
    if main is None:
        return found
    scanned = 0
    for path in sorted(tf.io.gfile.glob(os.path.join(directory, "*.jsonl"))):
        with tf.io.gfile.GFile(path) as lines:
            for line in lines:
                scanned += 1
                row = json.loads(line)
                if row.get("kind") == main:
                    return dataclasses.replace(found, example=row)
                if scanned >= _SCANNED_LINES:
                    return found
    return found
