"""The program's policy for its own process: what ``python -m pipelines`` and
the ``tft-preprocessing`` console script (``pipelines.__main__``) set up that a
library must not set for the process that imports it.

- **Quiet libraries** (for every caller of the CLI): TensorFlow's C++ log
  (CUDA probing on a CPU machine; ``TF_CPP_MIN_LOG_LEVEL=0`` brings it back),
  Google's Python-version notices, TFDV's note that IPython is absent, and the
  library warnings in ``_NOISE``, which say nothing a user can act on.
- **The garbage collector** (the program only): importing TFDV, TensorFlow and
  Beam leaves about 460,000 objects that live as long as the process, which
  the collector scanned again and again: while they were being imported (0.6 s
  of the 2.3 s the imports took) and in every full collection after (1.3 s of
  a 1,000-row run went to nine of them). So the collector is off during the
  imports, then the objects are frozen, which it leaves be, and a full
  collection is made after a hundred younger ones rather than ten (what
  remains of collecting is 0.2 s).
- **Beam's, TFDV's and TFT's speed-ups, TFT's precision** (the program only):
  ``pipelines.beam_speedups`` patches Beam process-wide,
  ``pipelines.tfdv_speedups`` TFDV's histograms, ``pipelines.tft_speedups``
  TFT's counting of vocabulary tokens and ``pipelines.tft_precision`` TFT's
  mean and variance analyzers (at tracing, so a Dataflow job's graph has it
  too), so the program installs them once, as it imports the stack.
- **The exit**: once the command is done the process ends without tearing
  the interpreter down: as at a normal exit, the threads that are not daemons
  are waited for and the exit handlers run, the streams are flushed, then
  ``os._exit``. Finalizing the modules and objects TensorFlow and Beam leave
  behind took about a second of every command, after its last output was
  written.
"""

import atexit
import contextlib
import dataclasses
import gc
import io
import logging
import os
import sys
import threading
import time
import warnings
from typing import NoReturn

__all__ = ["STARTED", "become_the_program", "exit_now", "import_the_stack", "is_the_program",
           "quiet_libraries"]

STARTED = time.monotonic()  # the program's start-up time is counted from here
# A full garbage collection after this many of the middle generation (Python's
# default: 10).
_FULL_COLLECTION_EVERY = 100
_program = [False]

# Library warnings that say nothing a user can act on.
_NOISE = {
    # TFT, about analyzers inside its own scale_to_z_score; ours are named.
    "absl": "node's cache key varies on repeated tracing",
    # Beam falls back to crcmod's C extension, which is fine.
    "apache_beam.io.tfrecordio": "Couldn't find python-snappy",
    # Beam's GCS client parses sys.argv, which holds the launcher's flags too;
    # preflight.check_beam_flags has already rejected any flag nobody knows.
    "apache_beam.options.pipeline_options": "Discarding unparseable args",
    # TFDV's feature skew detector (diff) hints its PTransform with a Tuple and
    # a Dict, which Beam says, at the root logger, it cannot check.
    "": "hint will be ignored and not used for type-checking",
}


def become_the_program() -> None:
    """Marks this process as ``python -m pipelines``: the policy above applies."""
    _program[0] = True


def is_the_program() -> bool:
    return _program[0]


def quiet_libraries() -> None:
    """Keeps library chatter out of the terminal (see the module's docstring);
    other warnings still show."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=FutureWarning, module="google")
    for logger, text in _NOISE.items():
        logging.getLogger(logger).addFilter(_Drop(text))  # once: equal filters are not re-added


@dataclasses.dataclass(frozen=True)
class _Drop(logging.Filter):
    """Drops the log records whose message contains ``text``."""

    text: str

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def import_the_stack() -> None:
    """Imports TFDV, and with it TensorFlow and Beam, without the notes TFDV
    writes to stderr; in the program, with the collector readied for what they
    leave, and Beam's speed-ups installed."""
    if not is_the_program():
        _import_tfdv_quietly()
        return
    gc.disable()
    try:
        _import_tfdv_quietly()
        gc.freeze()
    finally:
        gc.enable()
    youngest, middle, _ = gc.get_threshold()
    gc.set_threshold(youngest, middle, _FULL_COLLECTION_EVERY)
    from pipelines import beam_speedups, tfdv_speedups, tft_precision, tft_speedups

    beam_speedups.install()
    tfdv_speedups.install()
    tft_speedups.install()
    tft_precision.install()


def _import_tfdv_quietly() -> None:
    with contextlib.redirect_stderr(io.StringIO()):
        import tensorflow_data_validation  # noqa: F401  (writes to stderr on import)


def exit_now(code: int) -> NoReturn:
    """Ends the program with ``code`` as an exit does, without finalizing the
    interpreter (see the module's docstring)."""
    threading._shutdown()  # what the interpreter does first at exit: join non-daemon threads
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
