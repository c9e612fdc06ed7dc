"""Files a reader trusts, written whole or not at all.

A local file is written under a temporary name in its own directory, flushed,
``fsync``'d and renamed over its final name (``os.replace``, atomic on POSIX),
then its directory is ``fsync``'d so that the rename itself survives a crash:
a reader sees the previous file or the new one, never a part of either, and a
disk that fills up mid-write leaves the previous file as it was. A failed
write removes its temporary file and raises the ``OSError`` with the final
path as its ``filename`` (``write()`` itself names no file), for the launcher
to say which file could not be written (``pipelines.cli``).

A ``gs://`` object is written in one upload that either creates the whole new
object or leaves the old one: it is atomic already and is written directly.
"""

import contextlib
import os
import tempfile

__all__ = ["write_bytes", "write_text"]


def _read_umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


# Read once, at import: setting it to read it would race with other threads.
_UMASK = _read_umask()


def write_text(path: str, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` whole or not at all."""
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` whole or not at all (the module says how)."""
    if "://" in path:
        import tensorflow as tf  # only for a remote path: local writes stay light

        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(data)
        return
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # A name a reader of the directory never takes for the file itself.
    descriptor, temporary = tempfile.mkstemp(
        dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp's 0600 is not what open() gives
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        if error.filename is None:
            error.filename = path
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Makes a rename in ``directory`` durable (a no-op where directories
    cannot be opened, as on Windows)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)

