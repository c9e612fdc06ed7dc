"""One writer per output directory: the lock every command that writes a run
or a model directory holds while it writes.

The lock is an advisory ``fcntl.flock`` on ``DIR/.lock`` (``layout.LOCK_FILE``).
The kernel releases it when its holder ends, however it ends (``SIGKILL``
included), so a lock is never stale and nothing has to judge whether a pid
still lives. The holder writes who it is into the file (pid, host, command,
since when) for the message a second writer gets: one line naming the
directory and the holder, before the second writer has touched anything. The
file itself stays (removing it would let a third process lock a new file while
the second still waits on the old one); between holders it is empty. A
directory the lock created for a command that then failed before writing
anything is removed again.

Object stores have no such lock: on a ``gs://`` directory nothing is locked and
a one-line notice says that concurrent writers to it are not supported.
"""

import contextlib
import datetime
import fcntl
import json
import os
import socket
import sys
from collections.abc import Iterator

from pipelines import layout
from pipelines.errors import UserError

__all__ = ["hold", "holder", "written_by"]

# The attribute of an exception that ended a hold: the directory being written.
_WRITING = "_tft_preprocessing_writing"


@contextlib.contextmanager
def hold(directory: str, command: str, flag: str, *, create: bool = True) -> Iterator[None]:
    """Holds ``directory``'s lock for the ``with`` block.

    Args:
      directory: the directory the command writes.
      command: the command's name, for the message a second writer gets.
      flag: the flag that named ``directory``, for that message to name.
      create: make ``directory`` if it does not exist; without it a missing
        directory is left for the command to report (nothing to protect).

    Raises:
      UserError: another process holds the lock, or the lock file cannot be made.
    """
    if "://" in directory:
        print(f"notice: {directory} is in an object store, where no lock keeps a second "
              f"command from writing it at the same time: concurrent writers to it are "
              f"not supported", flush=True)
        yield
        return
    created = not os.path.isdir(directory)
    if created:
        if not create:
            yield
            return
        _cannot_write(os.makedirs, directory, exist_ok=True)
    path = os.path.join(directory, layout.LOCK_FILE)
    descriptor = _cannot_write(os.open, path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"{directory} is being written by {_describe(_read(descriptor))}; wait for "
                f"it to finish, or pass another {flag}") from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, (json.dumps(_me(command)) + "\n").encode(), 0)
        try:
            yield
        except BaseException as error:
            # For a message about a failed write whose error names no file.
            if getattr(error, _WRITING, None) is None:
                with contextlib.suppress(AttributeError):
                    setattr(error, _WRITING, directory)
            if created:  # a command that failed before writing leaves no directory
                _remove_if_only_the_lock(directory, path)
            raise
        finally:
            os.ftruncate(descriptor, 0)  # between holders the file says nobody
    finally:
        os.close(descriptor)  # releases the lock


def written_by(error: BaseException) -> str | None:
    """The directory whose lock was held when ``error`` ended the hold (the
    innermost), if any."""
    return getattr(error, _WRITING, None)


def holder(directory: str) -> dict | None:
    """Who holds ``directory``'s lock (pid, host, command, argv, since), or None
    when nobody does."""
    path = os.path.join(directory, layout.LOCK_FILE)
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(descriptor) or {}
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        return None
    finally:
        os.close(descriptor)


def _remove_if_only_the_lock(directory: str, path: str) -> None:
    """Removes ``directory`` if it holds nothing but its lock (still held, so
    that no other writer takes it meanwhile)."""
    with contextlib.suppress(OSError):
        if os.listdir(directory) == [layout.LOCK_FILE]:
            os.remove(path)
            os.rmdir(directory)


def _me(command: str) -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
            "argv": sys.argv,
            "since": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}


def _read(descriptor: int) -> dict | None:
    try:
        found = json.loads(os.pread(descriptor, 65536, 0))
    except ValueError:  # the holder has not written it yet
        return None
    return found if isinstance(found, dict) else None


def _describe(found: dict | None) -> str:
    if not found:
        return "another process (which has not said which yet)"
    since = str(found.get("since", "?")).replace("T", " ").replace("+00:00", " UTC")
    return (f"`{found.get('command', '?')}` (pid {found.get('pid', '?')} on "
            f"{found.get('host', '?')}, since {since})")


def _cannot_write(call, path: str, *args, **kwargs):
    """``call(path, ...)``, its refusal to write ``path`` one line."""
    try:
        return call(path, *args, **kwargs)
    except (PermissionError, NotADirectoryError, FileExistsError, IsADirectoryError,
            FileNotFoundError) as error:
        raise UserError(f"cannot write {path}: {error.strerror}") from None
