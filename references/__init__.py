"""What this package is measured and checked against, outside the package:
``baselines`` holds the same preprocessing written as TFT's own examples write
it, and as pandas + scikit-learn would do it. ``benchmarks/compare.py`` times
them and ``tests/test_equivalence.py`` checks that the outputs agree, so both
import from here rather than from each other.
"""

__all__ = ["baselines"]
