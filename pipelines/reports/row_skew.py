"""A row-by-row comparison's result as plain data (``RowSkewResult``): what
``pipelines.stages.row_skew`` loads from TFDV's outputs, ``row_skew.json`` and
the validation summary hold, the report shows and the commands print.
"""

import dataclasses

__all__ = ["CONFUSIONS_KEPT", "FeatureSkew", "RowSkewResult"]

# The confusion pairs kept per feature in the result (every one is in TFDV's output).
CONFUSIONS_KEPT = 20


@dataclasses.dataclass(frozen=True)
class FeatureSkew:
    """One feature's row-by-row comparison over the joined pairs of rows.

    ``compared`` is every pair; ``matched`` pairs hold equal values (both
    missing included); ``mismatched`` pairs hold different values;
    ``base_only``/``test_only`` pairs have a value on one side only. Its share
    is the pairs that differ in any of these ways, over the pairs compared.
    """

    feature: str
    compared: int
    matched: int
    mismatched: int
    base_only: int
    test_only: int

    @property
    def differing(self) -> int:
        return self.mismatched + self.base_only + self.test_only

    @property
    def share(self) -> float:
        return self.differing / self.compared if self.compared else 0.0

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "mismatch_share": self.share}


@dataclasses.dataclass(frozen=True)
class RowSkewResult:
    """What ``RowSkew`` found, as plain data.

    Attributes:
      keys: the key columns.
      features: per compared feature, the largest mismatch share first.
      match: how the rows joined (TFDV's ``MatchStats``, named plainly).
      examples: sampled pairs that differ: key values, then per differing
        feature the base and test values.
      confusion: per text feature, the (base, test, count) pairs of differing
        values, most frequent first (the first ``CONFUSIONS_KEPT``).
    """

    keys: list[str]
    features: list[FeatureSkew]
    match: dict
    examples: list[dict]
    confusion: dict

    def over(self, share: float) -> list[FeatureSkew]:
        """The features whose mismatch share exceeds ``share``."""
        return [f for f in self.features if f.share > share]

    def to_json(self) -> dict:
        return {"keys": self.keys, "match": self.match,
                "features": [f.to_json() for f in self.features],
                "examples": self.examples, "confusion": self.confusion}

    @classmethod
    def from_json(cls, data: dict) -> "RowSkewResult":
        return cls(data["keys"], [FeatureSkew(**{k: v for k, v in f.items()
                                                 if k != "mismatch_share"})
                                  for f in data["features"]],
                   data["match"], data["examples"], data["confusion"])

    def describe(self, base: str = "base", test: str = "test") -> list[str]:
        """The result in plain lines, for a terminal."""
        m = self.match
        lines = [f"joined by {', '.join(self.keys)}: {m['pairs']:,} pairs of rows compared; "
                 f"{m['keys_only_in_base']:,} keys only in {base}, "
                 f"{m['keys_only_in_test']:,} only in {test}, "
                 f"{m['duplicate_keys']:,} duplicated (not compared), rows without a key: "
                 f"{m['base_rows_without_key']:,} in {base}, "
                 f"{m['test_rows_without_key']:,} in {test}"]
        width = max([len(f.feature) for f in self.features] + [7])
        only = [f"only {base}", f"only {test}"]
        sides = [max(len(o), 10) for o in only]
        lines.append(f"  {'feature':<{width}}  {'compared':>9}  {'matched':>9}  "
                     f"{'mismatched':>10}  {only[0]:>{sides[0]}}  {only[1]:>{sides[1]}}  share")
        for f in self.features:
            lines.append(f"  {f.feature:<{width}}  {f.compared:>9,}  {f.matched:>9,}  "
                         f"{f.mismatched:>10,}  {f.base_only:>{sides[0]},}  "
                         f"{f.test_only:>{sides[1]},}  {f.share:.2%}")
        for feature, pairs in self.confusion.items():
            shown = ", ".join(f"{p['base']!r} -> {p['test']!r} x{p['count']:,}"
                              for p in pairs[:5])
            lines.append(f"  {feature}: confused {shown}")
        for example in self.examples[:5]:
            key = ", ".join(f"{k}={v!r}" for k, v in example["key"].items())
            differs = "; ".join(f"{name}: {values['base']!r} in {base}, {values['test']!r} "
                                f"in {test}" for name, values in example["differs"].items())
            lines.append(f"  e.g. {key}: {differs}")
        return lines
