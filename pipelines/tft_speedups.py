"""A cost of every TFT vocabulary (TFT 1.16) that buys nothing here.

**Counting tokens one by one**, a cost per token. A vocabulary ordered by
frequency (``tft.vocabulary`` without weights or labels, what
``compute_and_apply_vocabulary`` and ``transforms.recipes.vocabulary`` use)
hands Beam every token of every batch as its own element, and Beam counts
them with ``Count.PerElement``: a pair built, a key looked up and an
accumulator updated in Python for each of the batch's values (TFT's own
``TODO(b/112916494): Always do batch wise reduction once possible``). The
Criteo-shaped benchmark's 26 vocabularies (``benchmarks/scale.py``) meet 20.8
million tokens in a million rows. ``_accumulate`` counts each batch's tokens
first (``collections.Counter``, in C) and hands Beam one ``(token, count)`` pair
per distinct token of the batch, which ``CombinePerKey(sum)`` adds up: the same
integer count per token as ``Count.PerElement`` gives, so every later step
(thresholds, top-k, ordering, the vocabulary file) sees the same pairs
(``tests/test_tft_speedups.py`` compares the vocabulary files with TFT's own,
ties and thresholds included). The other orderings (weights, labels, mutual
information) already reduce each batch in the graph and run as TFT wrote them.

``install`` replaces the step in TFT's Beam implementation once per process,
next to ``beam_speedups`` and ``tfdv_speedups`` (``pipelines.process``), and
only on the TFT release it was written for.
"""

import collections
import sys
from typing import Any

import apache_beam as beam
import numpy as np
import tensorflow_transform as tft
from tensorflow_transform.beam import analyzer_impls

__all__ = ["WRITTEN_FOR", "install"]

# The TFT release this was written for and checked against: it replaces a
# private step, which another release may have changed.
WRITTEN_FOR = "1.16.0"
_ORIGINAL_EXPAND = analyzer_impls._VocabularyAccumulateImpl.expand
_installed = [False]


def install() -> bool:
    """Replaces how TFT counts a frequency-ordered vocabulary's tokens with
    ``_accumulate``, once per process. With a TFT release other than
    ``WRITTEN_FOR`` nothing is replaced and one warning line says so; returns
    whether it is installed."""
    if _installed[0]:
        return True
    if tft.__version__ != WRITTEN_FOR:
        print(f"warning: TFT {tft.__version__} is not {WRITTEN_FOR}, the release "
              f"pipelines.tft_speedups was written for: running plain TFT",
              file=sys.stderr, flush=True)
        return False
    analyzer_impls._VocabularyAccumulateImpl.expand = _accumulate
    _installed[0] = True
    return True


def uninstall() -> None:
    """Puts TFT's own step back (for tests that compare the two)."""
    analyzer_impls._VocabularyAccumulateImpl.expand = _ORIGINAL_EXPAND
    _installed[0] = False


def _token_counts(batch_values: tuple[np.ndarray, ...]):
    """A batch of tokens -> ``(token, count)`` for each distinct token, the
    tokens as ``Count.PerElement`` would see them (``tolist``: bytes or int)."""
    batch, = batch_values
    return collections.Counter(batch.tolist()).items()


def _accumulate(self, inputs):
    """``_VocabularyAccumulateImpl.expand`` with each batch counted first, for
    the frequency ordering; the other orderings go to TFT's own."""
    if self._vocab_ordering_type != analyzer_impls._VocabOrderingType.FREQUENCY:
        return _ORIGINAL_EXPAND(self, inputs)
    pcoll, = inputs
    # TFT's own labels, so that the steps keep their names.
    return (pcoll
            | "FlattenTokensAndMaybeWeightsLabels" >> beam.FlatMap(
                _token_counts).with_output_types(Any)
            | "CountPerToken" >> beam.CombinePerKey(sum).with_input_types(
                Any).with_output_types(Any))
