"""Progress lines: in a log, each stage's last line is its true count and time;
on a terminal, rich shows rows, the share of the input read and the time left."""

import io
import re

import pytest

from pipelines.stages import progress


@pytest.fixture(autouse=True)
def _fresh_progress(capsys):
    """Pipelines tested in this process before may have left stages behind."""
    progress.finish()
    capsys.readouterr()


def test_log_lines_end_with_each_stages_true_count_and_time(monkeypatch, capsys):
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    progress.expect_bytes("read", 1000)
    progress.advance("read", 100, 250)  # the first batch: no "0.0 s" line
    clock[0] = 106.0
    progress.advance("read", 200, 250)  # five seconds on: a line
    clock[0] = 107.5
    progress.advance("read", 50, 500)  # too soon for another line
    progress.advance("split", 350)
    progress.finish()
    assert capsys.readouterr().err.splitlines() == [
        "read                300 rows     6.0 s   50% of the input",
        "read                350 rows     7.5 s  100% of the input",  # the final count
        "split               350 rows     0.0 s",
    ]
    progress.finish()  # nothing more to say
    assert capsys.readouterr().err == ""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_rows_share_of_input_and_time(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(progress.sys, "stderr", terminal)
    progress.expect_bytes("read", 1000)
    progress.advance("read", 100, 400)
    progress.advance("read", 250, 600)
    progress.advance("transform", 300)
    progress.finish()
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal.getvalue())
    final = screen.splitlines()[-2:]
    assert re.match(r"read\s+350 rows .* 100% ", final[0]), final
    assert re.match(r"transform\s+300 rows ", final[1]), final
