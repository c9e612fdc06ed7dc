"""Progress of long stages, as a person follows it.

Stages call ``advance(stage, rows, read_bytes)`` as batches go by. On a
terminal, rich draws one line per stage: its rows and time; the read stage
also shows the share of the input read (bytes of the input size
the launcher announced with ``expect_bytes``) and the time left. In a log
(stderr not a terminal) a plain line per stage is printed at most every few
seconds and, when the run ends (``finish``), each stage's final rows and time,
so the last line of a stage is always its true count. Runs on Dataflow print
into the workers' logs, where they do no harm.
"""

import dataclasses
import sys
import threading
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["advance", "expect_bytes", "finish", "start"]

_LOG_INTERVAL = 5.0


@dataclasses.dataclass
class _Stage:
    started: float
    rows: int = 0
    read_bytes: int = 0
    last: float = 0.0  # the latest batch
    printed: float = 0.0  # the latest log line
    task: int | None = None  # the terminal display's task


_lock = threading.Lock()
_stages: dict[str, _Stage] = {}
_expected_bytes: dict[str, int] = {}
_display: list[Progress | None] = [None]


def expect_bytes(stage: str, total: int) -> None:
    """Announces the size of ``stage``'s input, for its share read and time left."""
    with _lock:
        _expected_bytes[stage] = total


def advance(stage: str, rows: int, read_bytes: int = 0) -> None:
    """Counts ``rows`` (and ``read_bytes`` of input) more for ``stage``."""
    now = time.monotonic()
    with _lock:
        state = _stages.get(stage)
        if state is None:
            state = _stages[stage] = _Stage(started=now, printed=now)
        state.rows += rows
        state.read_bytes += read_bytes
        state.last = now
        if sys.stderr.isatty():
            _draw(stage, state)
        elif now - state.printed >= _LOG_INTERVAL:
            state.printed = now
            _print_line(stage, state)


def start() -> None:
    """Forgets the stages of any earlier pipeline of this process (one that
    failed, or a test's), so that a run's lines count its own rows only; the
    input sizes announced for it stay."""
    with _lock:
        _stop_display()
        _stages.clear()


def finish() -> None:
    """Ends the display; in a log, prints every stage's final rows and time."""
    with _lock:
        if not _stop_display() and _stages:
            for stage, state in _stages.items():
                _print_line(stage, state)
        _stages.clear()
        _expected_bytes.clear()


def _stop_display() -> bool:
    """Ends the terminal display, if one is drawn; whether one was."""
    if _display[0] is None:
        return False
    _display[0].stop()
    _display[0] = None
    return True


def _line(stage: str, state: _Stage) -> str:
    line = f"{stage:<10} {state.rows:>12,} rows  {state.last - state.started:6.1f} s"
    total = _expected_bytes.get(stage)
    if total:
        line += f"  {min(state.read_bytes / total, 1.0):4.0%} of the input"
    return line


def _print_line(stage: str, state: _Stage) -> None:
    sys.stderr.write(_line(stage, state) + "\n")
    sys.stderr.flush()


def _draw(stage: str, state: _Stage) -> None:
    display = _display[0]
    if display is None:
        display = _display[0] = Progress(
            TextColumn("{task.description:<10}"),
            TextColumn("{task.fields[rows]:>12,} rows"),
            BarColumn(bar_width=24),
            TaskProgressColumn(),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr), transient=False)
        display.start()
    total = _expected_bytes.get(stage)
    if state.task is None:
        state.task = display.add_task(stage, total=total, rows=0)
    display.update(state.task, rows=state.rows,
                   completed=min(state.read_bytes, total) if total else state.rows)
