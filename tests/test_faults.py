"""Faults: one writer per output directory, every trusted file whole or not at
all, and a full disk at any write step is one line, leaves nothing that looks
complete, and the same command then succeeds (issue 27, parts 1 and 2).

Most tests work on copies of the session's finished run. The publishing steps
of ``run`` (noise, the dataset copy, the moves, the history, the report, the
summary) are driven with the pipeline's outputs copied from that run instead of
running it again (``_published_without_running``); ``validate`` meets a full
disk inside Beam's writes, and a real run, paused once its outputs are staged
while the same command runs in a process of its own, shows that exactly one
of two ``run``s into one directory completes.
"""

import errno
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys

import pytest

from pipelines import layout
from pipelines.records import atomic_files, writer_lock
from pipelines.records.run_record import Rows
from pipelines.records.serving_info import PREDICT_RAW, SERVING_DEFAULT, ServingInfo
from tests.conftest import PROJECT_ROOT, run_cli

# The one line a full disk gives, whatever the step; group 1 is the path.
_DISK_FULL = re.compile(
    r"error: no space left on device writing (\S+) \([\d.]+ (bytes|KB|MB|GB|TB) free "
    r"there\); nothing it left looks complete: free some space and run the same command "
    r"again")
_FSYNC = os.fsync  # the real one, for the space to be freed


def _tree(directory: str) -> dict[str, tuple[int, int]]:
    """Every file under ``directory``: relative path -> (size, mtime in ns)."""
    found = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            stat = os.stat(path)
            found[os.path.relpath(path, directory)] = (stat.st_size, stat.st_mtime_ns)
    return found


def _copy_run(flights_run, destination) -> str:
    copy = str(destination)
    shutil.copytree(flights_run.output_dir, copy)
    return copy


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def _held_line(directory: str, command: str, flag: str, pid: int) -> re.Pattern:
    return re.compile(
        rf"error: {re.escape(directory)} is being written by `{command}` \(pid {pid} on "
        rf"{re.escape(socket.gethostname())}, since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC\); "
        rf"wait for it to finish, or pass another {flag}")


def _inject_disk_full(monkeypatch, basename: str) -> None:
    """The disk fills up while ``basename`` is written whole (records.atomic_files):
    the fsync of its temporary file fails as a full disk's would."""
    def fsync(descriptor):
        written = os.readlink(f"/proc/self/fd/{descriptor}")
        if os.path.basename(written).startswith(f".{basename}."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return _FSYNC(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)


# Whole or not at all: the writer itself.

def test_a_full_disk_leaves_the_previous_file_and_no_temporary_one(tmp_path, monkeypatch):
    path = str(tmp_path / "run_summary.json")
    atomic_files.write_text(path, "previous\n")
    _inject_disk_full(monkeypatch, "run_summary.json")
    with pytest.raises(OSError) as raised:
        atomic_files.write_text(path, "new\n")
    assert (raised.value.errno, raised.value.filename) == (errno.ENOSPC, path)
    assert os.listdir(tmp_path) == ["run_summary.json"]
    assert (tmp_path / "run_summary.json").read_text() == "previous\n"
    monkeypatch.undo()
    atomic_files.write_text(path, "new\n")  # space freed: the same write succeeds
    assert (tmp_path / "run_summary.json").read_text() == "new\n"
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o666 & ~atomic_files._UMASK)


# One writer per output directory.

def _serving_model_without_a_graph(run_dir: str, model_dir: str) -> None:
    """What ``predict`` reads before it takes its lock: the model's info and
    dataset (the graph is loaded later, by the pipeline)."""
    ServingInfo(dataset="flights", signatures=[SERVING_DEFAULT, PREDICT_RAW],
                required_features=[], optional_features=[], output="probability"
                ).write(model_dir)
    shutil.copytree(layout.dataset_dir(run_dir), layout.serving_dataset_dir(model_dir))


@pytest.mark.parametrize("command, flag", [
    ("run", "--output_dir"), ("validate", "--run_dir"), ("train", "--model_dir"),
    ("export-serving", "--out"), ("predict", "--output_dir")])
def test_a_second_writer_is_one_line_and_touches_nothing(tmp_path, flights_run, command, flag):
    run_dir = _copy_run(flights_run, tmp_path / "run")
    # What a live run is writing: the second writer must not remove it.
    live = os.path.join(run_dir, layout.STAGING, "20260101T000000-1", "data")
    os.makedirs(live)
    open(os.path.join(live, "part-0"), "wb").close()
    written = run_dir if command in ("run", "validate") else str(tmp_path / "model")
    model = str(tmp_path / "serving_model")
    _serving_model_without_a_graph(run_dir, model)
    if command == "predict":  # what the first predict wrote so far
        os.makedirs(written)
        open(os.path.join(written, "predictions-00000-of-00001.csv"), "wb").close()
    args = {
        "run": ["--dataset", "flights", "--output_dir", run_dir, "--overwrite",
                "--train_input", flights_run.train_input,
                "--serving_input", flights_run.serving_input],
        "validate": ["--run_dir", run_dir, "--serving_input", flights_run.serving_input],
        "train": ["--run_dir", run_dir, "--model_dir", written],
        "export-serving": ["--run_dir", run_dir, "--out", written],
        "predict": ["--model", model, "--input", flights_run.serving_input,
                    "--output_dir", written, "--overwrite"],
    }[command]
    with writer_lock.hold(written, command, flag):
        before, model_before = _tree(run_dir), _tree(written)
        result = run_cli(command, *args)
        assert writer_lock.holder(written)["pid"] == os.getpid()
        assert (_tree(run_dir), _tree(written)) == (before, model_before)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert _held_line(written, command, flag, os.getpid()).fullmatch(
        _last_line(result.stderr)), result.stderr[-2000:]
    assert writer_lock.holder(written) is None  # released, and the file says nobody


def test_an_object_store_output_is_not_locked_and_says_so(capsys):
    with writer_lock.hold("gs://bucket/out", "run", "--output_dir"):
        pass
    assert capsys.readouterr().out == (
        "notice: gs://bucket/out is in an object store, where no lock keeps a second command "
        "from writing it at the same time: concurrent writers to it are not supported\n")


def test_the_lock_of_a_killed_writer_is_released_by_the_kernel(tmp_path, flights_run):
    """A real second process holds the lock; once it is killed (SIGKILL, no
    clean-up of its own) the directory is free: no stale lock to judge."""
    run_dir = _copy_run(flights_run, tmp_path / "run")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from pipelines.records import writer_lock\n"
         "with writer_lock.hold(sys.argv[1], 'run', '--output_dir'):\n"
         "    print('held', flush=True)\n"
         "    time.sleep(600)\n", run_dir],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        refused = run_cli("validate", "--run_dir", run_dir,
                          "--serving_input", flights_run.serving_input)
        assert writer_lock.holder(run_dir)["pid"] == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert refused.returncode == 2
    assert _held_line(run_dir, "run", "--run_dir", holder.pid).fullmatch(
        _last_line(refused.stderr))
    assert writer_lock.holder(run_dir) is None
    with writer_lock.hold(run_dir, "validate", "--run_dir"):
        assert writer_lock.holder(run_dir)["pid"] == os.getpid()


# Publishing a run: a full disk at each step, then the same command.

class _Executed:
    """What ``execute`` returns, for the run the outputs were copied from."""

    def __init__(self, summary: dict):
        self.rows = Rows(**summary["rows"])
        self._rejected = summary["rejected_by_reason"]

    def counter(self, name: str) -> int:
        return 0

    def rejected_by_kind(self) -> dict[str, int]:
        return dict(self._rejected)

    def duplicates_found(self) -> dict[str, int]:
        return {}

    def stage_seconds(self, stage_of, stages):
        return None


# What the pipeline writes into the staging directory.
_PIPELINE_OUTPUTS = ("data", "stats", "anomalies", "transform_fn", "transformed_metadata",
                     "metadata", "rejected")


def _published_without_running(monkeypatch, flights_run) -> None:
    """``run`` publishes the session run's pipeline outputs instead of running
    the pipeline: every step after it is the command's own."""
    from pipelines.commands import run as run_command

    def build_pipeline(config, beam_args):
        for name in _PIPELINE_OUTPUTS:
            shutil.copytree(os.path.join(flights_run.output_dir, name),
                            os.path.join(config.output_dir, name))
        return None

    monkeypatch.setattr(run_command, "build_pipeline", build_pipeline)
    monkeypatch.setattr(run_command, "execute", lambda _: _Executed(flights_run.summary))


def _run_args(flights_run, output_dir: str, *more: str) -> list[str]:
    return ["run", "--dataset", "flights", "--output_dir", output_dir,
            "--train_input", flights_run.train_input,
            "--serving_input", flights_run.serving_input, *more]


def _completed(output_dir: str) -> dict:
    """The record of the run in ``output_dir``, which must parse."""
    with open(os.path.join(output_dir, layout.SUMMARY_FILE)) as f:
        return json.load(f)


# (step, the file being written when the disk fills up, whether the previous
# completed run is still whole then: promote removes its summary first).
_PUBLISHING_STEPS = [
    ("noise", "serving.noise.json", True),
    ("dataset copy", "dataset.json", True),
    ("history", layout.VALIDATION_SUMMARY, False),
    ("report", layout.REPORT, False),
    ("summary", layout.SUMMARY_FILE, False),
]


@pytest.mark.parametrize("step, written, previous_kept", _PUBLISHING_STEPS,
                         ids=[step for step, _, _ in _PUBLISHING_STEPS])
def test_a_full_disk_while_publishing_then_the_same_command(
        tmp_path, monkeypatch, flights_run, step, written, previous_kept):
    output_dir = _copy_run(flights_run, tmp_path / "out")
    previous = _completed(output_dir)
    _published_without_running(monkeypatch, flights_run)
    _inject_disk_full(monkeypatch, written)
    failed = run_cli(*_run_args(flights_run, output_dir, "--overwrite"))
    assert failed.returncode == 2, failed.stderr[-3000:]
    assert "Traceback" not in failed.stderr
    line = _DISK_FULL.fullmatch(_last_line(failed.stderr))
    assert line, failed.stderr[-2000:]
    assert os.path.basename(line.group(1)) == written
    if previous_kept:
        assert _completed(output_dir) == previous
    else:
        assert not os.path.exists(os.path.join(output_dir, layout.SUMMARY_FILE))
    # Nothing half-written under its final name (no 0-byte report or summary).
    for name in (layout.REPORT, layout.VALIDATION_SUMMARY, layout.SUMMARY_FILE):
        path = os.path.join(output_dir, name)
        assert not os.path.exists(path) or os.path.getsize(path) > 0, name

    monkeypatch.setattr(os, "fsync", _FSYNC)  # space freed
    again = run_cli(*_run_args(flights_run, output_dir, "--overwrite"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert _completed(output_dir)["rows"] == flights_run.summary["rows"]
    assert not os.path.exists(os.path.join(output_dir, layout.STAGING))


def test_a_full_disk_while_moving_the_outputs_into_place(tmp_path, monkeypatch, flights_run):
    output_dir = _copy_run(flights_run, tmp_path / "out")
    _published_without_running(monkeypatch, flights_run)
    real_replace = os.replace

    def replace(source, destination):
        if os.path.basename(source) == "data" and f"/{layout.STAGING}/" in source:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), destination)
        return real_replace(source, destination)

    monkeypatch.setattr(os, "replace", replace)
    failed = run_cli(*_run_args(flights_run, output_dir, "--overwrite"))
    assert failed.returncode == 2, failed.stderr[-3000:]
    line = _DISK_FULL.fullmatch(_last_line(failed.stderr))
    assert line and line.group(1) == os.path.join(output_dir, "data"), failed.stderr[-2000:]
    assert not os.path.exists(os.path.join(output_dir, layout.SUMMARY_FILE))
    monkeypatch.setattr(os, "replace", real_replace)
    again = run_cli(*_run_args(flights_run, output_dir))  # nothing complete to overwrite
    assert again.returncode == 0, again.stderr[-3000:]
    assert _completed(output_dir)["rows"] == flights_run.summary["rows"]


# A summary cut short is no completed run.

def test_an_empty_summary_is_no_completed_run(tmp_path, monkeypatch, flights_run):
    output_dir = _copy_run(flights_run, tmp_path / "out")
    summary = os.path.join(output_dir, layout.SUMMARY_FILE)
    open(summary, "w").close()  # what a full disk left under an older version

    validated = run_cli("validate", "--run_dir", output_dir,
                        "--serving_input", flights_run.serving_input)
    assert validated.returncode == 2
    assert "Traceback" not in validated.stderr
    assert _last_line(validated.stderr) == (
        f"error: {output_dir} holds no completed run: {summary} does not parse as JSON: it "
        f"is empty (0 bytes)")

    _published_without_running(monkeypatch, flights_run)
    rerun = run_cli(*_run_args(flights_run, output_dir))  # no --overwrite needed
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert (f"notice: {output_dir} holds no completed run: {summary} does not parse as "
            f"JSON: it is empty (0 bytes); the run replaces it") in rerun.stdout.splitlines()
    assert _completed(output_dir)["rows"] == flights_run.summary["rows"]


def test_a_full_disk_inside_validate_then_the_same_span(tmp_path, monkeypatch, caplog,
                                                       flights_run):
    """The disk fills up while Beam writes a span's statistics: one line, the
    history unchanged; the same command then validates the span (what the
    failed one left of it is no recorded validation)."""
    from apache_beam.io import localfilesystem

    run_dir = _copy_run(flights_run, tmp_path / "run")
    history = os.path.join(run_dir, layout.VALIDATION_SUMMARY)
    with open(history, "rb") as f:
        before = f.read()
    args = ("validate", "--run_dir", run_dir, "--serving_input", flights_run.serving_input,
            "--span", "2014-01")
    span_dir = layout.validation_dir(run_dir, "2014-01")
    real_create = localfilesystem.LocalFileSystem.create

    def create(self, path, *more, **options):
        if path.startswith(span_dir):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return real_create(self, path, *more, **options)

    monkeypatch.setattr(localfilesystem.LocalFileSystem, "create", create)
    failed = run_cli(*args)
    assert failed.returncode == 2, failed.stderr[-3000:]
    assert "Traceback" not in failed.stderr
    line = _DISK_FULL.fullmatch(_last_line(failed.stderr))
    assert line and line.group(1).startswith(span_dir + "/"), failed.stderr[-2000:]
    # Beam logs the worker's error with its traceback: not this one, said in one line.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text[-2000:]
    with open(history, "rb") as f:
        assert f.read() == before
    assert os.path.exists(span_dir)  # what it left: not taken for a validated span

    monkeypatch.setattr(localfilesystem.LocalFileSystem, "create", real_create)
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (f"notice: {span_dir} holds no recorded validation (one that did not finish); "
            f"validating the span again") in again.stdout.splitlines()
    with open(history) as f:
        assert [entry["span"] for entry in json.load(f)["validations"]] == ["run", "2014-01"]


# Two runs at once.

@pytest.mark.slow
def test_two_runs_into_one_directory_exactly_one_completes(tmp_path, monkeypatch, flights_run):
    """The first (in this process) replaces a completed run; once its pipeline
    has staged its outputs, the same command in a process of its own is refused
    in one line and removes nothing of them; the first then completes."""
    from pipelines.commands import run as run_command

    output_dir = _copy_run(flights_run, tmp_path / "out")
    # The session run's inputs: splits of 1,000 rows or more, whose noise needs no
    # measuring (pipelines.stages.noise), which would take longer than the run.
    args = _run_args(flights_run, output_dir, "--overwrite")
    staging = os.path.join(output_dir, layout.STAGING)
    second = {}
    real_execute = run_command.execute

    def execute(pipeline):
        executed = real_execute(pipeline)
        second["staged"] = _staged_by(staging, os.getpid())
        second["result"] = subprocess.run(
            [sys.executable, "-m", "pipelines", *args], cwd=PROJECT_ROOT, capture_output=True,
            text=True, timeout=600)
        second["staged_after"] = _staged_by(staging, os.getpid())
        return executed

    monkeypatch.setattr(run_command, "execute", execute)
    first = run_cli(*args)

    refused = second["result"]
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    assert _held_line(output_dir, "run", "--output_dir", os.getpid()).fullmatch(
        _last_line(refused.stderr)), refused.stderr[-2000:]
    assert second["staged"] and second["staged_after"] == second["staged"]
    assert first.returncode == 0, first.stderr[-3000:]
    assert _completed(output_dir)["rows"] == flights_run.summary["rows"]
    assert not os.path.exists(staging)


def _staged_by(staging: str, pid: int) -> list[str]:
    """What the run of process ``pid`` has staged so far (staging.staging_dir)."""
    try:
        return [name for name in os.listdir(staging) if name.endswith(f"-{pid}")]
    except FileNotFoundError:
        return []
