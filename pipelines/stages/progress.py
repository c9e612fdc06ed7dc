"""Progress of long stages, printed as a person follows it in a terminal.

Stages call ``advance(stage, rows)`` as batches go by. On a terminal the
current stage's line is updated in place (``\\r``); in a log (stderr not a
terminal) a line is printed at most every few seconds per stage. Each line
names the stage, the rows it has processed and the time since its first batch.
Runs on Dataflow print into the workers' logs, where they do no harm.
"""

import sys
import threading
import time

__all__ = ["advance"]

_TERMINAL_INTERVAL = 0.5
_LOG_INTERVAL = 5.0
_lock = threading.Lock()
_stages: dict[str, list] = {}  # stage -> [started, rows, last printed]
_last_stage: list[str | None] = [None]


def advance(stage: str, rows: int) -> None:
    """Counts ``rows`` more for ``stage`` and prints its progress when due."""
    now = time.monotonic()
    with _lock:
        state = _stages.setdefault(stage, [now, 0, 0.0])
        state[1] += rows
        terminal = sys.stderr.isatty()
        if now - state[2] < (_TERMINAL_INTERVAL if terminal else _LOG_INTERVAL):
            return
        state[2] = now
        line = f"{stage:<10} {state[1]:>12,} rows  {now - state[0]:6.1f} s"
        if terminal:
            if _last_stage[0] not in (None, stage):
                sys.stderr.write("\n")
            sys.stderr.write("\r" + line)
        else:
            sys.stderr.write(line + "\n")
        _last_stage[0] = stage
        sys.stderr.flush()


def finish() -> None:
    """Ends an in-place terminal line before other output follows."""
    with _lock:
        if _last_stage[0] is not None and sys.stderr.isatty():
            sys.stderr.write("\n")
            sys.stderr.flush()
        _last_stage[0] = None
